"""One permission table for every door: each URL pattern, API operation and WebSocket frame type × each role.

The expected outcome of every cell is written below; the tests check every cell against the running app (the
Django test client for HTTP, the real ASGI stack for frames), and a URL pattern, API operation or frame type
with no row fails `test_the_table_has_a_row_for_every_door`, so nothing new can skip it.

Roles: anonymous, buyer_a (owns the ticket the rows act on), buyer_b (another buyer: alice's ticket is 404 to
him), agent (wei, assigned to the ticket), agent2 (li, an agent not assigned), finance, warehouse, manager and
integration (the shop's API token; on web pages it is no login at all).

Outcomes: an HTTP status; LOGIN is a redirect to the login page (the web's answer to anonymous), "302" a
redirect elsewhere. API operations are the table of tests/api/test_permissions.py (each cell checked there for
every role but agent2, which is checked here). On the socket: OK is the frame's own answer, and a refusal is an
error frame carrying nothing but its code, message and ref.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from tests import factories
from tickets.canned import save_reply
from tickets.models import DataExport, ExportStatus, Payout, PayoutStatus, WebhookEvent, WebhookSubscription
from tickets.roles import Role
from tickets.services import claim_ticket

ROLES = ("anonymous", "buyer_a", "buyer_b", "agent", "agent2", "finance", "warehouse", "manager", "integration")
STAFF = ("agent", "agent2", "finance", "warehouse", "manager")
BUYERS = ("buyer_a", "buyer_b")
LOGIN = "login"
LOGGED_OUT = ("anonymous", "integration")


def cells(default: int | str, **by_role: int | str) -> dict[str, int | str]:
    """Every role's outcome: `default`, LOGIN for the logged out, then the named exceptions."""
    return {**dict.fromkeys(ROLES, default), **dict.fromkeys(LOGGED_OUT, LOGIN), **by_role}


def public(outcome: int | str) -> dict[str, int | str]:
    return dict.fromkeys(ROLES, outcome)


# Console pages: staff only; a buyer is refused (403), the logged out go to the login page.
CONSOLE = cells(200, **dict.fromkeys(BUYERS, 403))
# A buyer's pages of alice's ticket: hers, bob's 404 (its existence does not leak).
BUYER_TICKET = cells(404, buyer_a=200)


@dataclass(frozen=True)
class Row:
    """One URL pattern: how to call it, and what each role gets."""

    method: str
    path: Callable[[dict[str, Any]], str]
    expected: dict[str, int | str]
    data: Callable[[dict[str, Any]], dict[str, Any]] = field(default=lambda o: {})
    why: str = ""


def t(suffix: str = "") -> Callable[[dict[str, Any]], str]:
    return lambda o: f"/console/tickets/{o['ticket'].pk}/{suffix}"


def r(suffix: str = "") -> Callable[[dict[str, Any]], str]:
    return lambda o: f"/refunds/{o['ticket'].pk}/{suffix}"


def fixed(path: str) -> Callable[[dict[str, Any]], str]:
    return lambda o: path


