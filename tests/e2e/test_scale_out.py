"""Scale-out on real processes: nginx (deploy/nginx/) in front of two Daphne processes, a Celery worker and a
private redis-server, on the PostgreSQL test database.

Alice (the buyer) is connected through one Daphne process and the agent through the other, so every message
and every refund-state push crosses between them through Redis. Then one process goes away mid-conversation,
killed (-9) or stopped (SIGTERM: refundchat/serve.py closes its sockets with 1012), and every client ends up on
the survivor, through nginx, holding exactly the stored messages: none lost, none twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import expect

from tests.chat_client import CLOSE_SERVICE_RESTART, Browser, ChatClient
from tests.chat_client import log_in as log_in_cookie
from tests.e2e.conftest import MOBILE, new_page, wait_until
from tests.factories import PASSWORD
from tests.faults.conftest import ClaimedTicket, claimed_ticket, people  # noqa: F401 (fixtures)
from tests.faults.test_faults import assert_clients_hold_exactly_the_database, settled, wait_for
from tests.stack import LiveStack, running_stack
from tickets.models import RefundTicket, TicketStatus

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MESSAGES = 40  # alternately from alice and the agent
FAULT_AT = 15
SEND_INTERVAL = 0.05
SETTLE_TIMEOUT = 30.0
T = TypeVar("T")


@pytest.fixture
def scaled_stack(transactional_db: None, tmp_path: Path) -> Iterator[LiveStack]:
    extra = {"REFUNDCHAT_SEND_BURST": "10000"}
    with running_stack(tmp_path, own_redis=True, daphnes=2, nginx=True, extra_env=extra) as stack:
        yield stack


def off_the_browser_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run() on a thread of its own: once a browser test has run, Playwright's sync API keeps an event loop
    running on the test's thread for the rest of the package, and asyncio.run() refuses to nest in it."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


def serving(stack: LiveStack, client: ChatClient) -> str:
    """The name of the Daphne process ("daphne", "daphne-2") nginx chose for the client's current socket."""
    upstream = client.upstreams[-1]
    for index, url in enumerate(stack.daphne_urls):
        if upstream is not None and url.endswith(upstream):
            return "daphne" if index == 0 else f"daphne-{index + 1}"
    raise AssertionError(f"{client.name} is served by {upstream!r}, none of {stack.daphne_urls}")


def reconnected(client: ChatClient, connects_before: int) -> bool:
    return client.stats.connects > connects_before and client.caught_up.is_set()


async def place_apart(stack: LiveStack, fixed: ChatClient, moving: ChatClient) -> None:
    """Reconnect `moving` (nginx alternates between the processes) until it is on the other process."""
    for _ in range(10):
        if serving(stack, moving) != serving(stack, fixed):
            return
        until_back = partial(reconnected, moving, moving.stats.connects)
        await moving.drop()
        await wait_for(until_back, 10, "a reconnect")
    raise AssertionError("nginx never sent the two clients to different processes")


def ask_for_evidence(agent_browser: Browser, ticket_id: int, headers: dict[str, str] | None = None) -> None:
    """A refund-state change through the console's form, pushed as ticket.updated (and notified by the outbox)."""
    status, _url, _body = agent_browser.post_form(
        f"/console/tickets/{ticket_id}/actions/request_evidence/",
        {"request_evidence-reason": "Please send a photo of the damage."},
        form_page=f"/console/tickets/{ticket_id}/",
        headers=headers,
    )
    assert status == 200


async def chat_across(
    stack: LiveStack, claimed: ClaimedTicket, fault: Callable[[str], None]
) -> tuple[ChatClient, ChatClient, str]:
    """Alice and the agent on different processes chat; the agent changes the state; at FAULT_AT `fault` gets the
    name of alice's process and runs beside the chat. Returns both clients and that name."""
    conversation = claimed.conversation_id
    alice_browser, agent_browser = Browser(stack.url), Browser(stack.url)
    alice = ChatClient(
        base_url=stack.url,
        cookie=alice_browser.log_in(claimed.buyer.username, PASSWORD),
        conversations=[conversation],
        name="alice",
    )
    agent = ChatClient(
        base_url=stack.url,
        cookie=agent_browser.log_in(claimed.agent.username, PASSWORD),
        conversations=[conversation],
        name="agent",
    )
    clients = (alice, agent)
    for client in clients:
        client.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.caught_up.wait() for c in clients)), timeout=10)
        await place_apart(stack, alice, agent)
        victim = serving(stack, alice)
        fault_task: asyncio.Future[None] | None = None
        for n in range(MESSAGES):
            sender = clients[n % 2]
            await sender.send_message(conversation, f"{sender.name} #{n}")
            if n == 5:
                await asyncio.to_thread(ask_for_evidence, agent_browser, claimed.ticket.pk)
            if n == FAULT_AT:
                fault_task = asyncio.ensure_future(asyncio.to_thread(fault, victim))
            await asyncio.sleep(SEND_INTERVAL)
        if fault_task is not None:
            await fault_task
        await wait_for(lambda: settled(clients, conversation), SETTLE_TIMEOUT, "every message is acked and held")
        await asyncio.sleep(0.5)  # anything arriving twice would arrive now
    finally:
        for client in clients:
            await client.close()
    return alice, agent, victim


