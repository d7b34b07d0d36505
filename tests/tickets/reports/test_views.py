"""The report pages in the admin: who may see them, bounded queries, filters, and CSV exports equal to the tables."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from tests import factories
from tickets.reports.pages import PAGES
from tickets.roles import Role

pytestmark = pytest.mark.django_db

RANGE_QUERY = {"date_from": "2026-03-02", "date_to": "2026-03-04"}
# Session, user, permissions, the filter form's label and agent choices, the JIT switch, the page's figures (at most
# six aggregate queries): the same bound however many tickets there are.
MAX_QUERIES = 16


def logged_in(username: str) -> Client:
    from django.contrib.auth import get_user_model

    client = Client(headers={"Accept-Language": "en"})  # the messages asserted are the English ones
    client.force_login(get_user_model().objects.get(username=username))
    return client


@pytest.mark.parametrize("slug", list(PAGES))
def test_every_page_renders_its_figures_with_bounded_queries(
    fixture: dict[str, Any], slug: str, django_assert_max_num_queries: Any
) -> None:
    client = logged_in("boss")
    url = reverse("admin:reports_page", args=[slug])
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(url, RANGE_QUERY)
    assert response.status_code == 200
    html = response.content.decode()
    figures = response.context["figures"]
    assert figures
    assert html.count('data-testid="report-figure"') == len(figures)
    assert '<svg class="report-chart"' in html
    # The admin's own frame (admin/base_site.html).
    assert 'id="header"' in html
    assert "breadcrumbs" in html
    for figure in figures:
        for row in figure.rows:
            for cell in row:
                assert escape(cell) in html


@pytest.mark.parametrize("slug", list(PAGES))
def test_csv_export_is_exactly_the_table(fixture: dict[str, Any], slug: str) -> None:
    client = logged_in("boss")
    url = reverse("admin:reports_page", args=[slug])
    page = client.get(url, RANGE_QUERY)
    for figure in page.context["figures"]:
        response = client.get(url, {**RANGE_QUERY, "export": figure.slug})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert f"{slug}-{figure.slug}-2026-03-02-2026-03-04.csv" in response["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert rows[0] == list(figure.columns)
        assert rows[1:] == [list(row) for row in figure.rows]


def test_volume_page_shows_the_hand_computed_numbers(fixture: dict[str, Any]) -> None:
    response = logged_in("boss").get(reverse("admin:reports_page", args=["volume"]), RANGE_QUERY)
    figures = {f.slug: f for f in response.context["figures"]}
    # tests/tickets/reports/test_selectors.py::test_volume_per_day_and_backlog explains these.
    assert figures["opened-resolved"].rows == [
        ("2026-03-02", "6", "5"),
        ("2026-03-03", "5", "3"),
        ("2026-03-04", "3", "3"),
    ]
    assert figures["backlog"].rows == [("2026-03-02", "3"), ("2026-03-03", "5"), ("2026-03-04", "5")]


def test_times_page_rounds_as_the_csv_does(fixture: dict[str, Any]) -> None:
    response = logged_in("boss").get(reverse("admin:reports_page", args=["times"]), RANGE_QUERY)
    summary = dict(response.context["figures"][0].rows)
    # Medians and p90s of test_time_summary_in_wall_time: 20 and 69 minutes, 1.5 and 6.9 hours; 2 / 14 breached.
    assert summary["First response, median (minutes)"] == "20.0"
    assert summary["First response, p90 (minutes)"] == "69.0"
    assert summary["Resolution, median (hours)"] == "1.5"
    assert summary["Resolution, p90 (hours)"] == "6.9"
    assert summary["SLA breach rate (%)"] == "14.3"
    assert summary["Never answered"] == "4"
    assert "wall-clock time" in response.content.decode()


def test_filters_narrow_the_figures(fixture: dict[str, Any]) -> None:
    query = {**RANGE_QUERY, "channel": "assistant", "reason": "", "label": "", "agent": ""}
    response = logged_in("boss").get(reverse("admin:reports_page", args=["volume"]), query)
    opened = response.context["figures"][0].rows
    assert [row[1] for row in opened] == ["2", "1", "1"]  # T5, T6 / T9 / T14


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"date_from": "2026-03-05", "date_to": "2026-03-01"}, "The start of the range must not be after its end."),
        ({"date_from": "2024-01-01", "date_to": "2026-03-01"}, "Choose at most 366 days."),
        ({"channel": "robot"}, "Select a valid choice."),
    ],
)
def test_bad_filters_are_refused_clearly(fixture: dict[str, Any], query: dict[str, str], message: str) -> None:
    response = logged_in("boss").get(reverse("admin:reports_page", args=["volume"]), query)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert response.context["figures"] == []


def test_unknown_page_and_figure_are_404(fixture: dict[str, Any]) -> None:
    client = logged_in("boss")
    assert client.get("/admin/reports/nothing/").status_code == 404
    assert client.get(reverse("admin:reports_page", args=["volume"]), {"export": "nothing"}).status_code == 404


def test_admin_index_links_the_reports_for_managers_only(fixture: dict[str, Any]) -> None:
    html = logged_in("boss").get(reverse("admin:index")).content.decode()
    assert 'data-testid="reports-module"' in html
    for slug in PAGES:
        assert reverse("admin:reports_page", args=[slug]) in html
    # Staff without the permission (finance with admin access) see no reports there.
    factories.UserFactory(role=Role.FINANCE, username="fin", is_staff=True)
    html = logged_in("fin").get(reverse("admin:index")).content.decode()
    assert 'data-testid="reports-module"' not in html


@pytest.mark.parametrize("url", ["/admin/reports/", "/admin/reports/volume/", "/admin/reports/volume/?export=backlog"])
def test_others_are_kept_out(fixture: dict[str, Any], url: str) -> None:
    # Agents and buyers are not admin staff: the admin sends them to its login page.
    for username in ("wei", "alice"):
        response = logged_in(username).get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    # Staff without the permission (finance, with admin access) are refused.
    factories.UserFactory(role=Role.FINANCE, username="fin", is_staff=True)
    assert logged_in("fin").get(url).status_code == 403
    # Anonymous: the login page.
    assert Client().get(url).status_code == 302
    # The manager gets in.
    assert logged_in("boss").get(url).status_code == 200
