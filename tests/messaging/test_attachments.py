"""Messages that carry uploaded files, and cards: what is linked, the exact frames, refusals that write nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from django.utils import timezone

from media.models import Attachment, Upload, UploadStatus
from media.selectors import message_attachment_payload
from messaging import realtime, selectors, services
from messaging.models import Conversation, Message, MessageKind, Participant
from messaging.services import MessageRejected
from tests import factories
from tests.media.samples import jpeg
from tests.messaging.test_consumer import communicator, connect, receive_until
from tickets import services as ticket_services
from tickets.formatting import format_cny

pytestmark = pytest.mark.django_db


def completed_upload(ticket: Any, uploader: Any, *, content: bytes | None = None) -> tuple[Upload, Attachment]:
    """An upload that finished and passed validation, with its attachment (as media.services leaves them)."""
    content = content or jpeg()
    attachment = factories.stored_attachment(ticket=ticket, content=content, uploader=uploader)
    upload = factories.UploadFactory(
        ticket=ticket,
        uploader=uploader,
        length=len(content),
        offset=len(content),
        status=UploadStatus.COMPLETE,
        sha256=attachment.sha256,
        completed_at=timezone.now(),
    )
    assert isinstance(upload, Upload)
    attachment.upload = upload
    attachment.filename = "colour.jpg"
    attachment.save(update_fields=["upload", "filename"])
    return upload, attachment


def send(ticket: Any, sender: Any, upload_ids: list[Any], *, body: Any = "", client_id: uuid.UUID | None = None):
    return services.post_message_with_attachments(
        conversation_id=ticket.conversation.pk,
        sender=sender,
        body=body,
        client_id=client_id or uuid.uuid4(),
        upload_ids=upload_ids,
    )


def snapshot(ticket: Any) -> tuple[Any, ...]:
    conversation = Conversation.objects.get(pk=ticket.conversation.pk)
    return (
        conversation.last_seq,
        Message.objects.filter(conversation=conversation).count(),
        sorted(Attachment.objects.filter(ticket=ticket).values_list("pk", "message_id")),
        sorted(Participant.objects.filter(conversation=conversation).values_list("user_id", "read_seq")),
    )


def test_message_carries_the_senders_uploads_and_publishes_them(
    claimed_ticket, django_capture_on_commit_callbacks, published
):
    ticket, _agent = claimed_ticket
    alice = ticket.buyer
    photo_upload, photo = completed_upload(ticket, alice)
    video_upload, video = completed_upload(ticket, alice)

    with django_capture_on_commit_callbacks(execute=True):
        posted = send(ticket, alice, [video_upload.pk, photo_upload.pk], body="  颜色不对  ")

    message = posted.message
    assert posted.created
    assert (message.kind, message.body, message.has_attachments) == (MessageKind.TEXT, "颜色不对", True)
    assert sorted(message.attachments.values_list("pk", flat=True)) == [photo.pk, video.pk]
    conversation = ticket.conversation
    activity = {
        "type": "ticket.activity",
        "ticket_id": ticket.pk,
        "conversation": conversation.pk,
        "seq": message.seq,
        "sender_id": alice.pk,
        "last_message_at": message.created_at.isoformat(),
    }
    frame = {
        "type": "message",
        "message": {
            "conversation": conversation.pk,
            "seq": message.seq,
            "kind": "text",
            "sender_id": alice.pk,
            "sender_name": alice.get_full_name() or alice.get_username(),
            "body": "颜色不对",
            "client_id": str(message.client_id),
            "created_at": message.created_at.isoformat(),
            # Oldest first, whatever order the client listed them in.
            "attachments": [
                message_attachment_payload(attachment=Attachment.objects.get(pk=photo.pk)),
                message_attachment_payload(attachment=Attachment.objects.get(pk=video.pk)),
            ],
            "data": {},
        },
    }
    assert published == [
        (realtime.conversation_group(conversation.pk), frame),
        (realtime.QUEUE_GROUP, activity),
        (realtime.activity_group(alice.pk), activity),
    ]
    first = frame["message"]["attachments"][0]
    assert first["id"] == photo.pk
    assert first["filename"] == "colour.jpg"
    assert first["urls"]["original"] == f"/attachments/{photo.pk}/original"
    assert first["content_type"] == "image/jpeg"
    mine = Participant.objects.get(conversation=conversation, user=alice)
    assert (mine.delivered_seq, mine.read_seq) == (message.seq, message.seq)


def test_a_resend_returns_the_stored_message_and_writes_nothing(
    claimed_ticket, django_capture_on_commit_callbacks, published
):
    ticket, _agent = claimed_ticket
    upload, _attachment = completed_upload(ticket, ticket.buyer)
    client_id = uuid.uuid4()
    first = send(ticket, ticket.buyer, [upload.pk], client_id=client_id)
    before = snapshot(ticket)
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        again = send(ticket, ticket.buyer, [upload.pk], client_id=client_id)

    assert not again.created
    assert again.message.pk == first.message.pk
    assert snapshot(ticket) == before
    assert published == []


def test_the_agent_can_send_files_and_that_is_the_first_reply(claimed_ticket):
    ticket, agent = claimed_ticket
    upload, attachment = completed_upload(ticket, agent)
    posted = send(ticket, agent, [upload.pk], body=None)
    attachment.refresh_from_db()
    assert attachment.message_id == posted.message.pk
    assert posted.message.body == ""
    ticket.refresh_from_db()
    assert ticket.first_responded_at is not None


def refused(ticket: Any, sender: Any, upload_ids: list[Any], code: str, **kwargs: Any) -> None:
    before = snapshot(ticket)
    with pytest.raises(MessageRejected) as refusal:
        send(ticket, sender, upload_ids, **kwargs)
    assert refusal.value.code == code
    assert refusal.value.message
    assert snapshot(ticket) == before


def test_another_buyers_upload_is_refused_and_nothing_is_written(claimed_ticket):
    ticket, _agent = claimed_ticket
    bob = factories.buyer(username="bob")
    bobs_ticket = factories.open_ticket(order=factories.order_with_items(buyer=bob, items=[(500, 1)]))
    bobs_upload, bobs_attachment = completed_upload(bobs_ticket, bob)
    mine, _attachment = completed_upload(ticket, ticket.buyer)

    # With one of her own: the whole message is refused, hers is not linked either.
    refused(ticket, ticket.buyer, [mine.pk, bobs_upload.pk], "attachment_not_found")
    bobs_attachment.refresh_from_db()
    assert bobs_attachment.message_id is None


def test_uploads_of_someone_else_on_the_same_ticket_are_refused(claimed_ticket):
    ticket, agent = claimed_ticket
    agents_upload, _attachment = completed_upload(ticket, agent)
    refused(ticket, ticket.buyer, [agents_upload.pk], "attachment_not_found")


def test_unfinished_unknown_and_already_sent_uploads_are_refused(claimed_ticket):
    ticket, _agent = claimed_ticket
    receiving = factories.UploadFactory(ticket=ticket, uploader=ticket.buyer)
    refused(ticket, ticket.buyer, [receiving.pk], "attachment_not_found")
    refused(ticket, ticket.buyer, [uuid.uuid4()], "attachment_not_found")
    sent, _attachment = completed_upload(ticket, ticket.buyer)
    send(ticket, ticket.buyer, [sent.pk])
    refused(ticket, ticket.buyer, [sent.pk], "attachment_already_sent")
    refused(ticket, ticket.buyer, [], "attachments_missing")
    fresh, _attachment = completed_upload(ticket, ticket.buyer)
    refused(ticket, ticket.buyer, [fresh.pk], "message_too_long", body="x" * 5001)


def test_someone_who_may_not_write_is_refused(claimed_ticket):
    ticket, _agent = claimed_ticket
    upload, _attachment = completed_upload(ticket, ticket.buyer)
    other_agent = factories.agent(username="other")
    refused(ticket, other_agent, [upload.pk], "not_allowed")


def test_catch_up_and_first_paint_read_attachments_in_a_fixed_number_of_queries(
    claimed_ticket, django_assert_num_queries
):
    ticket, agent = claimed_ticket
    for sender in (ticket.buyer, agent, ticket.buyer):
        uploads = [completed_upload(ticket, sender)[0] for _ in range(2)]
        send(ticket, sender, [u.pk for u in uploads])
    services.post_system_message(conversation_id=ticket.conversation.pk, body="hi", key=uuid.uuid4())
    conversation_id = ticket.conversation.pk

    # Messages with their senders, then every attachment of the batch: two queries.
    with django_assert_num_queries(2):
        caught_up = [
            selectors.serialize_message(m)
            for m in selectors.messages_after(conversation_id=conversation_id, after_seq=0)
        ]
    with django_assert_num_queries(2):
        painted = [selectors.serialize_message(m) for m in selectors.recent_messages(conversation_id=conversation_id)]
    assert caught_up == painted
    assert [len(m["attachments"]) for m in caught_up][-4:] == [2, 2, 2, 0]


def test_buyer_shares_the_order_card(claimed_ticket, django_capture_on_commit_callbacks, published):
    ticket, _agent = claimed_ticket
    with django_capture_on_commit_callbacks(execute=True):
        posted = services.share_order_card(
            conversation_id=ticket.conversation.pk, sender=ticket.buyer, client_id=uuid.uuid4()
        )
    message = posted.message
    item = ticket.order.items.get()
    assert message.kind == MessageKind.ORDER_CARD
    assert message.data == {
        "order_no": ticket.order.order_no,
        "ticket_number": ticket.number,
        "paid_total_cents": ticket.order.paid_total_cents,
        "paid_total": format_cny(ticket.order.paid_total_cents),
        "items": [
            {
                "title": item.title,
                "sku": item.sku,
                "quantity": 1,
                "unit_price_cents": 7900,
                "unit_price": "¥79.00",
                "image_url": item.image.url if item.image else "",
            }
        ],
    }
    assert published[0] == (
        realtime.conversation_group(ticket.conversation.pk),
        {"type": "message", "message": selectors.serialize_message(message)},
    )
    assert published[0][1]["message"]["data"] == message.data


def test_agent_posts_a_product_card_buyers_and_bad_links_are_refused(claimed_ticket):
    ticket, agent = claimed_ticket
    conversation_id = ticket.conversation.pk
    card = {"title": "T 恤 白色 L", "url": "https://shop.example/p/1", "image_url": "", "price_cents": 4900}
    posted = services.post_product_card(conversation_id=conversation_id, sender=agent, client_id=uuid.uuid4(), **card)
    assert posted.message.kind == MessageKind.PRODUCT_CARD
    assert posted.message.data == {**card, "price": "¥49.00"}

    before = snapshot(ticket)
    for sender, changes, code in [
        (ticket.buyer, {}, "not_allowed"),
        (agent, {"url": "javascript:alert(1)"}, "bad_card"),
        (agent, {"image_url": "data:image/svg+xml,<svg/>"}, "bad_card"),
        (agent, {"title": ""}, "bad_card"),
        (agent, {"price_cents": -1}, "bad_card"),
    ]:
        with pytest.raises(MessageRejected) as refusal:
            services.post_product_card(
                conversation_id=conversation_id, sender=sender, client_id=uuid.uuid4(), **{**card, **changes}
            )
        assert refusal.value.code == code
    assert snapshot(ticket) == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("flush_channel_layer")
def test_the_socket_sends_attachments_and_cards():
    alice = factories.buyer(username="alice")
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=alice, items=[(7900, 1)]))
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=factories.agent(username="agent"))
    upload, attachment = completed_upload(ticket, alice)
    conversation_id = ticket.conversation.pk
    comm = communicator(alice)

    async def scenario() -> list[dict[str, Any]]:
        await connect(comm)
        await comm.send_json_to({"type": "subscribe", "conversation": conversation_id})
        await receive_until(comm, "subscribed")
        got = []
        client_id = str(uuid.uuid4())
        frame = {"type": "message.send", "conversation": conversation_id, "client_id": client_id}
        await comm.send_json_to({**frame, "attachments": [str(upload.pk)]})
        got.append(await receive_until(comm, "message.ack"))
        got.append(await receive_until(comm, "message"))
        await comm.send_json_to({**frame, "client_id": str(uuid.uuid4()), "attachments": ["nope"]})
        got.append(await receive_until(comm, "error"))
        await comm.send_json_to({**frame, "client_id": str(uuid.uuid4()), "attachments": [str(upload.pk)]})
        got.append(await receive_until(comm, "error"))
        await comm.send_json_to({**frame, "client_id": str(uuid.uuid4()), "card": {"kind": "order"}})
        got.append(await receive_until(comm, "message"))
        await comm.send_json_to({**frame, "client_id": str(uuid.uuid4()), "card": {"kind": "product", "title": "x"}})
        got.append(await receive_until(comm, "error"))
        await comm.disconnect()
        return got

    ack, message, bad, again, order_card, product = async_to_sync(scenario)()
    assert ack["duplicate"] is False
    assert [a["id"] for a in message["message"]["attachments"]] == [attachment.pk]
    assert (bad["code"], again["code"]) == ("bad_frame", "attachment_already_sent")
    assert order_card["message"]["kind"] == "order_card"
    assert order_card["message"]["data"]["order_no"] == ticket.order.order_no
    assert product["code"] == "not_allowed"


def test_the_chat_page_renders_attachments_and_cards(claimed_ticket):
    ticket, _agent = claimed_ticket
    upload, attachment = completed_upload(ticket, ticket.buyer)
    send(ticket, ticket.buyer, [upload.pk], body="看图")
    services.share_order_card(conversation_id=ticket.conversation.pk, sender=ticket.buyer, client_id=uuid.uuid4())
    client = Client()
    client.force_login(ticket.buyer)
    page = client.get(f"/refunds/{ticket.pk}/", headers={"Accept-Language": "en"}).content.decode()
    assert f'data-attachment-id="{attachment.pk}"' in page
    assert f"/attachments/{attachment.pk}/original" in page
    assert 'data-testid="order-card-message"' in page
    assert ticket.order.order_no in page
