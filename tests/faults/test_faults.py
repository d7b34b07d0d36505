"""Real-process faults mid-conversation: the database is the truth, and the clients end up holding exactly it.

Each test runs its own redis-server and Daphne (and a Celery worker) against the PostgreSQL test database, kills
or stops one of them while a buyer and an agent chat, and checks that both clients end with exactly the stored
messages: seqs 1..N without gap, in order, none twice, every message a client sent stored exactly once.
The machine's shared PostgreSQL and Redis are never restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from messaging.models import Message, MessageKind
from tests import factories
from tests.chat_client import Browser, ChatClient, log_in
from tests.factories import PASSWORD
from tests.faults.conftest import ClaimedTicket, FaultStack
from tests.faults.mailbox import sent_mail
from tickets import services
from tickets.models import RefundTicket
from tickets.notifications import system_message_key

# Sorted with the browser tests (tests/conftest.py runs `e2e` last): they start real processes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MESSAGES = 60  # sent alternately by the buyer and the agent, one every SEND_INTERVAL
SEND_INTERVAL = 0.05
FAULT_AT = 20  # the fault starts after this many messages, and sending goes on meanwhile
SETTLE_TIMEOUT = 25.0


def clients_for(stack_url: str, claimed: ClaimedTicket) -> tuple[ChatClient, ChatClient]:
    conversation = claimed.conversation_id
    buyer_cookie = log_in(stack_url, claimed.buyer.username, PASSWORD)
    agent_cookie = log_in(stack_url, claimed.agent.username, PASSWORD)
    return (
        ChatClient(base_url=stack_url, cookie=buyer_cookie, conversations=[conversation], name="buyer"),
        ChatClient(base_url=stack_url, cookie=agent_cookie, conversations=[conversation], name="agent"),
    )


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        await asyncio.sleep(0.05)


def settled(clients: tuple[ChatClient, ...], conversation: int) -> bool:
    """Every message acknowledged, and every client holds every seq up to the highest one acknowledged or held."""
    if any(client.unacked for client in clients):
        return False
    acked = [entry["seq"] for client in clients for entry in client.sent.values()]
    top = max([*acked, *(seq for client in clients for seq in client.seqs(conversation))], default=0)
    return all(client.holds_all(conversation, top) for client in clients)


async def converse(clients: tuple[ChatClient, ChatClient], conversation: int, fault: Callable[[], None] | None) -> None:
    """Chat both ways; at FAULT_AT run `fault` in a thread while both go on sending; wait until everything settles."""
    for client in clients:
        client.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.caught_up.wait() for c in clients)), timeout=10)
        fault_task: asyncio.Future[None] | None = None
        for n in range(MESSAGES):
            sender = clients[n % 2]
            await sender.send_message(conversation, f"{sender.name} #{n}")
            if n == FAULT_AT and fault is not None:
                fault_task = asyncio.ensure_future(asyncio.to_thread(fault))
            await asyncio.sleep(SEND_INTERVAL)
        if fault_task is not None:
            await fault_task
        await wait_for(lambda: settled(clients, conversation), SETTLE_TIMEOUT, "every message is acked and held")
        await asyncio.sleep(0.5)  # anything arriving twice would arrive now
    finally:
        for client in clients:
            await client.close()


def assert_clients_hold_exactly_the_database(clients: tuple[ChatClient, ...], conversation: int) -> list[Any]:
    rows = list(
        Message.objects.filter(conversation_id=conversation).order_by("seq").values("seq", "body", "client_id", "kind")
    )
    seqs = [row["seq"] for row in rows]
    assert seqs == list(range(1, len(rows) + 1)), "the stored seqs have a gap"
    stored_ids = Counter(str(row["client_id"]) for row in rows if row["client_id"] is not None)
    for client in clients:
        assert client.stats.duplicates == [], f"{client.name} received seqs twice"
        assert client.stats.out_of_order == [], f"{client.name} received seqs out of order"
        assert client.seqs(conversation) == seqs, f"{client.name} does not hold exactly the stored messages"
        held = client.messages[conversation]
        assert [held[seq]["body"] for seq in seqs] == [row["body"] for row in rows]
        for client_id, entry in client.sent.items():
            assert stored_ids[client_id] == 1, f"{entry['body']!r} stored {stored_ids[client_id]} times"
            assert held[entry["seq"]]["client_id"] == client_id
    return rows


def system_message_stored(key: Any) -> bool:
    """Asked from a thread beside the event loop; its connection is closed so the test database can be dropped."""
    try:
        return Message.objects.filter(client_id=key).exists()
    finally:
        connections.close_all()


def test_daphne_killed_and_restarted_mid_conversation(fault_stack: FaultStack, claimed_ticket: ClaimedTicket) -> None:
    stack = fault_stack.stack
    buyer, agent = clients_for(stack.url, claimed_ticket)
    conversation = claimed_ticket.conversation_id

    asyncio.run(converse((buyer, agent), conversation, fault=stack.restart_daphne))

    assert stack["daphne"].starts == 2
    rows = assert_clients_hold_exactly_the_database((buyer, agent), conversation)
    assert len(rows) == 1 + MESSAGES  # the "ticket created" system message, then every message sent
    assert buyer.stats.connects >= 2, "the kill did not cut the buyer's socket"
    assert agent.stats.connects >= 2, "the kill did not cut the agent's socket"


def test_redis_restarted_mid_conversation(fault_stack: FaultStack, claimed_ticket: ClaimedTicket) -> None:
    stack = fault_stack.stack
    buyer, agent = clients_for(stack.url, claimed_ticket)
    conversation = claimed_ticket.conversation_id

    def restart_redis() -> None:
        stack.restart_redis()
        stack.wait_until_healthy(timeout=20)

    asyncio.run(converse((buyer, agent), conversation, fault=restart_redis))

    assert stack["redis"].starts == 2
    rows = assert_clients_hold_exactly_the_database((buyer, agent), conversation)
    assert len(rows) == 1 + MESSAGES


def test_worker_stopped_chat_goes_on_and_notification_arrives_once_on_return(
    fault_stack: FaultStack, people: tuple[Any, Any]
) -> None:
    stack, mail_dir = fault_stack.stack, fault_stack.mail_dir
    buyer_user, agent_user = people
    order = factories.order_with_items(buyer=buyer_user, items=[(7900, 2)])
    stack["worker"].stop()

    # The buyer asks for a refund through the real form on Daphne.
    browser = Browser(stack.url)
    browser.log_in(buyer_user.username, PASSWORD)
    item = order.items.get()
    status, url, body = browser.post_form(
        f"/orders/{order.order_no}/refund/",
        {"kind": "refund_only", "reason": "quality_defect", f"item_{item.pk}": "1", "description": "坏了"},
    )
    assert status == 200, body[-2000:]
    ticket = RefundTicket.objects.get(order=order)
    assert url.endswith(f"/refunds/{ticket.pk}/")
    services.claim_ticket(ticket_id=ticket.pk, agent=agent_user)
    conversation = ticket.conversation.pk

    buyer = ChatClient(base_url=stack.url, cookie=browser.cookie_header, conversations=[conversation], name="buyer")
    agent = ChatClient(
        base_url=stack.url,
        cookie=log_in(stack.url, agent_user.username, PASSWORD),
        conversations=[conversation],
        name="agent",
    )
    clients = (buyer, agent)
    key = system_message_key(ticket_id=ticket.pk, event="created")
    chat_before_worker = 10

    async def chat_then_bring_the_worker_back() -> None:
        for client in clients:
            client.start()
        try:
            await asyncio.wait_for(asyncio.gather(*(c.caught_up.wait() for c in clients)), timeout=10)
            for n in range(chat_before_worker):
                sender = clients[n % 2]
                await sender.send_message(conversation, f"{sender.name} #{n}")
            await wait_for(lambda: settled(clients, conversation), 10, "the chat works without the worker")
            # Nothing from the worker yet: no system message on either socket.
            assert all(m["kind"] == "text" for c in clients for m in c.messages[conversation].values())
            assert not await asyncio.to_thread(system_message_stored, key)
            assert sent_mail(mail_dir) == []

            await asyncio.to_thread(stack["worker"].start)

            def both_got_the_system_message() -> bool:
                return all(
                    any(m["kind"] == MessageKind.SYSTEM for m in c.messages[conversation].values()) for c in clients
                )

            await wait_for(both_got_the_system_message, 30, "the worker's system message reaches both sockets")
            await wait_for(lambda: settled(clients, conversation), 5, "everything is held")
            await asyncio.sleep(1.0)  # a second delivery would show up now
        finally:
            for client in clients:
                await client.close()

    asyncio.run(chat_then_bring_the_worker_back())

    rows = assert_clients_hold_exactly_the_database(clients, conversation)
    system = [row for row in rows if row["kind"] == MessageKind.SYSTEM]
    assert len(system) == 1
    assert system[0]["client_id"] == key
    assert system[0]["seq"] == chat_before_worker + 1
    assert ticket.number in system[0]["body"]
    mails = sent_mail(mail_dir)
    assert len(mails) == 1, mails
    assert f"To: {buyer_user.email}" in mails[0]
