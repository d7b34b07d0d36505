"""The resources behave as the web does: orders are idempotent, actions call the console's services,
messages go through the chat's service, reads are scoped, paged, filtered and bounded in queries."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient

from messaging import realtime
from messaging.models import Message
from messaging.selectors import serialize_message
from tests import factories
from tests.api.conftest import token_client
from tickets.models import Order, OrderItem, Payout, RefundTicket, TicketEvent
from tickets.services import claim_ticket

pytestmark = pytest.mark.django_db


def as_user(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


ORDER = {
    "order_no": "ERP-2026-0001",
    "buyer": "carol",
    "buyer_email": "carol@example.com",
    "paid_total_cents": 16600,
    "shipping_fee_cents": 800,
    "paid_at": "2026-11-20T10:00:00+08:00",
    "recipient_name": "王小明",
    "shipping_address": "上海市徐汇区漕溪北路 1 号",
    "items": [
        {"sku": "TEE-RED-M", "title": "纯棉T恤 红 M", "unit_price_cents": 7900, "quantity": 1},
        {"sku": "SOCK-3", "title": "袜子三双装", "unit_price_cents": 7900, "quantity": 1},
    ],
}


# --- orders -----------------------------------------------------------------------------------------------------


def test_pushing_the_same_order_twice_creates_it_once(shop_token):
    client = token_client(shop_token)
    first = client.post("/api/v1/orders/", ORDER, format="json")
    assert first.status_code == 201, first.content
    again = client.post("/api/v1/orders/", ORDER, format="json")
    assert again.status_code == 200
    assert first.json() == again.json()
    order = Order.objects.get()
    assert (order.order_no, order.buyer.username, order.paid_total_cents) == ("ERP-2026-0001", "carol", 16600)
    assert sorted(order.items.values_list("sku", flat=True)) == ["SOCK-3", "TEE-RED-M"]
    # The new buyer account has no password: the shop signs them in.
    assert not order.buyer.has_usable_password()
    assert order.buyer.groups.filter(name="buyer").exists()


def test_put_updates_the_order_and_its_items_by_sku(shop_token):
    client = token_client(shop_token)
    client.post("/api/v1/orders/", ORDER, format="json")
    changed = {
        **{k: v for k, v in ORDER.items() if k != "order_no"},
        "delivered_at": "2026-11-22T15:00:00+08:00",
        "items": [{"sku": "TEE-RED-M", "title": "纯棉T恤 红 M", "unit_price_cents": 7900, "quantity": 2}],
    }
    response = client.put("/api/v1/orders/ERP-2026-0001/", changed, format="json")
    assert response.status_code == 200, response.content
    assert [(i["sku"], i["quantity"]) for i in response.json()["items"]] == [("TEE-RED-M", 2)]
    assert OrderItem.objects.filter(order__order_no="ERP-2026-0001").count() == 1
    assert Order.objects.get().delivered_at is not None


def test_an_order_change_that_breaks_a_refund_is_refused_and_changes_nothing(shop_token, ticket):
    order = ticket.order
    item = order.items.get()
    body = {
        "buyer": "alice",
        "paid_total_cents": order.paid_total_cents,
        "paid_at": order.paid_at.isoformat(),
        "items": [{"sku": "OTHER", "title": "x", "unit_price_cents": 1, "quantity": 1}],
    }
    response = token_client(shop_token).put(f"/api/v1/orders/{order.order_no}/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "item_in_ticket"
    assert list(order.items.values_list("pk", flat=True)) == [item.pk]

    stolen = {
        **body,
        "buyer": "bob",
        "items": [{"sku": item.sku, "title": item.title, "unit_price_cents": 7900, "quantity": 1}],
    }
    response = token_client(shop_token).put(f"/api/v1/orders/{order.order_no}/", stolen, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "buyer_changed")


def test_order_shows_its_refund_states_to_the_shop(shop_token, ticket):
    body = token_client(shop_token).get(f"/api/v1/orders/{ticket.order.order_no}/").json()
    assert body["tickets"] == [{"id": ticket.pk, "number": ticket.number, "status": "requested"}]


def test_bad_order_input_gets_field_errors(shop_token):
    bad = {**ORDER, "paid_total_cents": -1, "items": []}
    response = token_client(shop_token).post("/api/v1/orders/", bad, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"paid_total_cents", "items"}
    assert body["fields"]["paid_total_cents"][0]["code"] == "min_value"
    assert not Order.objects.exists()


# --- tickets ----------------------------------------------------------------------------------------------------


def test_transitions_are_the_consoles_workflow(ticket, wei, people, django_capture_on_commit_callbacks, published):
    client = as_user(wei)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/tickets/{ticket.pk}/approve_refund_only/",
            {"amount_cents": 7900, "reason": "Defect visible"},
            format="json",
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["approved_amount_cents"]) == ("approved_refund_only", 7900)
    assert body["actions"] == ["request_payout"]
    event = TicketEvent.objects.filter(ticket=ticket, kind="status_changed").get()
    assert (event.actor, event.to_status, event.data["transition"]) == (
        wei,
        "approved_refund_only",
        "approve_refund_only",
    )
    # The same side effects as the console: the buyer's tabs and the queue heard of it.
    assert (
        realtime.user_group(ticket.buyer_id),
        {
            "type": "ticket.updated",
            "ticket_id": ticket.pk,
            "status": "approved_refund_only",
            "assigned_agent_id": wei.pk,
        },
    ) in published

    with django_capture_on_commit_callbacks(execute=True):
        paid = client.post(f"/api/v1/tickets/{ticket.pk}/request_payout/", {}, format="json")
    assert paid.status_code == 200
    assert Payout.objects.get(ticket=ticket).amount_cents == 7900


def test_a_refused_transition_keeps_its_code_and_changes_nothing(ticket, wei):
    response = as_user(wei).post(
        f"/api/v1/tickets/{ticket.pk}/approve_refund_only/", {"amount_cents": 999999}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (400, "amount_too_high")
    wrong = as_user(wei).post(f"/api/v1/tickets/{ticket.pk}/request_payout/", {}, format="json")
    assert (wrong.status_code, wrong.json()["code"]) == (409, "wrong_state")
    ticket.refresh_from_db()
    assert ticket.status == "requested"


def test_ship_return_checks_the_tracking_number_like_the_web(alice, wei):
    ticket = factories.open_ticket(
        order=factories.order_with_items(buyer=alice, items=[(7900, 1)]), kind="return_and_refund"
    )
    claim_ticket(ticket_id=ticket.pk, agent=wei)
    as_user(wei).post(f"/api/v1/tickets/{ticket.pk}/require_return/", {"amount_cents": 7900}, format="json")
    bad = as_user(alice).post(
        f"/api/v1/tickets/{ticket.pk}/ship_return/", {"carrier": "SF", "tracking_no": "123"}, format="json"
    )
    assert (bad.status_code, bad.json()["code"]) == (400, "bad_tracking_no")
    good = as_user(alice).post(
        f"/api/v1/tickets/{ticket.pk}/ship_return/", {"carrier": "SF", "tracking_no": "SF1234567890123"}, format="json"
    )
    assert good.status_code == 200
    assert good.json()["return_tracking_no"] == "SF1234567890123"


def test_buyer_history_leaves_out_internal_events(ticket, alice, wei):
    staff_view = as_user(wei).get(f"/api/v1/tickets/{ticket.pk}/").json()
    buyer_view = as_user(alice).get(f"/api/v1/tickets/{ticket.pk}/").json()
    assert [e["kind"] for e in staff_view["history"]] == ["created", "assigned"]
    assert [e["kind"] for e in buyer_view["history"]] == ["created"]
    assert buyer_view["actions"] == ["cancel", "escalate"]


def test_ticket_list_is_filtered_and_paged_by_cursor_in_bounded_queries(alice, wei, django_assert_max_num_queries):
    for _n in range(5):
        factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    first = RefundTicket.objects.order_by("id").first()
    assert first is not None
    claim_ticket(ticket_id=first.pk, agent=wei)
    client = as_user(wei)
    with django_assert_max_num_queries(6):
        page = client.get("/api/v1/tickets/?page_size=2").json()
    assert len(page["results"]) == 2
    assert page["next"]
    seen = [row["id"] for row in page["results"]]
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [row["id"] for row in page["results"]]
    assert seen == sorted(RefundTicket.objects.values_list("pk", flat=True), reverse=True)

    mine = client.get(f"/api/v1/tickets/?assigned_agent={wei.pk}").json()["results"]
    assert [row["id"] for row in mine] == [first.pk]
    assert client.get("/api/v1/tickets/?status=refunded").json()["results"] == []
    bad = client.get("/api/v1/tickets/?status=exploded")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")


def test_ticket_detail_queries_do_not_grow_with_its_history(ticket, wei, django_assert_max_num_queries):
    client = as_user(wei)
    with django_assert_max_num_queries(12) as before:
        client.get(f"/api/v1/tickets/{ticket.pk}/")
    for reason in ("one", "two", "three"):
        TicketEvent.objects.create(ticket=ticket, kind="timer", reason=reason)
    with django_assert_max_num_queries(len(before.captured_queries)):
        client.get(f"/api/v1/tickets/{ticket.pk}/")


# --- messages and attachments -----------------------------------------------------------------------------------


def test_message_sent_by_the_api_reaches_the_sockets_and_a_resend_is_stored_once(
    ticket, alice, django_capture_on_commit_callbacks, published
):
    client = as_user(alice)
    client_id = str(uuid.uuid4())
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(
            f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "照片已上传", "client_id": client_id}, format="json"
        )
    assert sent.status_code == 201, sent.content
    message = Message.objects.get(conversation=ticket.conversation, client_id=client_id)
    assert sent.json() == serialize_message(message)
    assert (
        realtime.conversation_group(ticket.conversation.pk),
        {"type": "message", "message": serialize_message(message)},
    ) in published

    again = client.post(
        f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "照片已上传", "client_id": client_id}, format="json"
    )
    assert again.status_code == 200
    assert again.json()["seq"] == message.seq
    assert Message.objects.filter(conversation=ticket.conversation, client_id=client_id).count() == 1

    empty = client.post(
        f"/api/v1/tickets/{ticket.pk}/messages/", {"body": "  ", "client_id": str(uuid.uuid4())}, format="json"
    )
    assert (empty.status_code, empty.json()["code"]) == (400, "message_empty")


def test_messages_since_a_seq_oldest_first(ticket, alice, wei):
    from messaging.services import post_message

    for n in range(4):
        post_message(conversation_id=ticket.conversation.pk, sender=alice, body=f"m{n}", client_id=uuid.uuid4())
    client = as_user(wei)
    rows = client.get(f"/api/v1/tickets/{ticket.pk}/messages/?after_seq=2").json()["results"]
    assert [row["body"] for row in rows] == ["m2", "m3"]
    assert [row["seq"] for row in rows] == [3, 4]
    page = client.get(f"/api/v1/tickets/{ticket.pk}/messages/?page_size=3").json()
    assert [row["seq"] for row in page["results"]] == [1, 2, 3]
    assert [row["seq"] for row in client.get(page["next"]).json()["results"]] == [4]


def test_attachment_metadata_and_its_urls(ticket, alice):
    attachment = factories.stored_attachment(ticket=ticket, content=b"\xff\xd8\xff evidence")
    rows = as_user(alice).get(f"/api/v1/tickets/{ticket.pk}/attachments/").json()
    assert [row["id"] for row in rows] == [attachment.pk]
    one = as_user(alice).get(f"/api/v1/attachments/{attachment.pk}/").json()
    assert (one["kind"], one["size"], one["sha256"]) == ("image", attachment.size, attachment.sha256)
    assert one["urls"]["original"] == f"/attachments/{attachment.pk}/original"
    assert one["urls"]["thumbnail_small"] is None
