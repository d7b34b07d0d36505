"""{% report_pages as pages %}: the report pages, for the links on the admin index."""

from __future__ import annotations

from django import template

from tickets.reports.pages import PAGES, ReportPage

register = template.Library()


@register.simple_tag
def report_pages() -> list[ReportPage]:
    return list(PAGES.values())
