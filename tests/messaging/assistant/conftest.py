"""The triage assistant's fixtures: the assistant on, and a scripted chat with it through the real message path."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from messaging import services as messaging_services
from messaging.models import AssistantDialog, Message, MessageKind
from tests import factories
from tests.messaging.test_attachments import completed_upload
from tickets import tasks as ticket_tasks


@pytest.fixture
def assistant_on(settings: Any) -> None:
    """tests/settings.py keeps the assistant off for the rest of the suite."""
    settings.REFUNDCHAT_ASSISTANT_ENABLED = True


@dataclass
class Chat:
    """alice's refund ticket with the assistant: `say`/`tap`/`send_photos` go through messaging.services, and the
    dialog step runs as in production: scheduled on commit, as the Celery task (eager in tests)."""

    ticket: Any
    capture: Any
    sent: list[Message] = field(default_factory=list)

    @property
    def buyer(self) -> Any:
        return self.ticket.buyer

    @property
    def dialog(self) -> AssistantDialog:
        return AssistantDialog.objects.get(conversation__ticket=self.ticket)

    def say(self, text: str, *, client_id: uuid.UUID | None = None) -> list[Message]:
        """What the buyer writes; returns what the assistant answered."""
        before = self.last_seq()
        with self.capture(execute=True):
            posted = messaging_services.post_message(
                conversation_id=self.ticket.conversation.pk,
                sender=self.buyer,
                body=text,
                client_id=client_id or uuid.uuid4(),
            )
        self.sent.append(posted.message)
        return self.replies_after(before)

    tap = say  # a quick reply is sent as its label

    def send_files(self, *, count: int = 1, kind: str = "image") -> list[Message]:
        before = self.last_seq()
        uploads = []
        for _n in range(count):
            upload, attachment = completed_upload(self.ticket, self.buyer)
            if kind != "image":
                attachment.kind = kind
                attachment.save(update_fields=["kind"])
            uploads.append(upload.pk)
        with self.capture(execute=True):
            messaging_services.post_message_with_attachments(
                conversation_id=self.ticket.conversation.pk,
                sender=self.buyer,
                body="",
                client_id=uuid.uuid4(),
                upload_ids=uploads,
            )
        return self.replies_after(before)

    def last_seq(self) -> int:
        return (
            Message.objects.filter(conversation__ticket=self.ticket)
            .order_by("-seq")
            .values_list("seq", flat=True)
            .first()
            or 0
        )

    def replies_after(self, seq: int) -> list[Message]:
        return list(
            Message.objects.filter(conversation__ticket=self.ticket, seq__gt=seq, kind=MessageKind.ASSISTANT).order_by(
                "seq"
            )
        )

    def assistant_messages(self) -> list[Message]:
        return self.replies_after(0)


def open_chat(
    capture: Any,
    *,
    language: str = "zh-hans",
    kind: str = "refund_only",
    price_cents: int = 3900,
    joined_days_ago: int = 400,
    delivered_days_ago: int | None = 2,
    username: str = "alice",
    title: str | None = None,
) -> Chat:
    alice = factories.buyer(username=username, first_name="Alice")
    alice.date_joined = timezone.now() - timedelta(days=joined_days_ago)
    alice.save(update_fields=["date_joined"])
    delivered = timezone.now() - timedelta(days=delivered_days_ago) if delivered_days_ago is not None else None
    order = factories.order_with_items(buyer=alice, items=[(price_cents, 1)], delivered_at=delivered)
    if title:
        order.items.update(title=title)
    with capture(execute=True):
        ticket = factories.open_ticket(order=order, kind=kind, language=language)
    return Chat(ticket=ticket, capture=capture)


@pytest.fixture
def chat_factory(assistant_on: None, django_capture_on_commit_callbacks: Any) -> Any:
    def make(**kwargs: Any) -> Chat:
        return open_chat(django_capture_on_commit_callbacks, **kwargs)

    return make


@pytest.fixture
def triage() -> Any:
    """The new-ticket task, for tests that open tickets by hand."""
    return ticket_tasks.triage_new_ticket