# Keyed by the URL pattern's name (namespace:name), or its route when it has no name.
WEB: dict[str, Row] = {
    "home": Row("GET", fixed("/"), cells(302)),
    "healthz": Row("GET", fixed("/healthz"), public(200)),
    "readyz": Row("GET", fixed("/readyz"), public(200)),
    "metrics": Row("GET", fixed("/metrics"), public(200), why="allowed by address (127.0.0.1) or token, else 404"),
    "login": Row("GET", fixed("/accounts/login/"), {**public(302), "anonymous": 200, "integration": 200}),
    "login_code": Row("GET", fixed("/accounts/login/code/"), public(LOGIN), why="nobody pending a code"),
    "two_factor_setup": Row("GET", fixed("/accounts/two-factor/"), cells(200, buyer_a=302, buyer_b=302)),
    "logout": Row("POST", fixed("/accounts/logout/"), public(LOGIN)),
    "admin_login": Row(
        "GET",
        fixed("/admin/login/"),
        cells(403, manager=302),
        why="the logged out go to the site's login; logged in but not admin staff: 403, not a redirect loop",
    ),
    "set_language": Row("POST", fixed("/i18n/setlang/"), public(302), data=lambda o: {"language": "en"}),
    # Console.
    "console:queue": Row("GET", fixed("/console/"), CONSOLE),
    "console:ticket": Row("GET", t(), CONSOLE),
    "console:claim": Row(
        "POST", lambda o: f"/console/tickets/{o['other_ticket'].pk}/claim/", cells(302, **dict.fromkeys(BUYERS, 403))
    ),
    "console:transfer": Row(
        "POST", t("transfer/"), cells(302, **dict.fromkeys(BUYERS, 403)), data=lambda o: {"agent": o["li"].pk}
    ),
    "console:unassign": Row("POST", t("unassign/"), cells(302, **dict.fromkeys(BUYERS, 403))),
    "console:transition": Row(
        "POST",
        t("actions/approve_refund_only/"),
        cells(302, **dict.fromkeys(BUYERS, 403)),
        data=lambda o: {"amount": "50.00"},
        why="refused transitions come back with a message",
    ),
    "console:payouts": Row("GET", fixed("/console/payouts/"), cells(403, finance=200), why="finance's work list"),
    "console:payout_decision": Row(
        "POST",
        lambda o: f"/console/payouts/{o['payout'].pk}/approve/",
        cells(302, **dict.fromkeys(BUYERS, 403)),
        why="a console user without the right is sent back with a message",
    ),
    "console:returns": Row("GET", fixed("/console/returns/"), cells(403, warehouse=200), why="the warehouse's"),
    "console:add_note": Row(
        "POST", t("notes/"), cells(302, **dict.fromkeys(BUYERS, 403)), data=lambda o: {"body": "note"}
    ),
    "console:set_labels": Row("POST", t("labels/"), cells(302, **dict.fromkeys(BUYERS, 403))),
    "console:team_transfer": Row(
        "POST", t("team/"), cells(302, **dict.fromkeys(BUYERS, 403)), data=lambda o: {"team": "billing"}
    ),
    "console:assistant_handback": Row("POST", t("assistant/handback/"), cells(302, **dict.fromkeys(BUYERS, 403))),
    "console:mentions": Row("GET", fixed("/console/mentions/"), CONSOLE),
    "console:mentions_seen": Row("POST", fixed("/console/mentions/seen/"), cells(302, **dict.fromkeys(BUYERS, 403))),
    "console:canned_list": Row("GET", fixed("/console/replies/"), CONSOLE),
    "console:canned_new": Row("GET", fixed("/console/replies/new/"), CONSOLE),
    "console:canned_edit": Row(
        "GET",
        lambda o: f"/console/replies/{o['reply'].pk}/",
        cells(404, agent=200, **dict.fromkeys(BUYERS, 403)),
        why="wei's personal reply does not exist for the others",
    ),
    "console:canned_delete": Row(
        "POST",
        lambda o: f"/console/replies/{o['reply'].pk}/delete/",
        cells(404, agent=302, **dict.fromkeys(BUYERS, 403)),
    ),
    "console:search": Row("GET", fixed("/console/search/?q=alice"), CONSOLE),
    # The buyer's pages.
    "tickets:order_list": Row("GET", fixed("/orders/"), cells(200)),
    "tickets:order_detail": Row("GET", lambda o: f"/orders/{o['ticket'].order.order_no}/", BUYER_TICKET),
    "tickets:refund_request": Row(
        "GET", lambda o: f"/orders/{o['spare_order'].order_no}/refund/", cells(404, buyer_a=200)
    ),
    "tickets:ticket_list": Row("GET", fixed("/refunds/"), cells(200)),
    "tickets:ticket_detail": Row("GET", r(), BUYER_TICKET),
    "tickets:ticket_transition": Row("POST", r("actions/cancel/"), cells(404, buyer_a=302)),
    "tickets:rate_ticket": Row("POST", r("rating/"), cells(404, buyer_a=302), data=lambda o: {"score": "5"}),
    "tickets:privacy": Row("GET", fixed("/account/privacy/"), cells(200)),
    "tickets:privacy_export": Row("POST", fixed("/account/privacy/export/"), cells(302)),
    "tickets:privacy_export_download": Row(
        "GET", lambda o: f"/account/privacy/export/{o['export'].token}/", cells(404, buyer_a=200)
    ),
    "tickets:privacy_erase": Row(
        "POST",
        fixed("/account/privacy/erase/"),
        cells(400),
        data=lambda o: {"password": "wrong"},
        why="one's own account only: a wrong password is the form again (staff are refused there too)",
    ),
    "tickets:payout_callback": Row(
        "POST", fixed("/api/v1/payouts/callback/"), public(403), why="unsigned: HMAC, not a session"
    ),
    # Uploads (tus) and attachments.
    "media:uploads": Row("OPTIONS", fixed("/api/v1/uploads/"), public(204)),
    "media:upload": Row(
        "HEAD",
        lambda o: f"/api/v1/uploads/{o['upload'].pk}",
        {**cells(403, buyer_a=200, buyer_b=404), **dict.fromkeys(LOGGED_OUT, 403)},
        why="tus is an API: no login page; staff not handling it 403 (docs/uploads.md)",
    ),
    "media:attachment_file": Row(
        "GET", lambda o: f"/attachments/{o['attachment'].pk}/original", cells(200, buyer_b=404)
    ),
    "media:attachment_retry": Row(
        "POST", lambda o: f"/attachments/{o['attachment'].pk}/retry", cells(202, buyer_b=404), why="who may view it"
    ),
    "media:attachment_variant": Row(
        "GET", lambda o: f"/attachments/{o['attachment'].pk}/thumb", cells(404), why="no thumbnail was made"
    ),
    # API schema and docs, and any other /api/ address.
    "api-schema": Row("GET", fixed("/api/schema/"), public(200)),
    "api-docs": Row("GET", fixed("/api/docs/"), public(200)),
    "api/^(?P<path>.*)$": Row("GET", fixed("/api/v9/nothing/"), public(404)),
    "media/products/<path:path>": Row("GET", fixed("/media/products/none.jpg"), public(404)),
}

