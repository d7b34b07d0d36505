"""Two workers running the assistant's task for one conversation at once: each buyer message gets one step."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection

from messaging import services as messaging_services
from messaging.assistant import services as assistant
from messaging.models import AssistantState, Message, MessageKind
from tests.concurrency import run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_concurrent_tasks_process_each_message_once_in_order(chat_factory: Any, monkeypatch: Any) -> None:
    chat = chat_factory(language="en")
    # The messages wait (as when the worker is busy) and three workers then take the task at once.
    monkeypatch.setattr(messaging_services, "_schedule_assistant", lambda **kwargs: None)
    for text in ("yes", "the box arrived crushed", "how long does the refund take?"):
        messaging_services.post_message(
            conversation_id=chat.ticket.conversation.pk, sender=chat.buyer, body=text, client_id=uuid.uuid4()
        )
    conversation_id = chat.ticket.conversation.pk
    results = run_concurrently([lambda: assistant.process_pending(conversation_id=conversation_id)] * 3)
    assert sum(results) == 3, results
    steps = list(chat.dialog.steps.exclude(seq=0).order_by("id"))
    assert [s.intent for s in steps] == ["yes", "damaged_in_transit", "ask_refund_time"]
    assert [s.seq for s in steps] == sorted(s.seq for s in steps)
    assert chat.dialog.state == AssistantState.EVIDENCE
    # One answer per step: greeting, problem question, evidence request, policy answer.
    assert Message.objects.filter(conversation_id=conversation_id, kind=MessageKind.ASSISTANT).count() == 4
