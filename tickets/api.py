"""REST API of the tickets app (docs/api.md): orders, tickets and their actions, canned replies, webhooks.

Thin: every write calls the service the web pages and the console call (tickets.orders, tickets.workflow,
tickets.services, tickets.canned, tickets.webhooks); every read goes through the same selectors, scoped to
the caller. Errors are shaped by refundchat.api.errors.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from refundchat.api.errors import Conflict
from refundchat.api.permissions import (
    ConsoleUser,
    TicketHandler,
    api_permissions,
    api_user,
    is_staff_reader,
    visible_ticket,
)
from tickets import canned, orders, selectors, services, webhooks, workflow
from tickets.models import (
    CannedReply,
    Order,
    RefundKind,
    RefundReason,
    RefundTicket,
    ReplyLanguage,
    ReturnCondition,
    Team,
    TicketEventKind,
    TicketStatus,
    WebhookEvent,
    WebhookSubscription,
)
from tickets.workflow import Need, Transition

MAX_INT = 2_147_483_647  # PositiveIntegerField's ceiling on PostgreSQL
# Ids in URLs: digits only, short enough for a bigint.
ID = r"[0-9]{1,18}"

# --- orders -----------------------------------------------------------------------------------------------------


class OrderItemSerializer(serializers.Serializer[Any]):
    sku = serializers.CharField(max_length=64)
    title = serializers.CharField(max_length=200)
    unit_price_cents = serializers.IntegerField(min_value=0, max_value=MAX_INT)
    quantity = serializers.IntegerField(min_value=1, max_value=MAX_INT)


class OrderTicketSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=TicketStatus.choices)


class OrderSerializer(serializers.Serializer[Any]):
    order_no = serializers.CharField()
    buyer = serializers.CharField(source="buyer.username")
    paid_total_cents = serializers.IntegerField()
    shipping_fee_cents = serializers.IntegerField()
    refund_committed_cents = serializers.IntegerField(help_text="What approved refunds already promise back.")
    paid_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    recipient_name = serializers.CharField()
    shipping_address = serializers.CharField()
    created_at = serializers.DateTimeField()
    items = OrderItemSerializer(many=True)
    tickets = OrderTicketSerializer(many=True, help_text="The order's refund tickets and their states.")


class OrderWriteSerializer(serializers.Serializer[Any]):
    """An order as the shop's system sends it; the same body again changes nothing."""

    buyer = serializers.RegexField(
        r"^[\w.@+-]+\Z", max_length=150, help_text="The buyer's username; a new buyer account is made if needed."
    )
    buyer_email = serializers.EmailField(required=False, allow_blank=True, default="")
    paid_total_cents = serializers.IntegerField(min_value=0, max_value=MAX_INT)
    shipping_fee_cents = serializers.IntegerField(min_value=0, max_value=MAX_INT, default=0)
    paid_at = serializers.DateTimeField()
    delivered_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    recipient_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    shipping_address = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    items = serializers.ListField(child=OrderItemSerializer(), min_length=1, max_length=200)

    def order_data(self, *, order_no: str) -> orders.OrderData:
        data = self.validated_data
        return orders.OrderData(
            order_no=order_no,
            buyer_username=data["buyer"],
            buyer_email=data["buyer_email"],
            paid_total_cents=data["paid_total_cents"],
            shipping_fee_cents=data["shipping_fee_cents"],
            paid_at=data["paid_at"],
            delivered_at=data["delivered_at"],
            recipient_name=data["recipient_name"],
            shipping_address=data["shipping_address"],
            items=[orders.OrderItemData(**item) for item in data["items"]],
        )


ORDER_NO = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"


class OrderCreateSerializer(OrderWriteSerializer):
    order_no = serializers.RegexField(rf"^{ORDER_NO}\Z", help_text="The shop's order number: the idempotency key.")