# Every admin page goes through AdminSite.admin_view: staff (is_staff: managers here) only, the others to the
# login page. These samples stand for the whole admin namespace.
ADMIN_SAMPLES = {
    "admin:index": "/admin/",
    "admin:tickets_refundticket_changelist": "/admin/tickets/refundticket/",
    "admin:tickets_accesslogentry_changelist": "/admin/tickets/accesslogentry/",
}
ADMIN = {**public(LOGIN), "manager": 200}

# API operations: tests/api/test_permissions.py's table; agent2 (not assigned) is this module's addition.
AGENT2_API = {
    "ticket detail": 200,
    "buyer action (cancel)": 403,
    # Transitions are by role, not by assignment (docs/api.md): any agent may take the agent's ones.
    "agent action (approve)": 200,
    "manager action (arbitrate) on a ticket not escalated": 403,
    "claim": 200,
    "unassign": 200,
    "transfer": 200,
    "messages list": 200,
    "message send": 403,
    "ticket attachments": 200,
    "attachment detail": 200,
    "canned reply of wei: update": 404,
    "canned reply of wei: delete": 404,
}

# --- WebSocket frames ---------------------------------------------------------------------------------------

OK = "ok"  # the frame's own answer (or, for frames that have none, no error)
NO_CALL = 999_999_999  # calls are the calls helper's; every role is refused one it is not in


@dataclass(frozen=True)
class FrameRow:
    frame: Callable[[dict[str, Any]], dict[str, Any]]
    # Per logged-in role: OK or the error code. The logged out never get a socket (closed with 4401).
    expected: dict[str, str]
    # Frames sent first (their answers are not checked here): a subscription, for frames that need one.
    setup: Callable[[dict[str, Any]], list[dict[str, Any]]] = field(default=lambda o: [])


def frame_cells(default: str, **by_role: str) -> dict[str, str]:
    return {**{role: default for role in ROLES if role not in LOGGED_OUT}, **by_role}


def conv(o: dict[str, Any]) -> int:
    return int(o["conversation"].pk)


def subscribe(o: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "subscribe", "conversation": conv(o)}]


def call_frame(name: str, o: dict[str, Any]) -> dict[str, Any]:
    return {"type": name, "call": NO_CALL}


