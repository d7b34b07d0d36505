"""REST API of evidence files (docs/api.md): attachment metadata. The bytes arrive over tus (media/tus.py,
docs/uploads.md) and are fetched from the permission-checked URLs listed in `urls`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from media import selectors
from media.models import DERIVED_FIELDS, Attachment, AttachmentKind, AttachmentStatus
from refundchat.api.permissions import visible_ticket


class AttachmentUrlsSerializer(serializers.Serializer[Any]):
    """Where to fetch the original and each derived file (null while it does not exist)."""

    original = serializers.CharField(allow_null=True)
    thumbnail_small = serializers.CharField(allow_null=True)
    thumbnail_large = serializers.CharField(allow_null=True)
    shareable = serializers.CharField(allow_null=True)
    poster = serializers.CharField(allow_null=True)
    playable = serializers.CharField(allow_null=True)


assert set(AttachmentUrlsSerializer._declared_fields) == {"original", *DERIVED_FIELDS}


class AttachmentSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    ticket_id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AttachmentKind.choices)
    status = serializers.ChoiceField(choices=AttachmentStatus.choices)
    failure_reason = serializers.CharField()
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    urls = AttachmentUrlsSerializer()
    filename = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    uploader_id = serializers.IntegerField(allow_null=True)
    message_seq = serializers.IntegerField(allow_null=True, help_text="The chat message that carries it, if any.")
    created_at = serializers.DateTimeField()


def attachment_data(attachment: Attachment) -> dict[str, Any]:
    return {
        **selectors.message_attachment_payload(attachment=attachment),
        "sha256": attachment.sha256,
        "uploader_id": attachment.uploader_id,
        "message_seq": attachment.message.seq if attachment.message is not None else None,
        "created_at": attachment.created_at,
    }


class TicketAttachmentsView(GenericAPIView[Any]):
    """Every evidence file of a ticket, oldest first (a ticket holds a bounded number: no pages)."""

    api_resource = "attachments"
    serializer_class = AttachmentSerializer
    queryset = Attachment.objects.none()  # the model, for the schema
    pagination_class = None

    # A list: a GenericAPIView's GET is documented as one object unless told (found by tests/api/test_contract.py).
    @extend_schema(responses=AttachmentSerializer(many=True))
    def get(self, request: Request, ticket_id: int) -> Response:
        ticket = visible_ticket(user=request.user, ticket_id=ticket_id)
        attachments = selectors.ticket_evidence(user=request.user, ticket=ticket)
        return Response(AttachmentSerializer([attachment_data(a) for a in attachments], many=True).data)


class AttachmentView(GenericAPIView[Any]):
    """One attachment's metadata."""

    api_resource = "attachments"
    serializer_class = AttachmentSerializer
    queryset = Attachment.objects.none()  # the model, for the schema

    def get(self, request: Request, attachment_id: int) -> Response:
        attachment = selectors.viewable_attachment(user=request.user, attachment_id=attachment_id)
        return Response(AttachmentSerializer(attachment_data(attachment)).data)
