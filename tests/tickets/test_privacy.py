"""Sensitive data and privacy rights (issue #9): payout accounts encrypted and masked, the buyer's export,
erasure and media retention (tickets/privacy.py)."""

from __future__ import annotations

import io
import json
import logging
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core import mail
from django.test import Client
from django.utils import timezone

from media.models import Attachment, Upload
from messaging import services as messaging_services
from messaging.models import Message
from refundchat import crypto
from tests import factories
from tickets import outbox, payouts, privacy, tasks, workflow
from tickets.models import (
    AccessAction,
    AccessLogEntry,
    DataExport,
    ExportStatus,
    Order,
    OutboxKind,
    OutboxMessage,
    Payout,
    PayoutMethod,
    PayoutStatus,
    RefundTicket,
    TicketEvent,
    TicketStatus,
)
from tickets.roles import Role
from tickets.workflow import TransitionInput

pytestmark = pytest.mark.django_db
CARD = "6228480012345671"
MASKED = "622848******5671"
PHOTO = b"\xff\xd8\xff\xe0 evidence photo"


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def ticket_with_card(buyer: Any, *, price_cents: int = 7900) -> RefundTicket:
    order = factories.order_with_items(buyer=buyer, items=[(price_cents, 1)])
    return factories.open_ticket(order=order, payout_method=PayoutMethod.BANK_CARD, payout_account=CARD)


def refunded(ticket: RefundTicket, agent: Any) -> RefundTicket:
    """Approve and pay `ticket` through the real workflow (the fake gateway answers after commit, at once)."""
    workflow.do_transition(
        ticket_id=ticket.pk,
        name="approve_refund_only",
        user=agent,
        given=TransitionInput(amount_cents=ticket.requested_amount_cents),
    )
    workflow.do_transition(ticket_id=ticket.pk, name="request_payout", user=None, system=workflow.Actor.SYSTEM)
    ticket.refresh_from_db()
    return ticket


# --- payout accounts ---------------------------------------------------------------------------------


def request_refund_to_card(buyer: Client, *, order: Order, card: str) -> Any:
    """POST the buyer's refund form for the order's one item, to a bank card."""
    return buyer.post(
        f"/orders/{order.order_no}/refund/",
        {
            "kind": "refund_only",
            "reason": "quality_defect",
            f"item_{order.items.get().pk}": "1",
            "payout_method": "bank_card",
            "payout_account": card,
        },
    )


def test_the_refund_form_stores_the_card_encrypted_and_every_page_shows_it_masked(alice: Any, wei: Any) -> None:
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    buyer = client_for(alice)
    response = request_refund_to_card(buyer, order=order, card="6228 4800 1234 5671")
    assert response.status_code == 302
    ticket = RefundTicket.objects.get()
    assert ticket.payout_method == PayoutMethod.BANK_CARD
    assert CARD not in ticket.payout_account_encrypted
    assert crypto.decrypt(ticket.payout_account_encrypted) == CARD
    assert ticket.payout_account_masked == MASKED

    token = ticket.payout_account_encrypted
    manager = client_for(factories.staff(Role.MANAGER, username="boss"))
    finance = client_for(factories.staff(Role.FINANCE, username="fin"))
    pages = [
        buyer.get(f"/refunds/{ticket.pk}/"),
        client_for(wei).get(f"/console/tickets/{ticket.pk}/"),
        manager.get("/admin/tickets/refundticket/"),
        manager.get(f"/admin/tickets/refundticket/{ticket.pk}/change/"),
        finance.get("/console/payouts/"),
    ]
    for page in pages:
        html = page.content.decode()
        assert page.status_code == 200
        assert CARD not in html
        assert "6228 4800 1234 5671" not in html
        assert token not in html
    assert MASKED in pages[0].content.decode()
    assert MASKED in pages[1].content.decode()
    assert MASKED in pages[3].content.decode()


def test_a_bad_account_is_refused_in_the_buyers_language_and_not_echoed(alice: Any) -> None:
    order = factories.order_with_items(buyer=alice, items=[(7900, 1)])
    buyer = client_for(alice)
    buyer.post("/i18n/setlang/", {"language": "zh-hans"})
    response = request_refund_to_card(buyer, order=order, card="6228480012345672")  # Luhn fails
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-testid="payout-account-error"' in html
    assert "这不是有效的银行卡号" in html
    assert "6228480012345672" not in html
    assert RefundTicket.objects.count() == 0


