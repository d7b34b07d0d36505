"""Reads on orders and refund tickets, each scoped to who is asking."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import BooleanField, Count, F, Func, IntegerField, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone

from tickets.models import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    Order,
    OrderItem,
    Payout,
    PayoutStatus,
    RefundKind,
    RefundTicket,
    RefundTicketItem,
    TicketEvent,
    TicketStatus,
)

# Tickets in these states no longer hold their items: the items may be asked again.
RELEASED_STATUSES = (TicketStatus.REJECTED, TicketStatus.CANCELLED, TicketStatus.CLOSED)


def orders_for_buyer(*, buyer: User) -> QuerySet[Order]:
    return Order.objects.filter(buyer=buyer).prefetch_related("items").order_by("-paid_at")


def get_buyer_order(*, buyer: User, order_no: str, for_update: bool = False) -> Order:
    """The buyer's own order; 404 for anyone else's, so that existence does not leak."""
    queryset = Order.objects.filter(buyer=buyer, order_no=order_no)
    if for_update:
        queryset = queryset.select_for_update()
    order = queryset.first()
    if order is None:
        raise Http404("No such order")
    return order


def refundable_quantities(*, order: Order) -> dict[int, int]:
    """Per order item, how many units may still be asked back (not in a live or refunded ticket)."""
    taken = dict(
        RefundTicketItem.objects.filter(order_item__order=order)
        .exclude(ticket__status__in=RELEASED_STATUSES)
        .values_list("order_item_id")
        .annotate(total=Sum("quantity"))
        .values_list("order_item_id", "total")
    )
    return {item.pk: item.quantity - taken.get(item.pk, 0) for item in order.items.all()}


def items_in_open_tickets(*, order: Order) -> dict[int, RefundTicket]:
    """Order item id → the open ticket that holds it."""
    rows = (
        RefundTicketItem.objects.filter(order_item__order=order, ticket__status__in=OPEN_STATUSES)
        .select_related("ticket")
        .order_by("ticket_id")
    )
    return {row.order_item_id: row.ticket for row in rows}


def tickets_for_buyer(*, buyer: User) -> QuerySet[RefundTicket]:
    return RefundTicket.objects.filter(buyer=buyer).select_related("order", "conversation").order_by("-created_at")


def get_buyer_ticket(*, buyer: User, ticket_id: int) -> RefundTicket:
    ticket = ticket_detail_queryset().filter(buyer=buyer, pk=ticket_id).first()
    if ticket is None:
        raise Http404("No such ticket")
    return ticket


def ticket_detail_queryset() -> QuerySet[RefundTicket]:
    return RefundTicket.objects.select_related(
        "order", "buyer", "assigned_agent", "conversation", "payout", "rating"
    ).prefetch_related(
        Prefetch("items", queryset=RefundTicketItem.objects.select_related("order_item")),
        Prefetch("order__items", queryset=OrderItem.objects.order_by("id")),
    )


def get_console_ticket(*, ticket_id: int) -> RefundTicket:
    ticket = ticket_detail_queryset().filter(pk=ticket_id).first()
    if ticket is None:
        raise Http404("No such ticket")
    return ticket


# The console's queue views, in the order of their tabs.
QUEUE_VIEWS = ("mine", "unassigned", "open", "waiting", "sla", "escalated", "closed")
# The buyer has the next move: evidence to send, a parcel to ship.
WAITING_ON_BUYER = (TicketStatus.AWAITING_EVIDENCE, TicketStatus.RETURN_REQUIRED)
# "SLA at risk": unanswered and the first-response promise runs out within this time (or has);
# or answered, and a later buyer message has waited past the next-response promise.
SLA_RISK_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True)
class QueueFilters:
    status: str = ""
    reason: str = ""
    min_amount_cents: int | None = None
    max_amount_cents: int | None = None
    created_from: date | None = None
    created_to: date | None = None
    label_id: int | None = None
    team: str = ""


def queue_view_condition(view: str, *, user: User, now: datetime) -> Q:
    open_ = Q(status__in=OPEN_STATUSES)
    return {
        "mine": open_ & Q(assigned_agent=user),
        "unassigned": open_ & Q(assigned_agent__isnull=True),
        "open": open_,
        "waiting": Q(status__in=WAITING_ON_BUYER),
        "sla": open_
        & (
            Q(first_responded_at__isnull=True, first_response_due_at__lte=now + SLA_RISK_WINDOW)
            # A buyer waiting past the next-response promise (set and cleared by tickets.timers).
            | Q(next_response_breached_at__isnull=False)
        ),
        "escalated": Q(status=TicketStatus.ESCALATED),
        "closed": Q(status__in=FINAL_STATUSES),
    }[view]


# Every view but "closed" holds open tickets only: their counts need only the open rows.
OPEN_VIEWS = tuple(view for view in QUEUE_VIEWS if view != "closed")


def queue_counts(*, user: User) -> dict[str, int]:
    """How many tickets each view holds, in one query.

    The open views are counted over the open tickets alone (a few thousand rows, read through the partial index of
    migration 0011), the closed view by a subquery that counts the final states from their own index: not a pass
    over every ticket that tests each row against every view (docs/benchmarks.md, "Console on 100,000 tickets").
    """
    now = timezone.now()
    closed = (
        RefundTicket.objects.filter(queue_view_condition("closed", user=user, now=now))
        .order_by()
        .annotate(n=Func(F("pk"), function="COUNT"))
        .values("n")
    )
    counts = RefundTicket.objects.filter(status__in=OPEN_STATUSES).aggregate(
        **{view: Count("pk", filter=queue_view_condition(view, user=user, now=now)) for view in OPEN_VIEWS},
        # aggregate() takes only expressions that aggregate: COUNT over no row is 0, so this is the subquery's count.
        closed=Count("pk", filter=Q(pk__isnull=True)) + Subquery(closed, output_field=IntegerField()),
    )
    return {view: counts[view] or 0 for view in QUEUE_VIEWS}


def console_queue(
    *, view: str = "open", user: User | None = None, filters: QueueFilters | None = None
) -> QuerySet[RefundTicket]:
    """The tickets of one queue view, the most urgent first-response deadline on top."""
    tickets = RefundTicket.objects.select_related("order", "buyer", "assigned_agent", "conversation").prefetch_related(
        "labels"
    )
    if user is not None:
        tickets = tickets.filter(queue_view_condition(view, user=user, now=timezone.now()))
    else:
        tickets = tickets.filter(status__in=OPEN_STATUSES)
    filters = filters or QueueFilters()
    if filters.status:
        tickets = tickets.filter(status=filters.status)
    if filters.reason:
        tickets = tickets.filter(reason=filters.reason)
    if filters.min_amount_cents is not None:
        tickets = tickets.filter(requested_amount_cents__gte=filters.min_amount_cents)
    if filters.max_amount_cents is not None:
        tickets = tickets.filter(requested_amount_cents__lte=filters.max_amount_cents)
    if filters.created_from:
        tickets = tickets.filter(created_at__date__gte=filters.created_from)
    if filters.created_to:
        tickets = tickets.filter(created_at__date__lte=filters.created_to)
    if filters.label_id is not None:
        tickets = tickets.filter(labels=filters.label_id)
    if filters.team:
        tickets = tickets.filter(team=filters.team)
    # Unanswered tickets first, then by how soon the first-response promise runs out.
    return tickets.order_by(F("first_responded_at").asc(nulls_first=True), "first_response_due_at", "id")


# The queue's order (console_queue), as the cursor of keyset pagination: (answered?, first answer, due, id).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class QueueCursor:
    """Where a queue page starts or ends: the sort key of its edge row.

    Pages are found from the cursor through the queue indexes of migration 0011 (a row comparison the index answers),
    not by OFFSET, which makes PostgreSQL join and drop every skipped row: page 200 of the closed view took 280 ms.
    """

    responded_at: datetime | None
    due_at: datetime
    ticket_id: int

    @classmethod
    def of(cls, ticket: RefundTicket) -> QueueCursor:
        return cls(ticket.first_responded_at, ticket.first_response_due_at, ticket.pk)

    def encode(self) -> str:
        responded = "-" if self.responded_at is None else str(_micros(self.responded_at))
        return f"{responded}.{_micros(self.due_at)}.{self.ticket_id}"

    @classmethod
    def decode(cls, raw: str) -> QueueCursor | None:
        """The cursor in a link, or None for anything else (a stale or edited link shows the first page)."""
        parts = raw.split(".")
        if (
            len(parts) != 3
            or not all(part.isdigit() for part in parts[1:])
            or not (parts[0] == "-" or parts[0].isdigit())
        ):
            return None
        try:
            responded = None if parts[0] == "-" else _EPOCH + timedelta(microseconds=int(parts[0]))
            return cls(responded, _EPOCH + timedelta(microseconds=int(parts[1])), int(parts[2]))
        except OverflowError:
            return None

    def condition(self, *, after: bool) -> RawSQL:
        """Rows after (or before) this cursor in the queue's order, as SQL the queue indexes answer."""
        table = RefundTicket._meta.db_table
        responded, due, pk = (
            f'"{table}"."{column}"' for column in ("first_responded_at", "first_response_due_at", "id")
        )
        # Unanswered tickets (NULL) sort first, and a row comparison never matches a NULL: two cases.
        if self.responded_at is None:
            rest = f"{responded} IS NULL AND ({due}, {pk}) {'>' if after else '<'} (%s, %s)"
            sql = f"(({rest}) OR {responded} IS NOT NULL)" if after else f"({rest})"
            return RawSQL(sql, (self.due_at, self.ticket_id), output_field=BooleanField())
        rest = f"{responded} IS NOT NULL AND ({responded}, {due}, {pk}) {'>' if after else '<'} (%s, %s, %s)"
        sql = f"({rest})" if after else f"(({rest}) OR {responded} IS NULL)"
        return RawSQL(sql, (self.responded_at, self.due_at, self.ticket_id), output_field=BooleanField())


