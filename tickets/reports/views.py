"""The report pages of the admin (issue #8): read-only, for whoever holds tickets.view_reports (the managers).

Thin: the form reads the filters, tickets/reports/pages.py builds the figures; `?export=<figure>` returns that
figure's table as CSV, from the same rows the page shows.
"""

from __future__ import annotations

import csv

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from tickets.reports.forms import ReportFilterForm, with_default_range
from tickets.reports.pages import PAGES, Figure
from tickets.reports.selectors import report_transaction
from tickets.roles import AuthenticatedRequest

PERMISSION = "tickets.view_reports"


def can_view_reports(request: AuthenticatedRequest) -> bool:
    return bool(request.user.is_active and request.user.has_perm(PERMISSION))


def report_index(request: AuthenticatedRequest) -> HttpResponse:
    if not can_view_reports(request):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": _("Reports"),
        "pages": PAGES.values(),
    }
    return TemplateResponse(request, "admin/reports/index.html", context)


def report_page(request: AuthenticatedRequest, page: str) -> HttpResponse:
    if not can_view_reports(request):
        raise PermissionDenied
    report = PAGES.get(page)
    if report is None:
        raise Http404("No such report")
    form = ReportFilterForm(with_default_range(request.GET))
    figures: list[Figure] = []
    if form.is_valid():
        with report_transaction():
            figures = report.build(form.filters())
        wanted = request.GET.get("export")
        if wanted:
            figure = next((f for f in figures if f.slug == wanted), None)
            if figure is None:
                raise Http404("No such figure")
            return csv_response(
                figure, filename=f"{report.slug}-{figure.slug}-{form.filters().date_from}-{form.filters().date_to}.csv"
            )
    # The links (other pages, CSV) carry the range shown, so an export made after midnight still matches the page.
    query = with_default_range(request.GET)
    query.pop("export", None)
    context = {
        **admin.site.each_context(request),
        "title": report.title,
        "report": report,
        "pages": PAGES.values(),
        "form": form,
        "figures": figures,
        "query": query.urlencode(),
        "generated_at": timezone.localtime(),
    }
    return TemplateResponse(request, "admin/reports/page.html", context, status=200 if form.is_valid() else 400)


def csv_response(figure: Figure, *, filename: str) -> HttpResponse:
    # UTF-8 with a byte-order mark: spreadsheet programs then read the Chinese labels correctly.
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(figure.columns)
    writer.writerows(figure.rows)
    return response