@pytest.mark.parametrize(
    ("method", "account", "masked"),
    [
        (PayoutMethod.ALIPAY, "13812345678", "138****5678"),
        (PayoutMethod.ALIPAY, "alice.w@qq.com", "al***@qq.com"),
        (PayoutMethod.WECHAT, "wxid_alice88", "wx********88"),
    ],
)
def test_wallet_accounts_are_sealed_too(method: str, account: str, masked: str) -> None:
    sealed = payouts.seal_payout_account(method=method, account=account)
    assert (sealed.method, sealed.masked) == (method, masked)
    assert account not in sealed.encrypted
    assert crypto.decrypt(sealed.encrypted) == account


@pytest.mark.parametrize(
    ("method", "account", "code"),
    [
        (PayoutMethod.ALIPAY, "not an account", "bad_alipay"),
        (PayoutMethod.WECHAT, "1x", "bad_wechat"),
        (PayoutMethod.BANK_CARD, "", "bad_card"),
        ("paypal", "me@example.com", "bad_method"),
    ],
)
def test_bad_accounts_are_refused(method: str, account: str, code: str) -> None:
    with pytest.raises(payouts.PayoutError) as refused:
        payouts.check_payout_account(method=method, account=account)
    assert refused.value.code == code


def test_the_account_is_decrypted_only_to_pay_and_never_leaves_in_notifications_or_logs(
    alice: Any,
    wei: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings.REFUNDCHAT_WEBHOOK_URL = "https://shop.example.com/hooks"
    webhooks_sent: list[str] = []
    monkeypatch.setitem(
        outbox.SENDERS, OutboxKind.WEBHOOK, lambda m: webhooks_sent.append(json.dumps(m.payload, ensure_ascii=False))
    )
    seen: list[payouts.PayoutDestination] = []
    original = payouts.FakePayoutProvider.request_payout

    def spy(self: Any, **kwargs: Any) -> str:
        seen.append(kwargs["destination"])
        return original(self, **kwargs)

    monkeypatch.setattr(payouts.FakePayoutProvider, "request_payout", spy)
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_with_card(alice)
    token = ticket.payout_account_encrypted
    with django_capture_on_commit_callbacks(execute=True):
        refunded(ticket, wei)

    assert Payout.objects.get(ticket=ticket).status == PayoutStatus.SUCCEEDED
    assert [(d.method, d.account) for d in seen] == [(PayoutMethod.BANK_CARD, CARD)]
    decrypted = AccessLogEntry.objects.filter(action=AccessAction.PAYOUT_ACCOUNT_DECRYPTED, ticket=ticket)
    assert decrypted.count() == 1
    leaks = [
        *(json.dumps(m.payload, ensure_ascii=False) for m in OutboxMessage.objects.all()),
        *(f"{m.subject} {m.body}" for m in mail.outbox),
        *(record.getMessage() for record in caplog.records),
        *webhooks_sent,
    ]
    assert webhooks_sent
    assert mail.outbox
    for text in leaks:
        assert CARD not in text
        assert token not in text
        assert MASKED not in text


# --- export ----------------------------------------------------------------------------------------


def test_the_buyer_downloads_a_zip_of_all_their_data_and_nobody_else_can(
    alice: Any, wei: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = ticket_with_card(alice)
    messaging_services.post_message(
        conversation_id=ticket.conversation.pk, sender=alice, body="杯子裂了", client_id=uuid.uuid4()
    )
    attachment = factories.stored_attachment(ticket=ticket, content=PHOTO)
    Attachment.objects.filter(pk=attachment.pk).update(filename="../../cup.jpg")
    buyer = client_for(alice)
    with django_capture_on_commit_callbacks(execute=True):
        assert buyer.post("/account/privacy/export/").status_code == 302
    export = DataExport.objects.get()
    assert export.status == ExportStatus.READY
    page = buyer.get("/account/privacy/").content.decode()
    link = privacy.export_link_token(export=export)
    assert f"/account/privacy/export/{link}/" in page

    response = buyer.get(f"/account/privacy/export/{link}/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment")
    archive = zipfile.ZipFile(io.BytesIO(response.getvalue()))
    data = json.loads(archive.read("data.json"))
    assert data["account"]["username"] == "alice"
    [refund] = data["refunds"]
    assert refund["number"] == ticket.number
    assert refund["payout_account"] == MASKED
    assert [m["text"] for m in refund["messages"] if m["from"] == "me"] == ["杯子裂了"]
    assert archive.read(f"attachments/{attachment.pk}-cup.jpg") == PHOTO
    assert CARD not in archive.read("data.json").decode()
    assert AccessLogEntry.objects.filter(action=AccessAction.DATA_EXPORTED, actor=alice).count() == 1

    # Another buyer, staff and anonymous visitors get nothing from the same link.
    assert client_for(factories.buyer(username="bob")).get(f"/account/privacy/export/{link}/").status_code == 404
    assert client_for(wei).get(f"/account/privacy/export/{link}/").status_code == 404
    assert Client().get(f"/account/privacy/export/{link}/").status_code == 302
    assert buyer.get(f"/account/privacy/export/{link}x/").status_code == 404


def test_the_export_link_expires(alice: Any, django_capture_on_commit_callbacks: Any) -> None:
    buyer = client_for(alice)
    with django_capture_on_commit_callbacks(execute=True):
        export = privacy.request_export(buyer=alice)
    export.refresh_from_db()
    link = privacy.export_link_token(export=export)
    assert buyer.get(f"/account/privacy/export/{link}/").status_code == 200
    ttl = django_settings.REFUNDCHAT_EXPORT_LINK_TTL
    with time_machine.travel(timezone.now() + ttl + timedelta(minutes=1)):
        assert buyer.get(f"/account/privacy/export/{link}/").status_code == 404
        # The beat task removes the expired file (after commit).
        with django_capture_on_commit_callbacks(execute=True):
            tasks.purge_expired_media()
    assert not DataExport.objects.exists()
    assert not (privacy.exports_dir() / export.file_name).exists()


def test_one_export_at_a_time(alice: Any) -> None:
    first = privacy.request_export(buyer=alice)  # not built: its task runs only after commit
    assert privacy.request_export(buyer=alice).pk == first.pk


# --- erasure ---------------------------------------------------------------------------------------


def erase(client: Client, password: str) -> Any:
    return client.post("/account/privacy/erase/", {"password": password})


def test_a_wrong_password_erases_nothing(alice: Any) -> None:
    ticket_with_card(alice)
    buyer = client_for(alice)
    response = erase(buyer, "wrong")
    assert response.status_code == 400
    assert 'data-testid="erase-password-error"' in response.content.decode()
    alice.refresh_from_db()
    assert (alice.username, alice.is_active) == ("alice", True)
    assert RefundTicket.objects.get().payout_account_masked == MASKED
    assert not AccessLogEntry.objects.exists()


def test_open_refunds_keep_the_account(alice: Any) -> None:
    ticket_with_card(alice)
    response = erase(client_for(alice), factories.PASSWORD)
    assert response.status_code == 400
    assert 'data-testid="erase-error"' in response.content.decode()
    alice.refresh_from_db()
    assert alice.is_active


def test_erasure_anonymises_the_buyer_keeps_the_money_and_logs_out(
    alice: Any, wei: Any, django_capture_on_commit_callbacks: Any
) -> None:
    ticket = ticket_with_card(alice)
    Order.objects.filter(pk=ticket.order_id).update(recipient_name="王小丽", shipping_address="上海市浦东新区 1 号")
    messaging_services.post_message(
        conversation_id=ticket.conversation.pk, sender=alice, body="我家地址是…", client_id=uuid.uuid4()
    )
    attachment = factories.stored_attachment(ticket=ticket, content=PHOTO)
    photo_path = Path(attachment.original.path)
    with django_capture_on_commit_callbacks(execute=True):
        refunded(ticket, wei)
    paid = Payout.objects.get(ticket=ticket)
    events_before = TicketEvent.objects.count()
    buyer = client_for(alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = erase(buyer, factories.PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"

    alice.refresh_from_db()
    assert (alice.username, alice.email, alice.first_name, alice.is_active) == (f"erased-{alice.pk}", "", "", False)
    assert not alice.has_usable_password()
    order = Order.objects.get(pk=ticket.order_id)
    assert (order.recipient_name, order.shipping_address) == ("", "")
    assert order.paid_total_cents == 7900 + 800
    ticket.refresh_from_db()
    assert (ticket.payout_account_encrypted, ticket.payout_account_masked, ticket.payout_method) == ("", "", "")
    assert (ticket.status, ticket.approved_amount_cents) == (TicketStatus.REFUNDED, 7900)
    payout = Payout.objects.get(pk=paid.pk)
    assert (payout.amount_cents, payout.status, payout.paid_at) == (7900, PayoutStatus.SUCCEEDED, paid.paid_at)
    bodies = list(Message.objects.filter(conversation=ticket.conversation, sender=alice).values_list("body", flat=True))
    assert bodies == [privacy.ERASED_TEXT]
    assert not Attachment.objects.filter(ticket=ticket).exists()
    assert not Upload.objects.filter(ticket=ticket).exists()
    assert not photo_path.exists()
    assert all(m.payload.get("to") == [] for m in OutboxMessage.objects.filter(kind="email", ticket=ticket))
    # An audit record, and no TicketEvent.
    assert AccessLogEntry.objects.filter(action=AccessAction.DATA_ERASED, actor_id=alice.pk).count() == 1
    assert TicketEvent.objects.count() == events_before
    # Logged out: the session no longer works, and the old password no longer logs in.
    assert buyer.get("/account/privacy/").status_code == 302
    assert not Client().login(username="alice", password=factories.PASSWORD)


def test_staff_accounts_cannot_erase_themselves_here(wei: Any) -> None:
    with pytest.raises(privacy.PrivacyRefused) as refused:
        privacy.do_erase_buyer(buyer=wei, password=factories.PASSWORD)
    assert refused.value.code == "staff_account"


# --- retention -------------------------------------------------------------------------------------


def test_media_of_tickets_closed_longer_than_the_retention_is_deleted(
    settings: Any, wei: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.REFUNDCHAT_MEDIA_RETENTION_DAYS = 30
    start = timezone.now()

    def new_ticket() -> RefundTicket:
        return factories.open_ticket(order=factories.order_with_items(buyer=factories.buyer(), items=[(100, 1)]))

    with time_machine.travel(start, tick=False), django_capture_on_commit_callbacks(execute=True):
        old = refunded(new_ticket(), wei)
    old_photo = factories.stored_attachment(ticket=old, content=PHOTO)
    with time_machine.travel(start + timedelta(days=2), tick=False), django_capture_on_commit_callbacks(execute=True):
        recent = refunded(new_ticket(), wei)
        still_open = new_ticket()
    recent_photo = factories.stored_attachment(ticket=recent, content=PHOTO)
    open_photo = factories.stored_attachment(ticket=still_open, content=PHOTO)
    assert RefundTicket.objects.get(pk=old.pk).status == TicketStatus.REFUNDED
    old_path = Path(old_photo.original.path)

    with (
        time_machine.travel(start + timedelta(days=29, hours=23), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert tasks.purge_expired_media() == 0  # not quite 30 days: nothing is old enough yet
    with (
        time_machine.travel(start + timedelta(days=31), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert tasks.purge_expired_media() == 1
    assert not Attachment.objects.filter(pk=old_photo.pk).exists()
    assert not old_path.exists()
    assert set(Attachment.objects.values_list("pk", flat=True)) == {recent_photo.pk, open_photo.pk}
    # The ticket and its money stay.
    old.refresh_from_db()
    assert (old.status, old.approved_amount_cents) == (TicketStatus.REFUNDED, 100)

    settings.REFUNDCHAT_MEDIA_RETENTION_DAYS = 0  # 0 keeps media for ever
    with time_machine.travel(start + timedelta(days=400), tick=False):
        assert tasks.purge_expired_media() == 0
    assert Attachment.objects.count() == 2


def test_the_retention_task_is_on_the_beat_schedule() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["purge-expired-media"]
    assert entry["task"] == "tickets.tasks.purge_expired_media"