@dataclass(frozen=True)
class QueuePage:
    tickets: list[RefundTicket]
    # Cursors for the links to the neighbouring pages; None where there is none.
    previous_before: str | None
    next_after: str | None

    @property
    def has_other_pages(self) -> bool:
        return self.previous_before is not None or self.next_after is not None


def queue_page(tickets: QuerySet[RefundTicket], *, after: str = "", before: str = "", size: int) -> QueuePage:
    """One page of a console_queue() queryset: the first, the one after cursor `after`, or the one before `before`."""
    after_cursor, before_cursor = QueueCursor.decode(after), QueueCursor.decode(before)
    if before_cursor is not None:
        rows = list(tickets.filter(before_cursor.condition(after=False)).reverse()[: size + 1])
        if len(rows) <= size:
            # Back at the start: show a full first page (rows may have left the view meanwhile).
            return queue_page(tickets, size=size)
        rows = rows[:size][::-1]
        more_before = more_after = True
    else:
        page = tickets.filter(after_cursor.condition(after=True)) if after_cursor is not None else tickets
        rows = list(page[: size + 1])
        if not rows and after_cursor is not None:
            return queue_page(tickets, size=size)  # nothing left after the cursor: the first page
        more_after = len(rows) > size
        rows = rows[:size]
        more_before = after_cursor is not None
    if not rows:
        return QueuePage(tickets=[], previous_before=None, next_after=None)
    return QueuePage(
        tickets=rows,
        previous_before=QueueCursor.of(rows[0]).encode() if more_before else None,
        next_after=QueueCursor.of(rows[-1]).encode() if more_after else None,
    )


