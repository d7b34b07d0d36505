"""The message hot path with the assistant: no query more, and the step is only scheduled (after commit)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import services as messaging_services
from messaging.models import Conversation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store_path")]


def post(chat: Any, text: str, capture: Any) -> tuple[int, int]:
    """(queries, on-commit callbacks) of storing one buyer message."""
    with CaptureQueriesContext(connection) as queries, capture(execute=False) as callbacks:
        messaging_services.post_message(
            conversation_id=chat.ticket.conversation.pk, sender=chat.buyer, body=text, client_id=uuid.uuid4()
        )
    return len(queries.captured_queries), len(callbacks)


def test_a_buyer_message_costs_no_query_more_with_the_assistant(
    chat_factory: Any, django_capture_on_commit_callbacks: Any
) -> None:
    chat = chat_factory(language="en")
    active_queries, active_callbacks = post(chat, "hello", django_capture_on_commit_callbacks)
    Conversation.objects.filter(ticket=chat.ticket).update(assistant_active=False)
    idle_queries, idle_callbacks = post(chat, "hello again", django_capture_on_commit_callbacks)
    assert active_queries == idle_queries
    # The frames, and with the assistant the step's Celery task: nothing runs before the commit.
    assert active_callbacks == idle_callbacks + 1
