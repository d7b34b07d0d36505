"""The report pages as part of the admin site: its URLs (admin:reports_index, admin:reports_page), its login."""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.urls import URLPattern, URLResolver, path

from tickets.reports import views


def report_urls(site: AdminSite) -> list[URLPattern]:
    return [
        path("reports/", site.admin_view(views.report_index), name="reports_index"),
        path("reports/<slug:page>/", site.admin_view(views.report_page), name="reports_page"),
    ]


def install(site: AdminSite) -> None:
    """Put the report URLs in front of the site's own (its catch-all would swallow them otherwise)."""
    original = site.get_urls

    def get_urls() -> list[URLResolver | URLPattern]:
        return [*report_urls(site), *original()]

    site.get_urls = get_urls  # type: ignore[method-assign]