def queue_row(*, ticket_id: int, user: User) -> RefundTicket | None:
    """One ticket as a queue row for `user` (any state: the page decides whether its view shows it)."""
    from messaging.selectors import with_unread

    base = RefundTicket.objects.select_related("order", "buyer", "assigned_agent", "conversation").prefetch_related(
        "labels"
    )
    return with_unread(base, user=user).filter(pk=ticket_id).first()


def timeline(*, ticket: RefundTicket, for_buyer: bool) -> QuerySet[TicketEvent]:
    events = TicketEvent.objects.filter(ticket=ticket).select_related("actor").order_by("created_at", "id")
    if for_buyer:
        events = events.filter(visible_to_buyer=True)
    return events


@dataclass(frozen=True)
class ProgressStep:
    status: str
    label: str
    state: str  # "done", "current" or "todo"
    at: datetime | None
    promised_by: datetime | None


REFUND_ONLY_PATH = (
    TicketStatus.REQUESTED,
    TicketStatus.UNDER_REVIEW,
    TicketStatus.APPROVED_REFUND_ONLY,
    TicketStatus.REFUND_PENDING,
    TicketStatus.REFUNDED,
)
RETURN_PATH = (
    TicketStatus.REQUESTED,
    TicketStatus.UNDER_REVIEW,
    TicketStatus.RETURN_REQUIRED,
    TicketStatus.RETURN_IN_TRANSIT,
    TicketStatus.RETURN_RECEIVED,
    TicketStatus.REFUND_PENDING,
    TicketStatus.REFUNDED,
)


def progress_steps(*, ticket: RefundTicket, events: Iterable[TicketEvent]) -> list[ProgressStep]:
    """The buyer's tracker: the path of the ticket's kind (or the way it actually went), with times."""
    from tickets.notifications import promised_by

    reached: dict[str, datetime] = {}
    for event in events:
        if event.to_status:
            reached[event.to_status] = event.created_at
    went_return = ticket.kind == RefundKind.RETURN_AND_REFUND and TicketStatus.APPROVED_REFUND_ONLY not in reached
    path = list(RETURN_PATH if went_return else REFUND_ONLY_PATH)
    if ticket.status not in path:
        # Off the main path (evidence asked, rejected, cancelled, closed, escalated): show where it stands.
        known = [status for status in path if status in reached]
        path = [*known, TicketStatus(ticket.status)]
    current = path.index(TicketStatus(ticket.status))
    steps = []
    for index, status in enumerate(path):
        state = "done" if index < current else "current" if index == current else "todo"
        if status == ticket.status and ticket.status in FINAL_STATUSES:
            state = "done"
        at = reached.get(status)
        due = promised_by(status=status, since=at) if state == "current" and at else None
        steps.append(ProgressStep(status=status, label=str(status.label), state=state, at=at, promised_by=due))
    return steps


def payouts_for_finance() -> QuerySet[Payout]:
    """Payouts that wait for finance: approval above the threshold, or failed after every retry."""
    return (
        Payout.objects.filter(status__in=[PayoutStatus.AWAITING_APPROVAL, PayoutStatus.FAILED])
        .select_related("ticket", "ticket__buyer", "ticket__order")
        .order_by("created_at")
    )


def returns_for_warehouse() -> QuerySet[RefundTicket]:
    """Parcels on their way back, the longest travelling first."""
    return (
        RefundTicket.objects.filter(status=TicketStatus.RETURN_IN_TRANSIT)
        .select_related("buyer", "order")
        .order_by("return_shipped_at", "id")
    )
