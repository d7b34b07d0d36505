from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import services
from messaging.selectors import with_unread
from tests import factories
from tickets import services as ticket_services
from tickets.models import RefundTicket

pytestmark = pytest.mark.django_db


def test_unread_counts_messages_from_others_after_the_read_position():
    alice = factories.buyer(username="alice")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    agent = factories.agent(username="agent")
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    conversation_id = ticket.conversation.pk

    def post(sender):
        return services.post_message(
            conversation_id=conversation_id, sender=sender, body="x", client_id=uuid.uuid4()
        ).message.seq

    def unread(user):
        return with_unread(RefundTicket.objects.filter(pk=ticket.pk), user=user).get().unread

    assert (unread(alice), unread(agent)) == (0, 0)
    # System messages count for everyone.
    services.post_system_message(conversation_id=conversation_id, body="opened", key=uuid.uuid4())
    assert (unread(alice), unread(agent)) == (1, 1)
    post(alice)
    post(alice)
    # Writing counts as reading what came before; one's own messages never count.
    assert (unread(alice), unread(agent)) == (0, 3)
    services.mark_seen(conversation_id=conversation_id, user=agent, read_seq=2)
    assert unread(agent) == 1
    post(agent)
    assert (unread(alice), unread(agent)) == (1, 0)


def test_unread_for_a_page_of_tickets_is_one_query():
    alice = factories.buyer(username="alice")
    for _ in range(5):
        ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(100, 1)]))
        services.post_system_message(conversation_id=ticket.conversation.pk, body="opened", key=uuid.uuid4())
    with CaptureQueriesContext(connection) as queries:
        rows = list(with_unread(RefundTicket.objects.all(), user=alice))
    assert len(rows) == 5
    assert all(row.unread == 1 for row in rows)
    assert len(queries) == 1
