"""Counting and paging that stay fast on large tables.

Django's Paginator counts every matching row to number its pages. For a search word found in a tenth of a million
messages that count costs more than the page itself (docs/benchmarks.md, "Console on 100,000 tickets"), and no one
pages through a hundred thousand results: they refine the search. Counts here stop at a cap and say "1,000+" beyond
it, as large helpdesks and mail clients do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 1000


@dataclass(frozen=True)
class CappedCount:
    value: int  # at most the cap
    capped: bool  # there are more than `value`


def count_up_to(queryset: QuerySet[Any], *, cap: int = COUNT_CAP) -> CappedCount:
    # One row more than the cap tells "exactly cap" from "more than cap"; the database stops counting there.
    counted = int(queryset.order_by()[: cap + 1].count())
    return CappedCount(value=min(counted, cap), capped=counted > cap)


class CappedPaginator(Paginator):
    """A Paginator whose count stops at `cap`; pages beyond the cap are not offered."""

    def __init__(self, object_list: QuerySet[Any], per_page: int, *, cap: int = COUNT_CAP, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.queryset = object_list
        self.cap = cap

    @cached_property
    def capped_count(self) -> CappedCount:
        return count_up_to(self.queryset, cap=self.cap)

    @cached_property
    def count(self) -> int:
        return self.capped_count.value
