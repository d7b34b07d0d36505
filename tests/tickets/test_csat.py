"""Satisfaction: asked once in the chat when a ticket is finished; one 1–5 rating per ticket."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from messaging import realtime
from messaging.models import Message
from tests import factories
from tickets import csat, workflow
from tickets.models import (
    OutboxMessage,
    RefundTicket,
    SatisfactionRating,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
)
from tickets.notifications import system_message_key
from tickets.workflow import Actor, TransitionInput

pytestmark = pytest.mark.django_db

ASK_ZH = "请在下方为我们打 1 到 5 星"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def finish(ticket: RefundTicket, alice) -> None:
    workflow.do_transition(ticket_id=ticket.pk, name="cancel", user=alice)


def csat_messages(ticket: RefundTicket):
    return Message.objects.filter(conversation=ticket.conversation, kind="system", body__contains=ASK_ZH)


def test_a_final_state_asks_for_a_rating_once_in_the_chat(ticket, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        finish(ticket, alice)
    assert csat_messages(ticket).count() == 1
    key = system_message_key(ticket_id=ticket.pk, event="csat")
    assert OutboxMessage.objects.filter(idempotency_key=key).count() == 1
    # Asked again (a redelivery, another final transition): nothing new.
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        csat.request_rating(ticket=RefundTicket.objects.get(pk=ticket.pk))
    assert csat_messages(ticket).count() == 1


def test_open_states_do_not_ask(ticket, wei, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        workflow.do_transition(ticket_id=ticket.pk, name="start_review", user=wei)
        workflow.do_transition(
            ticket_id=ticket.pk, name="approve_refund_only", user=wei, given=TransitionInput(amount_cents=7900)
        )
    assert csat_messages(ticket).count() == 0


def test_refunded_by_the_payout_asks_too(ticket, wei, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        workflow.do_transition(
            ticket_id=ticket.pk, name="approve_refund_only", user=wei, given=TransitionInput(amount_cents=7900)
        )
    with django_capture_on_commit_callbacks(execute=True):
        workflow.do_transition(ticket_id=ticket.pk, name="request_payout", user=wei)
    ticket.refresh_from_db()
    if ticket.status != TicketStatus.REFUNDED:  # the fake gateway may answer through its callback task
        with django_capture_on_commit_callbacks(execute=True):
            workflow.do_transition(ticket_id=ticket.pk, name="complete_payout", user=None, system=Actor.SYSTEM)
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.REFUNDED
    assert csat_messages(ticket).count() == 1


def test_submit_rating_writes_rating_event_and_tells_everyone(
    ticket, alice, published, django_capture_on_commit_callbacks
):
    finish(ticket, alice)
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        rating = csat.submit_rating(ticket_id=ticket.pk, buyer=alice, score=5, comment="  很快，谢谢  ")
    assert (rating.score, rating.comment) == (5, "很快，谢谢")
    event = TicketEvent.objects.get(ticket=ticket, kind=TicketEventKind.RATING)
    assert (event.actor, event.data, event.reason) == (alice, {"score": 5}, "很快，谢谢")
    frame = {"type": "ticket.updated", "ticket_id": ticket.pk, "status": "cancelled", "assigned_agent_id": None}
    assert published == [
        (realtime.QUEUE_GROUP, frame),
        (realtime.conversation_group(ticket.conversation.pk), frame),
        (realtime.user_group(alice.pk), frame),
    ]


@pytest.mark.parametrize("score", [0, 6, -1, "5", 4.5, True, None])
def test_bad_scores_are_refused(ticket, alice, score):
    finish(ticket, alice)
    with pytest.raises(csat.RatingRefused) as refused:
        csat.submit_rating(ticket_id=ticket.pk, buyer=alice, score=score)
    assert refused.value.code == "bad_score"
    assert not SatisfactionRating.objects.exists()


def test_rating_refusals_once_own_and_finished_only(ticket, alice):
    bob = factories.buyer(username="bob")
    with pytest.raises(csat.RatingRefused) as refused:
        csat.submit_rating(ticket_id=ticket.pk, buyer=alice, score=4)
    assert refused.value.code == "not_finished"
    finish(ticket, alice)
    with pytest.raises(csat.RatingRefused) as refused:
        csat.submit_rating(ticket_id=ticket.pk, buyer=bob, score=4)
    assert refused.value.code == "not_found"
    csat.submit_rating(ticket_id=ticket.pk, buyer=alice, score=4)
    with pytest.raises(csat.RatingRefused) as refused:
        csat.submit_rating(ticket_id=ticket.pk, buyer=alice, score=1)
    assert refused.value.code == "already_rated"
    assert SatisfactionRating.objects.get().score == 4
    assert TicketEvent.objects.filter(kind=TicketEventKind.RATING).count() == 1


def test_database_constraints_stand_behind_the_service(ticket):
    with pytest.raises(IntegrityError), transaction.atomic():
        SatisfactionRating.objects.create(ticket=ticket, score=6)
    SatisfactionRating.objects.create(ticket=ticket, score=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        SatisfactionRating.objects.create(ticket=ticket, score=4)


def test_buyer_widget_posts_rating_and_agent_sees_it(ticket, alice, wei, django_assert_max_num_queries):
    buyer = client_for(alice)
    assert 'data-testid="csat"' not in buyer.get(f"/refunds/{ticket.pk}/").content.decode()  # still open
    finish(ticket, alice)
    page = buyer.get(f"/refunds/{ticket.pk}/").content.decode()
    assert 'data-testid="csat-score-5"' in page
    response = buyer.post(f"/refunds/{ticket.pk}/rating/", {"score": "9"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_score"
    response = buyer.post(
        f"/refunds/{ticket.pk}/rating/", {"score": "5", "comment": "Great"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    assert response.json()["ok"] is True
    page = buyer.get(f"/refunds/{ticket.pk}/").content.decode()
    assert 'data-testid="csat-done"' in page
    assert 'data-testid="csat-score-5"' not in page
    # Plain form post (no JS): refused again, shown as a message.
    response = buyer.post(f"/refunds/{ticket.pk}/rating/", {"score": "1"})
    assert response.status_code == 302
    assert SatisfactionRating.objects.get().score == 5
    # Another buyer: 404, existence does not leak.
    other = client_for(factories.buyer(username="bob"))
    assert other.post(f"/refunds/{ticket.pk}/rating/", {"score": "1"}).status_code == 404
    # The agent's ticket page shows it.
    console = client_for(wei)
    console.get(f"/console/tickets/{ticket.pk}/")
    with django_assert_max_num_queries(30):
        page = console.get(f"/console/tickets/{ticket.pk}/").content.decode()
    assert 'data-testid="ticket-rating"' in page
    assert "Great" in page