class OrderFilter(django_filters.FilterSet):
    order_no = django_filters.CharFilter()
    buyer = django_filters.CharFilter(field_name="buyer__username")
    paid_after = django_filters.IsoDateTimeFilter(field_name="paid_at", lookup_expr="gte")
    paid_before = django_filters.IsoDateTimeFilter(field_name="paid_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields: list[str] = []


class OrderViewSet(viewsets.GenericViewSet[Order]):
    """Orders: the shop's system pushes them in (create or update, idempotent by order number); buyers read
    their own, staff every one."""

    api_resource = "orders"
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    lookup_field = "order_no"
    lookup_value_regex = ORDER_NO

    def get_queryset(self) -> QuerySet[Order]:
        user = self.request.user
        queryset = Order.objects.select_related("buyer").prefetch_related("items", "tickets")
        if user.has_perm("tickets.view_order"):
            return queryset
        return queryset.filter(buyer_id=user.pk)

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(OrderSerializer(page, many=True).data)

    def retrieve(self, request: Request, order_no: str) -> Response:
        return Response(OrderSerializer(self.get_object()).data)

    @extend_schema(
        request=OrderCreateSerializer,
        responses={201: OrderSerializer, 200: OpenApiResponse(OrderSerializer, description="Already known: updated.")},
    )
    def create(self, request: Request) -> Response:
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._upsert(serializer, order_no=serializer.validated_data["order_no"])

    @extend_schema(
        request=OrderWriteSerializer,
        responses={200: OrderSerializer, 201: OpenApiResponse(OrderSerializer, description="New: created.")},
    )
    def update(self, request: Request, order_no: str) -> Response:
        serializer = OrderWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._upsert(serializer, order_no=order_no)

    def _upsert(self, serializer: OrderWriteSerializer, *, order_no: str) -> Response:
        order, created = orders.do_upsert_order(
            data=serializer.order_data(order_no=order_no), by=api_user(self.request)
        )
        fresh = Order.objects.select_related("buyer").prefetch_related("items", "tickets").get(pk=order.pk)
        return Response(OrderSerializer(fresh).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


# --- tickets ----------------------------------------------------------------------------------------------------


class TicketEventSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=TicketEventKind.choices)
    actor_id = serializers.IntegerField(allow_null=True)
    from_status = serializers.CharField(help_text="Empty unless the event changed the state.")
    to_status = serializers.CharField(help_text="Empty unless the event changed the state.")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "data" would shadow Serializer.data as a class attribute.
        return {**super().get_fields(), "data": serializers.DictField()}


class TicketItemSerializer(serializers.Serializer[Any]):
    order_item_id = serializers.IntegerField()
    sku = serializers.CharField(source="order_item.sku")
    title = serializers.CharField(source="order_item.title")
    unit_price_cents = serializers.IntegerField(source="order_item.unit_price_cents")
    quantity = serializers.IntegerField()


class TicketSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    number = serializers.CharField()
    order_no = serializers.CharField(source="order.order_no")
    buyer_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=RefundKind.choices)
    reason = serializers.ChoiceField(choices=RefundReason.choices)
    status = serializers.ChoiceField(choices=TicketStatus.choices)
    assigned_agent_id = serializers.IntegerField(allow_null=True)
    team = serializers.CharField(help_text="The back-office team it is handed to, or empty.")
    requested_amount_cents = serializers.IntegerField()
    approved_amount_cents = serializers.IntegerField(allow_null=True)
    refund_shipping_fee = serializers.BooleanField()
    return_carrier = serializers.CharField()
    return_tracking_no = serializers.CharField()
    language = serializers.CharField()
    conversation_id = serializers.IntegerField(source="conversation.pk")
    last_seq = serializers.IntegerField(source="conversation.last_seq", help_text="The conversation's last message.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    first_response_due_at = serializers.DateTimeField()
    first_responded_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)