VIEWERS = frame_cells(OK, buyer_b="not_found")
FRAMES: dict[str, FrameRow] = {
    "ping": FrameRow(lambda o: {"type": "ping"}, frame_cells(OK)),
    "subscribe": FrameRow(lambda o: {"type": "subscribe", "conversation": conv(o)}, VIEWERS),
    "unsubscribe": FrameRow(lambda o: {"type": "unsubscribe", "conversation": conv(o)}, frame_cells(OK)),
    "message.send": FrameRow(
        lambda o: {"type": "message.send", "conversation": conv(o), "client_id": str(uuid.uuid4()), "body": "hi"},
        # Another buyer's conversation and one that does not exist get the same answer (one SQL statement).
        frame_cells("not_allowed", buyer_a=OK, agent=OK),
    ),
    "receipt": FrameRow(
        lambda o: {"type": "receipt", "conversation": conv(o), "read_seq": 1},
        frame_cells("not_allowed", buyer_a=OK, agent=OK, buyer_b="not_subscribed"),
        setup=subscribe,
    ),
    "typing": FrameRow(
        lambda o: {"type": "typing", "conversation": conv(o)},
        frame_cells("not_allowed", buyer_a=OK, agent=OK),
        setup=subscribe,
    ),
    "presence.set": FrameRow(
        lambda o: {"type": "presence.set", "status": "away"}, frame_cells(OK, **dict.fromkeys(BUYERS, "not_allowed"))
    ),
    "queue.subscribe": FrameRow(
        lambda o: {"type": "queue.subscribe"}, frame_cells(OK, **dict.fromkeys(BUYERS, "not_allowed"))
    ),
    # Everyone may watch the list of their own tickets: the group carries only their own tickets' activity.
    "lists.subscribe": FrameRow(lambda o: {"type": "lists.subscribe"}, frame_cells(OK)),
    "call.start": FrameRow(
        lambda o: {"type": "call.start", "conversation": conv(o), "media": "voice"},
        # alice may call: she is only told wei is offline (the roles' sockets take turns here).
        frame_cells("not_allowed", buyer_a="callee_offline", agent=OK, buyer_b="not_found"),
    ),
    **{
        name: FrameRow(functools.partial(call_frame, name), frame_cells("call_not_found"))
        for name in ("call.accept", "call.decline", "call.hangup", "call.resume")
    },
    "call.signal": FrameRow(
        lambda o: {"type": "call.signal", "call": NO_CALL, "kind": "offer", "sdp": "v=0"},
        frame_cells("call_not_found"),
    ),
}
ERROR_KEYS = {"type", "code", "message", "ref", "retry_after"}


# --- The people and objects every row acts on -----------------------------------------------------------------


def build_world() -> dict[str, Any]:
    from django.contrib.auth.models import Permission

    from refundchat.api import tokens
    from tickets import privacy

    alice = factories.buyer(username="alice", first_name="Alice")
    bob = factories.buyer(username="bob", first_name="Bob")
    wei = factories.agent(username="wei")
    li = factories.agent(username="li")
    manager = factories.staff(Role.MANAGER, username="boss")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    claim_ticket(ticket_id=ticket.pk, agent=wei)
    shop: Any = factories.UserFactory(username="shop-erp")
    shop.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="tickets", codename__in=["add_order", "change_order", "view_order"]
        )
    )
    _token, key = tokens.do_create_token(name="ERP", user=shop, scopes=list(tokens.SCOPES))
    export = DataExport.objects.create(
        buyer=alice,
        status=ExportStatus.READY,
        file_name=f"export-{alice.pk}.zip",
        ready_at=timezone.now(),
        expires_at=timezone.now() + timedelta(hours=1),
    )
    privacy.exports_dir().mkdir(parents=True, exist_ok=True)
    (privacy.exports_dir() / export.file_name).write_bytes(b"PK\x05\x06" + bytes(18))
    export.token = privacy.export_link_token(export=export)  # type: ignore[attr-defined]  # for the row's path
    people = {
        "buyer_a": alice,
        "buyer_b": bob,
        "agent": wei,
        "agent2": li,
        "finance": factories.staff(Role.FINANCE, username="fang"),
        "warehouse": factories.staff(Role.WAREHOUSE, username="cang"),
        "manager": manager,
    }
    return {
        "people": people,
        "token": key,
        "ticket": ticket,
        "conversation": ticket.conversation,
        "li": li,
        "other_ticket": factories.open_ticket(order=factories.order_with_items(buyer=bob, items=[(5000, 1)])),
        "spare_order": factories.order_with_items(buyer=alice, items=[(3000, 1)]),
        "attachment": factories.stored_attachment(ticket=ticket, content=b"\xff\xd8\xff evidence"),
        "upload": factories.UploadFactory(ticket=ticket, uploader=alice),
        "reply": save_reply(user=wei, title="Mine", language="zh-hans", body="您好"),
        "payout": Payout.objects.create(
            ticket=ticket, amount_cents=7900, status=PayoutStatus.AWAITING_APPROVAL, provider="fake"
        ),
        "export": export,
        "subscription": WebhookSubscription.objects.create(
            url="https://erp.example.com/refunds", secret="s" * 32, event_types=[WebhookEvent.TICKET_CREATED]
        ),
    }


