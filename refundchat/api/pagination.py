"""Cursor pagination: stable pages while rows are added, and no COUNT over large tables."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class ApiCursorPagination(CursorPagination):
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"
    # Newest first by default; a view sets its own (messages: by sequence number).
    ordering = "-id"
