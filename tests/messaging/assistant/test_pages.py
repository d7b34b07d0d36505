"""The assistant on pages and sockets: the buyer's chat, the live frames, the console's hand-back, the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from messaging import realtime
from messaging.models import AssistantDialog, AssistantState
from tests import factories
from tickets.models import TicketEvent, TicketEventKind
from tickets.roles import Role

pytestmark = pytest.mark.django_db


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_buyer_chat_shows_quick_replies_and_the_order_card(chat_factory: Any) -> None:
    chat = chat_factory()
    page = logged_in(chat.buyer).get(reverse("tickets:ticket_detail", args=[chat.ticket.pk])).content.decode()
    assert 'data-testid="quick-reply"' in page
    assert 'data-quick-reply="是的，就是这个订单"' in page
    assert 'data-testid="order-card-message"' in page
    assert "退款助手" in page  # the sender of the assistant's messages
    chat.say("是的")
    chat.say("质量问题")
    page = logged_in(chat.buyer).get(reverse("tickets:ticket_detail", args=[chat.ticket.pk])).content.decode()
    assert 'data-testid="assistant-upload"' in page


def test_the_buyer_page_queries_do_not_grow_with_the_dialog(
    chat_factory: Any, django_assert_max_num_queries: Any
) -> None:
    chat = chat_factory()
    client = logged_in(chat.buyer)
    url = reverse("tickets:ticket_detail", args=[chat.ticket.pk])
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as baseline:
        client.get(url)
    for text in ("是的", "阿巴阿巴", "质量问题", "退款多久到账"):
        chat.say(text)
    with django_assert_max_num_queries(len(baseline.captured_queries)):
        client.get(url)


def test_assistant_messages_reach_the_socket_with_their_quick_replies(chat_factory: Any, published: Any) -> None:
    chat = chat_factory(language="en")
    published.clear()
    chat.say("yes")
    group = realtime.conversation_group(chat.ticket.conversation.pk)
    frames = [frame for g, frame in published if g == group and frame["type"] == "message"]
    buyer, assistant = frames[0]["message"], frames[1]["message"]
    assert buyer["sender_id"] == chat.buyer.pk
    assert buyer["kind"] == "text"
    assert assistant["kind"] == "assistant"
    assert assistant["sender_id"] is None
    assert [r["id"] for r in assistant["data"]["quick_replies"]][-1] == "other"


def test_an_agent_hands_the_conversation_back_from_the_console(chat_factory: Any) -> None:
    wei = factories.agent(username="wei")
    chat = chat_factory(language="en")
    chat.say("agent")
    client = logged_in(wei)
    page = client.get(reverse("console:ticket", args=[chat.ticket.pk])).content.decode()
    assert 'data-testid="assistant-handback"' in page
    assert "The buyer asked for a person" in page or "买家要求转人工" in page
    response = client.post(reverse("console:assistant_handback", args=[chat.ticket.pk]))
    assert response.status_code == 302
    assert AssistantDialog.objects.get(conversation__ticket=chat.ticket).state == AssistantState.CONFIRM_ORDER
    assert TicketEvent.objects.filter(ticket=chat.ticket, kind=TicketEventKind.ASSISTANT_HANDBACK, actor=wei).exists()
    # Twice: refused with a message, nothing changes.
    client.post(reverse("console:assistant_handback", args=[chat.ticket.pk]))
    assert TicketEvent.objects.filter(ticket=chat.ticket, kind=TicketEventKind.ASSISTANT_HANDBACK).count() == 1


def test_a_buyer_cannot_hand_back(chat_factory: Any) -> None:
    chat = chat_factory(language="en")
    chat.say("agent")
    response = logged_in(chat.buyer).post(reverse("console:assistant_handback", args=[chat.ticket.pk]))
    assert response.status_code in (302, 403, 404)
    assert AssistantDialog.objects.get(conversation__ticket=chat.ticket).state == AssistantState.HANDED_OFF


def test_managers_see_the_steps_and_the_reason_read_only(chat_factory: Any) -> None:
    chat = chat_factory(language="en")
    chat.say("yes")
    chat.say("This is a SCAM, worst shop EVER!!!")
    dialog = AssistantDialog.objects.get(conversation__ticket=chat.ticket)
    client = logged_in(factories.staff(Role.MANAGER, username="manager"))
    listing = client.get(reverse("admin:messaging_assistantdialog_changelist")).content.decode()
    assert "The buyer is upset" in listing or "买家情绪激动" in listing
    page = client.get(reverse("admin:messaging_assistantdialog_change", args=[dialog.pk])).content.decode()
    assert "order_confirmed" in page
    assert "handoff" in page
    assert "worst shop EVER" in page
    assert client.get(reverse("admin:messaging_assistantdialog_add")).status_code == 403