class TicketDetailSerializer(TicketSerializer):
    description = serializers.CharField()
    items = TicketItemSerializer(many=True)
    history = TicketEventSerializer(many=True, help_text="The timeline; buyers see only the entries meant for them.")
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(workflow.TRANSITIONS)),
        help_text="The transitions the caller may take now (POST /tickets/{id}/<action>/).",
    )


class TicketFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=TicketStatus.choices)
    kind = django_filters.ChoiceFilter(choices=RefundKind.choices)
    reason = django_filters.ChoiceFilter(choices=RefundReason.choices)
    team = django_filters.ChoiceFilter(choices=Team.choices)
    order_no = django_filters.CharFilter(field_name="order__order_no")
    assigned_agent = django_filters.NumberFilter(field_name="assigned_agent_id", min_value=1, max_value=MAX_INT)
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")

    class Meta:
        model = RefundTicket
        fields: list[str] = []


class TransitionSerializer(serializers.Serializer[Any]):
    """The inputs of a transition; each action's schema lists the ones it needs."""

    def transition_input(self) -> workflow.TransitionInput:
        return workflow.TransitionInput(**self.validated_data)


def transition_serializer(transition: Transition) -> type[TransitionSerializer]:
    """A request body for one transition: exactly the fields its needs name (workflow.Need)."""
    fields: dict[str, serializers.Field[Any, Any, Any, Any]] = {}
    if Need.REASON in transition.needs:
        fields["reason"] = serializers.CharField(max_length=500, help_text="Shown to the buyer.")
    else:
        fields["reason"] = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    if Need.AMOUNT in transition.needs or Need.CONDITION in transition.needs:
        # Receiving a return may lower the approved amount (never raise it).
        fields["amount_cents"] = serializers.IntegerField(
            min_value=1, max_value=MAX_INT, required=Need.AMOUNT in transition.needs
        )
    if Need.AMOUNT in transition.needs:
        fields["refund_shipping_fee"] = serializers.BooleanField(required=False, default=False)
    if Need.TRACKING in transition.needs:
        fields["carrier"] = serializers.ChoiceField(choices=sorted(workflow.CARRIERS))
        fields["tracking_no"] = serializers.CharField(max_length=32)
    if Need.CONDITION in transition.needs:
        fields["condition"] = serializers.ChoiceField(choices=ReturnCondition.choices)
    name = "".join(part.title() for part in transition.name.split("_")) + "Request"
    return type(name, (TransitionSerializer,), {**fields, "__doc__": str(transition.label)})