def clients(world: dict[str, Any]) -> dict[str, Client]:
    result: dict[str, Client] = {}
    for role in ROLES:
        client = Client(headers={"Accept-Language": "en", "Tus-Resumable": "1.0.0"})
        if role == "integration":
            client.defaults["HTTP_AUTHORIZATION"] = f"Token {world['token']}"
        elif role != "anonymous":
            client.force_login(world["people"][role])
        result[role] = client
    return result


def outcome(response: Any) -> int | str:
    if response.status_code == 302 and "/login/" in response.get("Location", ""):
        return LOGIN
    return int(response.status_code)


# --- Every URL pattern, API operation and frame type has a row ------------------------------------------------


def url_patterns(resolver: URLResolver | None = None, prefix: str = "", namespace: str = "") -> list[tuple[str, Any]]:
    """(row key, view) of every URL pattern: namespace:name, or the route of an unnamed one."""
    found: list[tuple[str, Any]] = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}".strip(":") if entry.namespace else namespace
            found += url_patterns(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            key = f"{namespace}:{entry.name}".strip(":") if entry.name else prefix + str(entry.pattern)
            found.append((key, entry.callback))
    return found


def is_api_operation(view: Any) -> bool:
    """REST API views (DRF): their rows are the operations of the OpenAPI schema."""
    return hasattr(view, "cls") and view.__module__ in {"tickets.api", "messaging.api", "media.api"}


def test_the_table_has_a_row_for_every_door() -> None:
    from messaging.consumers import RealtimeConsumer
    from tests.api.test_permissions import test_table_covers_every_endpoint_of_the_schema

    missing = sorted(
        key
        for key, view in url_patterns()
        if key not in WEB and not key.startswith(("admin:", "admin/")) and not is_api_operation(view)
    )
    assert missing == [], f"URL patterns with no row in WEB: {missing}"
    stale = sorted(set(WEB) - {key for key, _view in url_patterns()})
    assert stale == [], f"rows for URL patterns that no longer exist: {stale}"
    # Every API operation of the OpenAPI schema has its row in tests/api/test_permissions.py.
    test_table_covers_every_endpoint_of_the_schema()
    assert set(FRAMES) == set(RealtimeConsumer.HANDLERS), "every frame type the consumer accepts needs a row"


# --- Every cell, against the running app --------------------------------------------------------------------


@pytest.mark.django_db
def test_every_url_answers_each_role_as_the_table_says(settings: Any) -> None:
    settings.REFUNDCHAT_API_THROTTLE_RATES = {"token": None, "user": None, "anon": None}
    world = build_world()
    by_role = clients(world)
    sessions = {role: {name: c.value for name, c in client.cookies.items()} for role, client in by_role.items()}
    rows = [(key, row) for key, row in WEB.items()]
    rows += [(key, Row("GET", fixed(path), ADMIN)) for key, path in ADMIN_SAMPLES.items()]
    wrong: list[str] = []
    for key, row in rows:
        for role in ROLES:
            client = by_role[role]
            for name, value in sessions[role].items():  # a cell that logs out must not log the next cell out
                client.cookies[name] = value
            with transaction.atomic():
                # Each cell sees the same world: what it changed is rolled back.
                response = client.generic(
                    row.method,
                    row.path(world),
                    data=_form(row.data(world)),
                    content_type="application/x-www-form-urlencoded",
                )
                transaction.set_rollback(True)
            got, expected = outcome(response), row.expected[role]
            if got != expected:
                wrong.append(f"{key} as {role}: expected {expected}, got {got}")
    assert wrong == [], "\n".join(wrong)


def _form(data: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode(data)


@pytest.mark.django_db
def test_every_api_operation_answers_the_agent_not_assigned(settings: Any) -> None:
    """The other roles' cells of the API are checked in tests/api/test_permissions.py."""
    from rest_framework.test import APIClient

    from tests.api.test_permissions import ENDPOINTS

    settings.REFUNDCHAT_API_THROTTLE_RATES = {"token": None, "user": None, "anon": None}
    world = build_world()
    client = APIClient()
    client.force_authenticate(user=world["people"]["agent2"])
    wrong = []
    for endpoint in ENDPOINTS:
        with transaction.atomic():
            body = endpoint.body(world) if endpoint.body else None
            response = getattr(client, endpoint.method.lower())(endpoint.path(world), body, format="json")
            transaction.set_rollback(True)
        expected = AGENT2_API.get(endpoint.name, endpoint.expected.get("agent", endpoint.default))
        if response.status_code != expected:
            wrong.append(f"{endpoint.name}: expected {expected}, got {response.status_code}")
    assert wrong == [], "\n".join(wrong)


async def _answer(comm: Any, frame: dict[str, Any]) -> list[dict[str, Any]]:
    """The frames that answer `frame`: everything up to the pong of a ping sent right after it and, for a
    message.send (answered once stored, maybe after later frames: docs/protocol.md), up to its ack or error."""
    await comm.send_json_to(frame)
    await comm.send_json_to({"type": "ping"})
    pongs_due = 2 if frame.get("type") == "ping" else 1
    unanswered = frame.get("client_id") if frame.get("type") == "message.send" else None
    answer: list[dict[str, Any]] = []
    while pongs_due or unanswered:
        received = await comm.receive_json_from(timeout=5)
        if received["type"] == "pong":
            pongs_due -= 1
            continue
        if unanswered in (received.get("client_id"), received.get("ref")):
            unanswered = None
        answer.append(received)
    return answer


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("flush_channel_layer")
def test_every_frame_type_answers_each_role_as_the_table_says() -> None:
    from asgiref.sync import async_to_sync
    from channels.testing import WebsocketCommunicator

    from messaging.consumers import CLOSE_UNAUTHENTICATED
    from refundchat.asgi import application

    world = build_world()
    cookies = {
        role: client.cookies["sessionid"].value for role, client in clients(world).items() if role not in LOGGED_OUT
    }
    alice_marks = [f'"conversation": {conv(world)}', world["ticket"].number, "Alice"]

    def socket(cookie: str | None) -> WebsocketCommunicator:
        headers = [(b"origin", b"http://127.0.0.1:8000"), (b"accept-language", b"en")]
        if cookie:
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        return WebsocketCommunicator(application, "/ws/", headers=headers)

    async def check() -> list[str]:
        wrong: list[str] = []
        # The logged out (the integration token is no session) get no socket at all.
        comm = socket(None)
        await comm.connect()
        closed = await comm.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED}
        for role, cookie in cookies.items():
            comm = socket(cookie)
            connected, _ = await comm.connect()
            assert connected
            assert (await comm.receive_json_from())["type"] == "hello"
            seen: list[dict[str, Any]] = []
            for name, row in FRAMES.items():
                for setup in row.setup(world):
                    seen += await _answer(comm, setup)
                answer = await _answer(comm, row.frame(world))
                seen += answer
                errors = [frame for frame in answer if frame["type"] == "error"]
                got = errors[0]["code"] if errors else OK
                if got != row.expected[role]:
                    wrong.append(f"{name} as {role}: expected {row.expected[role]}, got {got} ({answer})")
                for error in errors:
                    if set(error) - ERROR_KEYS:
                        wrong.append(f"{name} as {role}: the error frame carries data: {error}")
            if role == "buyer_b":
                text = json.dumps(seen, ensure_ascii=False)
                wrong += [f"buyer_b was sent alice's {mark}" for mark in alice_marks if mark in text]
            await comm.disconnect()
        return wrong

    wrong = async_to_sync(check)()
    assert wrong == [], "\n".join(wrong)
