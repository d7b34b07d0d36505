"""Scripted dialogs with the triage assistant, in Chinese and English, through the real message path."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.utils import translation

from messaging.assistant import services as assistant
from messaging.assistant.classifier import language_of
from messaging.models import AssistantState, Conversation, Message, MessageKind, Presence, PresenceStatus
from tests import factories
from tickets.models import RefundTicket, TicketEvent, TicketEventKind, TicketNote, TicketStatus

pytestmark = pytest.mark.django_db

CONFIRM = {"zh-hans": "对，就是这个订单", "en": "yes, that's the one"}
# problem -> (Chinese, English) free text, evidence files it needs, the outcome with the default chat
# (refund only, ¥39, an account of 400 days, delivered 2 days ago): "approved" or a hand-off reason.
PROBLEMS: dict[str, tuple[str, str, int, str]] = {
    "wrong_size": ("衣服太小了，穿不上", "it's too small, doesn't fit", 1, "needs_approval"),
    "colour_differs": ("颜色跟图片差别很大", "the colour is different from the photos", 1, "approved"),
    "quality_defect": ("拉链坏了，做工很差", "poor quality, the zipper broke", 2, "approved"),
    "damaged_in_transit": ("快递箱子压坏了，杯子碎了", "the box arrived crushed and the mug is broken", 1, "approved"),
    "missing_item": ("少发了一件", "one item is missing from the box", 1, "approved"),
    "not_received": ("我一直没收到货", "my parcel never arrived", 0, "needs_judgement"),
    "wrong_item": ("发错货了，不是我买的", "you sent the wrong item", 1, "approved"),
    "changed_mind": ("不想要了", "I changed my mind", 0, "needs_approval"),
    "other": ("其他问题", "something else", 0, "needs_judgement"),
}


def handoff_events(ticket: Any) -> list[TicketEvent]:
    return list(TicketEvent.objects.filter(ticket=ticket, kind=TicketEventKind.ASSISTANT_HANDOFF))


def in_language(messages: list[Message], language: str) -> bool:
    return all(language_of(m.body) == language for m in messages if language_of(m.body))


def online_agent(username: str = "wei") -> Any:
    agent = factories.agent(username=username)
    Presence.objects.update_or_create(user=agent, defaults={"status": PresenceStatus.ONLINE})
    return agent


def test_opening_greets_by_name_with_the_order_card_and_holds_routing(chat_factory: Any) -> None:
    online_agent()
    chat = chat_factory()
    [greeting] = chat.assistant_messages()
    assert greeting.sender_id is None
    assert greeting.kind == MessageKind.ASSISTANT
    assert "Alice" in greeting.body
    assert greeting.data["order"]["order_no"] == chat.ticket.order.order_no
    assert [r["id"] for r in greeting.data["quick_replies"]] == ["yes", "other_order"]
    ticket = RefundTicket.objects.get(pk=chat.ticket.pk)
    assert ticket.assigned_agent_id is None  # routing waits for the hand-off, though an agent is online
    assert Conversation.objects.get(ticket=ticket).assistant_active
    assert chat.dialog.state == AssistantState.CONFIRM_ORDER


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_every_problem_type_in_free_text(chat_factory: Any, language: str, problem: str) -> None:
    zh, en, files, expected = PROBLEMS[problem]
    chat = chat_factory(language=language)
    asked = chat.say(CONFIRM[language])
    assert [r["id"] for r in asked[-1].data["quick_replies"]][:3] == ["wrong_size", "colour_differs", "quality_defect"]
    replies = chat.say(zh if language == "zh-hans" else en)
    step = chat.dialog.steps.exclude(seq=0).order_by("-id").first()
    assert step is not None
    assert step.intent == problem
    assert chat.dialog.problem == problem
    if files:
        assert chat.dialog.state == AssistantState.EVIDENCE
        assert replies[-1].data["upload"]["count"] == files
        if files > 1:
            more = chat.send_files(count=1)
            assert more[-1].data["upload"]["count"] == files - 1
            assert chat.dialog.state == AssistantState.EVIDENCE
        replies = chat.send_files(count=1)
    assert in_language(replies, language)
    ticket = RefundTicket.objects.get(pk=chat.ticket.pk)
    if expected == "approved":
        assert chat.dialog.state == AssistantState.DONE
        assert ticket.status in (TicketStatus.REFUND_PENDING, TicketStatus.REFUNDED)
        assert ticket.approved_amount_cents == 3900
        assert not handoff_events(ticket)
    else:
        assert chat.dialog.state == AssistantState.HANDED_OFF
        assert [e.reason for e in handoff_events(ticket)] == [expected]
        assert ticket.status == TicketStatus.REQUESTED


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_quick_replies_are_understood_by_their_label_in_either_language(chat_factory: Any, language: str) -> None:
    chat = chat_factory(language=language)
    with translation.override(language):
        greeting = chat.assistant_messages()[0]
        asked = chat.tap(greeting.data["quick_replies"][0]["label"])
        labels = {r["id"]: r["label"] for r in asked[-1].data["quick_replies"]}
        chat.tap(labels["damaged_in_transit"])
    assert chat.dialog.problem == "damaged_in_transit"
    assert [s.confidence for s in chat.dialog.steps.exclude(seq=0)] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("language", "text"),
    [("zh-hans", "转人工"), ("zh-hans", "我要人工客服"), ("en", "agent"), ("en", "can I talk to a human?")],
)
def test_the_buyer_asks_for_a_person(chat_factory: Any, language: str, text: str) -> None:
    wei = online_agent()
    chat = chat_factory(language=language)
    chat.say(CONFIRM[language])
    replies = chat.say(text)
    ticket = RefundTicket.objects.get(pk=chat.ticket.pk)
    [event] = handoff_events(ticket)
    assert event.reason == "buyer_asked"
    assert not event.visible_to_buyer
    assert ticket.assigned_agent_id == wei.pk  # routed through tickets.routing.auto_assign
    assert in_language(replies, language)
    [note] = TicketNote.objects.filter(ticket=ticket)
    assert note.author.username == assistant.ASSISTANT_USERNAME
    assert ticket.order.order_no in note.body
    assert text in note.body


@pytest.mark.parametrize(
    ("language", "first", "second"), [("zh-hans", "阿巴阿巴", "呃呃呃"), ("en", "asdf qwer", "zzz")]
)
def test_two_misunderstandings_in_a_row_hand_off(chat_factory: Any, language: str, first: str, second: str) -> None:
    chat = chat_factory(language=language)
    sorry = chat.say(first)
    assert chat.dialog.misunderstood == 1
    assert sorry[-1].data["quick_replies"]
    assert not handoff_events(chat.ticket)
    chat.say(second)
    assert [e.reason for e in handoff_events(chat.ticket)] == ["not_understood"]


def test_an_understood_message_resets_the_count(chat_factory: Any) -> None:
    chat = chat_factory()
    chat.say("阿巴阿巴")
    chat.say("是的")
    chat.say("呃呃呃")
    assert chat.dialog.misunderstood == 1
    assert chat.dialog.state == AssistantState.PROBLEM
    assert not handoff_events(chat.ticket)


@pytest.mark.parametrize(
    ("language", "text"),
    [("zh-hans", "你们这是什么垃圾店，骗子！！"), ("en", "This is a SCAM, worst shop EVER!!!")],
)
def test_an_angry_buyer_goes_to_a_person_at_once(chat_factory: Any, language: str, text: str) -> None:
    chat = chat_factory(language=language)
    chat.say(text)
    [event] = handoff_events(chat.ticket)
    assert event.reason == "angry"
    assert event.data["anger"] >= 2
    note = TicketNote.objects.get(ticket=chat.ticket)
    assert text in note.body


def test_judgement_needed_out_of_the_no_reason_window(chat_factory: Any) -> None:
    chat = chat_factory(language="en", delivered_days_ago=20)
    chat.say("yes")
    chat.say("I changed my mind")
    [event] = handoff_events(chat.ticket)
    assert event.reason == "needs_judgement"
    assert "no_reason_window_passed" in event.data["policy"]


def test_auto_approval_only_where_the_workflow_rule_allows(chat_factory: Any) -> None:
    # A new account: the express-refund rule (tickets.timers.express_refund_rule) says no, so an agent decides.
    chat = chat_factory(language="en", joined_days_ago=3)
    chat.say("yes")
    chat.say("the box arrived crushed")
    chat.send_files(count=1)
    ticket = RefundTicket.objects.get(pk=chat.ticket.pk)
    assert ticket.status == TicketStatus.REQUESTED
    assert [e.reason for e in handoff_events(ticket)] == ["needs_approval"]
    note = TicketNote.objects.get(ticket=ticket)
    assert "¥39.00" in note.body


def test_auto_approval_goes_through_the_workflow(chat_factory: Any) -> None:
    chat = chat_factory(language="en")
    chat.say("yes")
    chat.say("the box arrived crushed")
    replies = chat.send_files(count=1)
    approval = TicketEvent.objects.get(ticket=chat.ticket, to_status=TicketStatus.APPROVED_REFUND_ONLY)
    assert approval.data["rule"] == "express_refund"
    assert approval.data["transition"] == "approve_refund_only"
    assert "¥39.00" in replies[-1].body
    assert "72" in replies[-1].body
    assert chat.dialog.state == AssistantState.DONE
    [welcome] = chat.say("thanks!")
    assert "agent" in welcome.body
    assert chat.dialog.misunderstood == 0
    # The ticket stays with the assistant: the beat's assign_waiting does not route it.
    from tickets import routing

    online_agent()
    routing.assign_waiting()
    assert RefundTicket.objects.get(pk=chat.ticket.pk).assigned_agent_id is None


def test_a_buyer_who_switches_language_midway(chat_factory: Any) -> None:
    chat = chat_factory(language="zh-hans")
    assert language_of(chat.assistant_messages()[0].body) == "zh-hans"
    english = chat.say("yes this one")
    assert chat.dialog.language == "en"
    assert in_language(english, "en")
    chinese = chat.say("颜色和图片不一样")
    assert chat.dialog.language == "zh-hans"
    assert in_language(chinese, "zh-hans")
    english = chat.send_files(count=1)  # a photo has no language: the last one stays
    assert in_language(english, "zh-hans")
    assert chat.dialog.state == AssistantState.DONE


def test_policy_questions_are_answered_without_losing_the_place(chat_factory: Any, settings: Any) -> None:
    settings.REFUNDCHAT_PROMISE_HOURS = {**settings.REFUNDCHAT_PROMISE_HOURS, "refund_pending": 48}
    chat = chat_factory(language="en")
    chat.say("yes")
    [answer] = chat.say("how long does the refund take?")
    assert "48 hours" in answer.body  # the workflow's own promise
    assert next(r["id"] for r in answer.data["quick_replies"]) == "wrong_size"
    assert chat.dialog.state == AssistantState.PROBLEM
    [address] = chat.say("What is the return address?")
    assert settings.REFUNDCHAT_RETURN_ADDRESS in address.body


def test_another_order_offers_the_recent_orders_as_cards(chat_factory: Any) -> None:
    chat = chat_factory(language="en")
    other = factories.order_with_items(buyer=chat.buyer, items=[(1200, 2)])
    [offer] = chat.say("not this one")
    numbers = [card["order_no"] for card in offer.data["orders"]]
    assert chat.ticket.order.order_no in numbers
    assert other.order_no in numbers
    assert all(card["url"].endswith(f"/orders/{card['order_no']}/refund/") for card in offer.data["orders"])
    assert chat.dialog.state == AssistantState.CONFIRM_ORDER


def test_evidence_kind_and_count_are_checked(chat_factory: Any) -> None:
    chat = chat_factory(language="en")
    chat.say("yes")
    chat.say("poor quality, there is a hole")
    [wrong_kind] = chat.send_files(count=1, kind="audio")
    assert "photos or videos" in wrong_kind.body
    [one_more] = chat.send_files(count=1)
    assert one_more.data["upload"]["count"] == 1
    chat.send_files(count=1, kind="video")
    assert chat.dialog.state == AssistantState.DONE


def test_silent_after_hand_off_until_an_agent_hands_back(chat_factory: Any) -> None:
    wei = online_agent()
    chat = chat_factory(language="en")
    chat.say("agent please")
    assert chat.say("hello? anyone?") == []
    assert not Conversation.objects.get(ticket=chat.ticket).assistant_active
    assistant.hand_back(ticket_id=chat.ticket.pk, by=wei)
    assert TicketEvent.objects.filter(ticket=chat.ticket, kind=TicketEventKind.ASSISTANT_HANDBACK, actor=wei).exists()
    assert chat.dialog.state == AssistantState.CONFIRM_ORDER
    chat.say("yes")
    assert chat.dialog.state == AssistantState.PROBLEM
    with pytest.raises(assistant.AssistantRefused):
        assistant.hand_back(ticket_id=chat.ticket.pk, by=wei)


def test_the_summary_note_has_everything_the_agent_needs(chat_factory: Any) -> None:
    chat = chat_factory(language="en", joined_days_ago=3)
    chat.say("yes")
    chat.say("the zipper broke, poor quality")
    chat.send_files(count=2)
    note = TicketNote.objects.get(ticket=chat.ticket)
    with translation.override("en"):
        body = note.body
    order = chat.ticket.order
    item = order.items.get()
    for expected in (order.order_no, item.title, "the zipper broke", "× 2", "¥39.00"):
        assert expected in body, expected
    assert len(body.splitlines()) == 8


def test_resent_and_replayed_messages_are_processed_once(chat_factory: Any) -> None:
    chat = chat_factory(language="en")
    client_id = uuid.uuid4()
    chat.say("yes", client_id=client_id)
    assert chat.say("yes", client_id=client_id) == []  # the resend is a duplicate: no step
    assert assistant.process_pending(conversation_id=chat.ticket.conversation.pk) == 0  # a replayed task
    assert chat.dialog.steps.exclude(seq=0).count() == 1


def test_messages_are_processed_in_order_one_step_each(chat_factory: Any) -> None:
    from messaging import services as messaging_services

    chat = chat_factory(language="en")
    for text in ("yes", "the box arrived crushed"):
        messaging_services.post_message(
            conversation_id=chat.ticket.conversation.pk, sender=chat.buyer, body=text, client_id=uuid.uuid4()
        )  # on_commit not run: both wait, as when the worker was down
    assert assistant.process_pending(conversation_id=chat.ticket.conversation.pk) == 2
    steps = list(chat.dialog.steps.exclude(seq=0).order_by("id"))
    assert [s.intent for s in steps] == ["yes", "damaged_in_transit"]
    assert steps[0].seq < steps[1].seq
    assert chat.dialog.state == AssistantState.EVIDENCE


def test_agent_messages_do_not_wake_the_assistant(chat_factory: Any) -> None:
    from tickets import services as ticket_services

    chat = chat_factory(language="en")
    wei = factories.agent(username="wei")
    ticket_services.claim_ticket(ticket_id=chat.ticket.pk, agent=wei)
    before = chat.last_seq()
    with chat.capture(execute=True):
        from messaging import services as messaging_services

        messaging_services.post_message(
            conversation_id=chat.ticket.conversation.pk, sender=wei, body="hello", client_id=uuid.uuid4()
        )
    assert chat.replies_after(before) == []


def test_off_keeps_the_old_routing(settings: Any, django_capture_on_commit_callbacks: Any) -> None:
    settings.REFUNDCHAT_ASSISTANT_ENABLED = False
    wei = online_agent()
    alice = factories.buyer(username="alice")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(20000, 1)]))
    assert RefundTicket.objects.get(pk=ticket.pk).assigned_agent_id == wei.pk
    assert not Message.objects.filter(conversation__ticket=ticket, kind=MessageKind.ASSISTANT).exists()


def test_an_agent_who_claims_and_answers_takes_over(chat_factory: Any) -> None:
    from messaging import services as messaging_services
    from tickets import services as ticket_services

    chat = chat_factory(language="en")
    wei = factories.agent(username="wei")
    ticket_services.claim_ticket(ticket_id=chat.ticket.pk, agent=wei)
    messaging_services.post_message(
        conversation_id=chat.ticket.conversation.pk, sender=wei, body="Hi, I am Wei", client_id=uuid.uuid4()
    )
    assert chat.say("yes") == []  # the assistant yields without a word
    [event] = handoff_events(chat.ticket)
    assert event.reason == "agent_took_over"
    assert TicketNote.objects.filter(ticket=chat.ticket).exists()
    assert chat.dialog.state == AssistantState.HANDED_OFF
