"""REST API of a ticket's conversation (docs/api.md): messages since a sequence number, and sending one.

Sending goes through messaging.services.post_message, as the socket does: the message gets its sequence
number, is broadcast to every open socket after commit, and a resend with the same client_id is stored once.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from media.api import AttachmentUrlsSerializer
from messaging import selectors, services
from messaging.models import MESSAGE_MAX_LENGTH, Message, MessageKind
from refundchat.api.pagination import ApiCursorPagination
from refundchat.api.permissions import api_user, visible_ticket

MAX_SEQ = 2**62


class MessageAttachmentSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    ticket_id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    failure_reason = serializers.CharField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    urls = AttachmentUrlsSerializer()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()


class MessageSerializer(serializers.Serializer[Any]):
    """A message as the socket's `message` frame carries it (docs/protocol.md)."""

    conversation = serializers.IntegerField()
    seq = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    sender_id = serializers.IntegerField(allow_null=True, help_text="Null for system messages.")
    sender_name = serializers.CharField()
    body = serializers.CharField()
    client_id = serializers.UUIDField(allow_null=True)
    created_at = serializers.DateTimeField()
    attachments = MessageAttachmentSerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        # "data" would shadow Serializer.data as a class attribute.
        return {
            **super().get_fields(),
            "data": serializers.DictField(help_text="A card's content; {} for other kinds."),
        }


class SendMessageSerializer(serializers.Serializer[Any]):
    body = serializers.CharField(max_length=MESSAGE_MAX_LENGTH, trim_whitespace=False, allow_blank=True)
    client_id = serializers.UUIDField(help_text="The client's id of this message: a resend with it is stored once.")


class MessagePagination(ApiCursorPagination):
    ordering = "seq"
    page_size = selectors.CATCH_UP_BATCH


class TicketMessagesView(GenericAPIView[Any]):
    """The messages of a ticket's conversation, oldest first; and sending one."""

    api_resource = "messages"
    serializer_class = MessageSerializer
    pagination_class = MessagePagination
    queryset = Message.objects.none()  # the model, for the schema

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "after_seq", int, description="Only messages after this sequence number (the last one you have)."
            )
        ],
        responses=MessageSerializer(many=True),
    )
    def get(self, request: Request, ticket_id: int) -> Response:
        ticket = visible_ticket(user=request.user, ticket_id=ticket_id)
        after = serializers.IntegerField(min_value=0, max_value=MAX_SEQ).run_validation(
            request.query_params.get("after_seq", 0)
        )
        messages = selectors.messages_since(conversation_id=ticket.conversation.pk, after_seq=after)
        page = self.paginate_queryset(messages)
        assert page is not None
        return self.get_paginated_response([selectors.serialize_message(message) for message in page])

    @extend_schema(
        request=SendMessageSerializer,
        responses={
            201: MessageSerializer,
            200: OpenApiResponse(MessageSerializer, description="A resend: the message stored before."),
        },
    )
    def post(self, request: Request, ticket_id: int) -> Response:
        ticket = visible_ticket(user=request.user, ticket_id=ticket_id)
        serializer = SendMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        posted = services.post_message(
            conversation_id=ticket.conversation.pk,
            sender=api_user(request),
            body=serializer.validated_data["body"],
            client_id=serializer.validated_data["client_id"],
        )
        return Response(
            selectors.serialize_message(posted.message),
            status=status.HTTP_201_CREATED if posted.created else status.HTTP_200_OK,
        )