class TransferSerializer(serializers.Serializer[Any]):
    agent_id = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class TicketViewSet(viewsets.GenericViewSet[RefundTicket]):
    """Refund tickets with their state and history. Buyers see their own, console staff every one.

    Each transition of the refund workflow is an action endpoint that calls tickets.workflow.do_transition,
    like the buttons of the buyer's page and the console; claim, transfer and unassign call tickets.services.
    """

    api_resource = "tickets"
    serializer_class = TicketSerializer
    lookup_value_regex = ID
    filterset_class = TicketFilter

    def get_queryset(self) -> QuerySet[RefundTicket]:
        user = self.request.user
        if is_staff_reader(user):
            return RefundTicket.objects.select_related("order", "conversation")
        return RefundTicket.objects.filter(buyer_id=user.pk).select_related("order", "conversation")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(TicketSerializer(page, many=True).data)

    @extend_schema(responses=TicketDetailSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return self._detail(ticket_id=int(pk))

    def _detail(self, *, ticket_id: int, status_code: int = status.HTTP_200_OK) -> Response:
        user = api_user(self.request)
        ticket = visible_ticket(user=user, ticket_id=ticket_id)
        staff = is_staff_reader(user)
        ticket.history = list(selectors.timeline(ticket=ticket, for_buyer=not staff))  # type: ignore[attr-defined]
        ticket.actions = [t.name for t in workflow.available_transitions(ticket=ticket, user=user)]  # type: ignore[attr-defined]
        return Response(TicketDetailSerializer(ticket).data, status=status_code)

    def _ticket_id(self, pk: str) -> int:
        # Only a ticket the caller may see is acted on: another buyer's is a 404, as on the web.
        return visible_ticket(user=api_user(self.request), ticket_id=int(pk)).pk

    @extend_schema(request=None, responses=TicketDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=api_permissions(TicketHandler))
    def claim(self, request: Request, pk: str) -> Response:
        ticket_id = self._ticket_id(pk)
        try:
            services.claim_ticket(ticket_id=ticket_id, agent=api_user(request))
        except services.TicketError as error:
            raise Conflict(str(error)) from None
        return self._detail(ticket_id=ticket_id)

    @extend_schema(request=None, responses=TicketDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=api_permissions(TicketHandler))
    def unassign(self, request: Request, pk: str) -> Response:
        ticket_id = self._ticket_id(pk)
        try:
            services.unassign_ticket(ticket_id=ticket_id, by=api_user(request))
        except services.TicketError as error:
            raise Conflict(str(error)) from None
        return self._detail(ticket_id=ticket_id)

    @extend_schema(request=TransferSerializer, responses=TicketDetailSerializer)
    @action(detail=True, methods=["post"], permission_classes=api_permissions(TicketHandler))
    def transfer(self, request: Request, pk: str) -> Response:
        ticket_id = self._ticket_id(pk)
        serializer = TransferSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.transfer_ticket(
                ticket_id=ticket_id,
                by=api_user(request),
                to_agent_id=serializer.validated_data["agent_id"],
                note=serializer.validated_data["note"],
            )
        except services.TicketError as error:
            raise Conflict(str(error)) from None
        return self._detail(ticket_id=ticket_id)

    def _transition(self, request: Request, pk: str, *, name: str) -> Response:
        ticket_id = self._ticket_id(pk)
        serializer = transition_serializers[name](data=request.data)
        serializer.is_valid(raise_exception=True)
        workflow.do_transition(
            ticket_id=ticket_id, name=name, user=api_user(request), given=serializer.transition_input()
        )
        return self._detail(ticket_id=ticket_id)


transition_serializers: dict[str, type[TransitionSerializer]] = {
    name: transition_serializer(transition) for name, transition in workflow.TRANSITIONS.items()
}


def _transition_action(transition: Transition) -> Any:
    """One POST endpoint per transition, documented with its own request body and who may take it."""

    def perform(self: TicketViewSet, request: Request, pk: str) -> Response:
        return self._transition(request, pk, name=transition.name)

    perform.__name__ = transition.name
    actors = ", ".join(sorted(transition.actors))
    sources = ", ".join(sorted(transition.sources))
    documented = extend_schema(
        summary=str(transition.label),
        description=f"`{transition.name}`: from {sources} to {transition.target}. Taken by: {actors}.",
        request=transition_serializers[transition.name],
        responses=TicketDetailSerializer,
    )(perform)
    return action(detail=True, methods=["post"], url_path=transition.name)(documented)


# Transitions only timers and the assistant take (closing a stale ticket) have no endpoint.
for _name, _transition in workflow.TRANSITIONS.items():
    if _transition.actors - {workflow.Actor.SYSTEM, workflow.Actor.BOT}:
        setattr(TicketViewSet, _name, _transition_action(_transition))


# --- canned replies ---------------------------------------------------------------------------------------------


class CannedReplySerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    title = serializers.CharField()
    language = serializers.ChoiceField(choices=ReplyLanguage.choices)
    body = serializers.CharField(help_text="May use {buyer_name}, {order_no}, {refund_amount} and {eta}.")
    team = serializers.SerializerMethodField(help_text="A team reply (every agent may use it; managers edit it).")
    owner_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_team(self, reply: CannedReply) -> bool:
        return reply.owner_id is None


class CannedReplyWriteSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(max_length=canned.MAX_TITLE_LENGTH)
    language = serializers.ChoiceField(choices=ReplyLanguage.choices)
    body = serializers.CharField(max_length=canned.MAX_BODY_LENGTH)
    team = serializers.BooleanField(required=False, default=False)


class CannedReplyViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet[CannedReply]):
    """The caller's own canned replies and the team's (console staff only)."""

    api_resource = "canned_replies"
    serializer_class = CannedReplySerializer
    lookup_value_regex = ID
    permission_classes = api_permissions(ConsoleUser)
    queryset = CannedReply.objects.none()  # the model, for the schema; get_queryset scopes the rows
    pagination_class = None  # the picker's list: at most canned.PICKER_LIMIT, see get_queryset
    http_method_names = ["get", "post", "put", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[CannedReply]:
        return canned.replies_for(user=api_user(self.request))

    @extend_schema(responses=CannedReplySerializer(many=True))
    def list(self, request: Request) -> Response:
        replies = self.get_queryset()[: canned.PICKER_LIMIT]
        return Response(CannedReplySerializer(replies, many=True).data)

    @extend_schema(request=CannedReplyWriteSerializer, responses={201: CannedReplySerializer})
    def create(self, request: Request) -> Response:
        serializer = CannedReplyWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reply = canned.save_reply(user=api_user(request), **serializer.validated_data)
        return Response(CannedReplySerializer(reply).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CannedReplyWriteSerializer, responses=CannedReplySerializer)
    def update(self, request: Request, pk: str) -> Response:
        serializer = CannedReplyWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        reply = canned.save_reply(user=api_user(request), reply_id=int(pk), **serializer.validated_data)
        return Response(CannedReplySerializer(reply).data)

    def destroy(self, request: Request, pk: str) -> Response:
        canned.delete_reply(user=api_user(request), reply_id=int(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- webhook subscriptions --------------------------------------------------------------------------------------


class WebhookModelPermissions(permissions.DjangoModelPermissions):
    """The model permissions of the admin, reading included (managers view, only admins change)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class WebhookSubscriptionSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    url = serializers.URLField()
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))
    active = serializers.BooleanField()
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(help_text="The signing secret: shown once, in this answer only.")


class WebhookSubscriptionWriteSerializer(serializers.Serializer[Any]):
    url = serializers.URLField(max_length=500)
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), min_length=1, max_length=len(WebhookEvent)
    )
    secret = serializers.CharField(
        max_length=128,
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        help_text=_("At least 16 characters; empty: keep the current one, or make one for a new subscription."),
    )
    active = serializers.BooleanField(required=False, default=True)
    description = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class WebhookSubscriptionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[WebhookSubscription]
):
    """Receivers of ticket events: each gets every matching event, signed with its own secret."""

    api_resource = "webhooks"
    serializer_class = WebhookSubscriptionSerializer
    lookup_value_regex = ID
    permission_classes = api_permissions(WebhookModelPermissions)
    queryset = WebhookSubscription.objects.none()  # for the permission class; get_queryset scopes the rows
    http_method_names = ["get", "post", "put", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[WebhookSubscription]:
        return webhooks.subscriptions_for(user=api_user(self.request))

    @extend_schema(request=WebhookSubscriptionWriteSerializer, responses={201: WebhookSubscriptionCreatedSerializer})
    def create(self, request: Request) -> Response:
        serializer = WebhookSubscriptionWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = webhooks.do_save_subscription(by=api_user(request), **serializer.validated_data)
        return Response(WebhookSubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookSubscriptionWriteSerializer, responses=WebhookSubscriptionSerializer)
    def update(self, request: Request, pk: str) -> Response:
        subscription = self.get_object()
        serializer = WebhookSubscriptionWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = webhooks.do_save_subscription(
            by=api_user(request), subscription_id=subscription.pk, **serializer.validated_data
        )
        return Response(WebhookSubscriptionSerializer(subscription).data)

    def destroy(self, request: Request, pk: str) -> Response:
        webhooks.do_delete_subscription(by=api_user(request), subscription_id=self.get_object().pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