def assert_crossed_and_caught_up(
    stack: LiveStack, claimed: ClaimedTicket, alice: ChatClient, agent: ChatClient
) -> None:
    rows = assert_clients_hold_exactly_the_database((alice, agent), claimed.conversation_id)
    assert sum(1 for row in rows if row["client_id"] is not None and row["kind"] == "text") >= MESSAGES
    # The refund-state push made by the agent's process reached alice on the other one.
    assert RefundTicket.objects.get(pk=claimed.ticket.pk).status == TicketStatus.AWAITING_EVIDENCE
    for client in (alice, agent):
        assert any(f["status"] == TicketStatus.AWAITING_EVIDENCE for f in client.ticket_updates), client.name


def test_daphne_killed_clients_move_to_the_survivor(scaled_stack: LiveStack, claimed_ticket: ClaimedTicket) -> None:  # noqa: F811
    stack = scaled_stack

    alice, agent, victim = off_the_browser_loop(chat_across(stack, claimed_ticket, lambda name: stack[name].kill()))

    survivor = next(name for name in ("daphne", "daphne-2") if name != victim)
    assert not stack[victim].running
    assert_crossed_and_caught_up(stack, claimed_ticket, alice, agent)
    assert alice.stats.connects >= 2, "the kill did not cut alice's socket"
    assert serving(stack, alice) == survivor
    assert serving(stack, agent) == survivor


def test_daphne_sigterm_closes_with_1012_and_clients_reconnect_at_once(
    scaled_stack: LiveStack,
    claimed_ticket: ClaimedTicket,  # noqa: F811
) -> None:
    stack = scaled_stack

    alice, agent, victim = off_the_browser_loop(
        chat_across(stack, claimed_ticket, lambda name: stack[name].stop(timeout=20))
    )

    survivor = next(name for name in ("daphne", "daphne-2") if name != victim)
    process = stack[victim].process
    assert process is not None
    assert process.returncode is not None, "the stopped process still runs"
    assert process.returncode != -9, "it had to be killed: the graceful stop did not finish"
    assert "closed 1 WebSocket(s) with 1012" in stack[victim].log_tail(20000)
    assert_crossed_and_caught_up(stack, claimed_ticket, alice, agent)
    # Alice's socket was closed by the server with 1012, and she came back through the 1012 path (no backoff).
    assert CLOSE_SERVICE_RESTART in alice.stats.close_codes
    assert len(alice.stats.restart_reconnects) == 1
    assert CLOSE_SERVICE_RESTART not in agent.stats.close_codes
    assert serving(stack, alice) == survivor
    assert serving(stack, agent) == survivor


async def send_as(stack: LiveStack, cookie: str, conversation: int, body: str) -> None:
    client = ChatClient(base_url=stack.url, cookie=cookie, conversations=[conversation], name="sender")
    client.start()
    try:
        await asyncio.wait_for(client.caught_up.wait(), timeout=10)
        await client.send_message(conversation, body)
        await wait_for(lambda: not client.unacked, 10, "the message is acknowledged")
    finally:
        await client.close()


def test_browser_reconnects_at_once_on_1012_and_goes_on(
    scaled_stack: LiveStack,
    claimed_ticket: ClaimedTicket,  # noqa: F811
    browser: Any,
) -> None:
    """static/js/realtime.js: a 1012 close is a reconnect now, without the backoff meant for outages."""
    stack = scaled_stack
    page = new_page(browser, stack, claimed_ticket.buyer.username, MOBILE)
    page.goto(f"{stack.url}/refunds/{claimed_ticket.ticket.pk}/")
    wait_until(page, lambda: page.evaluate("window.RefundChat.socket.isOpen()"), "the socket is open")
    # Count the page's trips through the backoff.
    page.evaluate(
        """() => {
            const socket = window.RefundChat.socket;
            const backoff = socket.scheduleReconnect;
            window.backoffs = 0;
            socket.scheduleReconnect = function () { window.backoffs += 1; return backoff.apply(this, arguments); };
        }"""
    )
    serving_page = [name for name in ("daphne", "daphne-2") if "WSCONNECT /ws/" in stack[name].log_tail(100_000)]
    assert len(serving_page) == 1, serving_page

    stack[serving_page[0]].stop(timeout=20)

    wait_until(page, lambda: page.evaluate("window.RefundChat.socket.opens") == 2, "the page is back")
    assert page.evaluate("window.backoffs") == 0
    agent_cookie = log_in_cookie(stack.url, claimed_ticket.agent.username, PASSWORD)
    off_the_browser_loop(send_as(stack, agent_cookie, claimed_ticket.conversation_id, "还在吗？我们换了一台服务器"))
    expect(page.get_by_test_id("message").filter(has_text="换了一台服务器")).to_be_visible(timeout=10_000)
