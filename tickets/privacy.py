"""Privacy rights (issue #9): a buyer's export of all their data, erasure, and media retention.

- Export: `request_export` writes a DataExport row and queues `build_export` (Celery), which writes one
  zip (data.json + the buyer's own uploaded files) under MEDIA_ROOT/exports/. The link is signed, names the
  buyer and expires (REFUNDCHAT_EXPORT_LINK_TTL); `open_export` checks all three before serving.
- Erasure: `do_erase_buyer` anonymises the account, the orders' recipient and address, the buyer's messages
  and texts, removes payout accounts and deletes the tickets' attachments, keeping the financial records
  (orders' totals, tickets' amounts, payouts) without the personal fields. An AccessLogEntry records it.
- Retention: `purge_expired_media` deletes media of tickets closed more than
  REFUNDCHAT_MEDIA_RETENTION_DAYS ago, and expired export files (beat task tickets.tasks.purge_expired_media).
"""

from __future__ import annotations

import json
import uuid
import zipfile
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from media import services as media_services
from media.models import Attachment
from messaging.models import Message
from refundchat.celery import queue_after_commit
from refundchat.errors import Refused
from tickets import access_log
from tickets.models import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    AccessAction,
    DataExport,
    ExportStatus,
    Order,
    OutboxKind,
    OutboxMessage,
    OutboxStatus,
    PayoutMethod,
    RefundTicket,
    SatisfactionRating,
    TicketEvent,
)
from tickets.roles import can_use_console

EXPORTS_DIR_NAME = "exports"
EXPORT_SIGNING_SALT = "refundchat.privacy.export"
# What an erased message says instead; stored, so the same in every language.
ERASED_TEXT = "[已删除 erased]"


class PrivacyRefused(Refused):
    pass


# --- export ----------------------------------------------------------------------------------------


def exports_dir() -> Path:
    directory = Path(settings.MEDIA_ROOT) / EXPORTS_DIR_NAME
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def request_export(*, buyer: User) -> DataExport:
    """Start building the buyer's export (one at a time); the zip is made by a Celery task."""
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=buyer.pk).first()  # one request at a time per buyer
        running = DataExport.objects.filter(buyer=buyer, status=ExportStatus.PREPARING).first()
        if running is not None:
            return running
        export = DataExport.objects.create(buyer=buyer)
        queue_after_commit("tickets.tasks.build_data_export", export.pk)
    return export


def build_export(*, export_id: int, now: datetime | None = None) -> DataExport:
    """Write the zip of an export and mark it ready (a repeat of a finished export does nothing)."""
    export = DataExport.objects.select_related("buyer").get(pk=export_id)
    if export.status != ExportStatus.PREPARING:
        return export
    buyer = export.buyer
    attachments = list(Attachment.objects.filter(uploader=buyer).order_by("pk"))
    name = f"{uuid.uuid4().hex}.zip"
    path = exports_dir() / name
    try:
        _write_zip(path=path, buyer=buyer, attachments=attachments)
    except Exception:
        # The buyer may ask again; a half-written file is not left behind.
        path.unlink(missing_ok=True)
        DataExport.objects.filter(pk=export_id, status=ExportStatus.PREPARING).update(status=ExportStatus.FAILED)
        raise
    now = now or timezone.now()
    with transaction.atomic():
        locked = DataExport.objects.select_for_update().get(pk=export_id)
        if locked.status != ExportStatus.PREPARING:
            path.unlink(missing_ok=True)
            return locked
        locked.status = ExportStatus.READY
        locked.file_name = name
        locked.size = path.stat().st_size
        locked.ready_at = now
        locked.expires_at = now + settings.REFUNDCHAT_EXPORT_LINK_TTL
        locked.save(update_fields=["status", "file_name", "size", "ready_at", "expires_at"])
        access_log.record_access(actor=buyer, action=AccessAction.DATA_EXPORTED, target=f"export:{locked.pk}")
    return locked


def _write_zip(*, path: Path, buyer: User, attachments: list[Attachment]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(export_data(buyer=buyer), ensure_ascii=False, indent=2))
        for attachment in attachments:
            if attachment.original:
                # Streamed in chunks: a video can be large.
                with attachment.original.open("rb") as source, archive.open(_archive_name(attachment), "w") as out:
                    for chunk in source.chunks():
                        out.write(chunk)


def _archive_name(attachment: Attachment) -> str:
    # The id keeps names unique; only the final part of the name the buyer gave is used.
    return f"attachments/{attachment.pk}-{Path(attachment.filename or 'file').name}"


def export_data(*, buyer: User) -> dict[str, Any]:
    """Everything RefundChat holds about a buyer, as JSON-ready data. Payout accounts appear masked: the
    buyer knows them, and a file that may be mislaid should not hold them in clear."""
    orders = Order.objects.filter(buyer=buyer).prefetch_related("items").order_by("paid_at")
    tickets = (
        RefundTicket.objects.filter(buyer=buyer)
        .select_related("order", "conversation")
        .prefetch_related("events")
        .order_by("created_at")
    )
    ratings = {rating.ticket_id: rating for rating in SatisfactionRating.objects.filter(ticket__buyer=buyer)}
    messages = Message.objects.filter(conversation__ticket__buyer=buyer).select_related("conversation")
    by_ticket: dict[int, list[dict[str, Any]]] = {}
    for message in messages.order_by("conversation_id", "seq"):
        sender = "me" if message.sender_id == buyer.pk else "staff" if message.sender_id else message.kind
        by_ticket.setdefault(message.conversation.ticket_id, []).append(
            {
                "seq": message.seq,
                "kind": message.kind,
                "from": sender,
                "text": message.body,
                "data": message.data,
                "sent_at": message.created_at.isoformat(),
            }
        )
    return {
        "exported_at": timezone.now().isoformat(),
        "account": {
            "username": buyer.get_username(),
            "first_name": buyer.first_name,
            "last_name": buyer.last_name,
            "email": buyer.email,
            "date_joined": buyer.date_joined.isoformat(),
            "last_login": buyer.last_login.isoformat() if buyer.last_login else None,
        },
        "orders": [
            {
                "order_no": order.order_no,
                "paid_total_cents": order.paid_total_cents,
                "shipping_fee_cents": order.shipping_fee_cents,
                "paid_at": order.paid_at.isoformat(),
                "recipient_name": order.recipient_name,
                "shipping_address": order.shipping_address,
                "items": [
                    {"sku": i.sku, "title": i.title, "unit_price_cents": i.unit_price_cents, "quantity": i.quantity}
                    for i in order.items.all()
                ],
            }
            for order in orders
        ],
        "refunds": [
            {
                "number": ticket.number,
                "order_no": ticket.order.order_no,
                "kind": ticket.kind,
                "reason": ticket.reason,
                "description": ticket.description,
                "status": ticket.status,
                "requested_amount_cents": ticket.requested_amount_cents,
                "approved_amount_cents": ticket.approved_amount_cents,
                "refund_to": ticket.payout_method or "original",
                "payout_account": ticket.payout_account_masked,
                "return_carrier": ticket.return_carrier,
                "return_tracking_no": ticket.return_tracking_no,
                "created_at": ticket.created_at.isoformat(),
                "history": [
                    {
                        "kind": event.kind,
                        "to_status": event.to_status,
                        "reason": event.reason,
                        "at": event.created_at.isoformat(),
                    }
                    for event in ticket.events.all()
                    if event.visible_to_buyer
                ],
                "rating": (
                    {"score": ratings[ticket.pk].score, "comment": ratings[ticket.pk].comment}
                    if ticket.pk in ratings
                    else None
                ),
                "messages": by_ticket.get(ticket.pk, []),
            }
            for ticket in tickets
        ],
        "files": [
            {"name": _archive_name(a), "kind": a.kind, "size": a.size, "uploaded_at": a.created_at.isoformat()}
            for a in Attachment.objects.filter(uploader=buyer).order_by("pk")
        ],
    }


def export_link_token(*, export: DataExport) -> str:
    """A signed token naming the export and its buyer; `open_export` refuses it after the link's lifetime."""
    return signing.dumps({"export": export.pk, "buyer": export.buyer_id}, salt=EXPORT_SIGNING_SALT)


def open_export(*, token: str, user: User, now: datetime | None = None) -> Path:
    """The zip behind a download link, for the buyer it was made for, before it expires. Anything else:
    PrivacyRefused("export_not_found"), the same for a forged, expired or foreign link."""
    not_found = PrivacyRefused("export_not_found", _("This download link has expired or is not yours."))
    try:
        claims = signing.loads(token, salt=EXPORT_SIGNING_SALT, max_age=settings.REFUNDCHAT_EXPORT_LINK_TTL)
    except signing.BadSignature:
        raise not_found from None
    if not isinstance(claims, dict) or claims.get("buyer") != user.pk or not isinstance(claims.get("export"), int):
        raise not_found
    export = DataExport.objects.filter(pk=claims["export"], buyer=user, status=ExportStatus.READY).first()
    now = now or timezone.now()
    if export is None or export.expires_at is None or export.expires_at <= now:
        raise not_found
    path = exports_dir() / export.file_name
    if not path.is_file():
        raise not_found
    return path


def latest_export(*, buyer: User) -> DataExport | None:
    return DataExport.objects.filter(buyer=buyer).first()


# --- erasure ---------------------------------------------------------------------------------------


def check_erasure(*, buyer: User, password: str) -> None:
    """Refuse a wrong password, a staff account and a buyer with refunds still open (their payout needs
    the account); nothing is changed."""
    if not buyer.check_password(password):
        raise PrivacyRefused("wrong_password", _("The password is not correct."))
    if can_use_console(buyer) or buyer.is_staff:
        raise PrivacyRefused("staff_account", _("Staff accounts are closed by an administrator."))
    if RefundTicket.objects.filter(buyer=buyer, status__in=OPEN_STATUSES).exists():
        raise PrivacyRefused(
            "open_refunds", _("You have refunds still in progress: wait until they are finished, or cancel them.")
        )


def do_erase_buyer(*, buyer: User, password: str) -> None:
    """Anonymise a buyer's personal data, keeping the financial records without the personal fields."""
    check_erasure(buyer=buyer, password=password)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=buyer.pk)
        # Checked again under the lock: a refund opened meanwhile would keep the account.
        if RefundTicket.objects.filter(buyer=user, status__in=OPEN_STATUSES).exists():
            raise PrivacyRefused(
                "open_refunds",
                _("You have refunds still in progress: wait until they are finished, or cancel them."),
            )
        ticket_ids = list(RefundTicket.objects.filter(buyer=user).values_list("pk", flat=True))
        Order.objects.filter(buyer=user).update(recipient_name="", shipping_address="")
        RefundTicket.objects.filter(pk__in=ticket_ids).update(
            description="",
            payout_method=PayoutMethod.ORIGINAL,
            payout_account_encrypted="",
            payout_account_masked="",
        )
        Message.objects.filter(conversation__ticket_id__in=ticket_ids, sender=user).exclude(body="").update(
            body=ERASED_TEXT
        )
        TicketEvent.objects.filter(ticket_id__in=ticket_ids, actor=user).exclude(reason="").update(reason="")
        SatisfactionRating.objects.filter(ticket_id__in=ticket_ids).exclude(comment="").update(comment="")
        # Emails to the old address: the address goes from queued and sent rows alike; pending ones are dropped.
        emails = OutboxMessage.objects.filter(ticket_id__in=ticket_ids, kind=OutboxKind.EMAIL)
        for message in emails:
            message.payload = {**message.payload, "to": []}
            if message.status == OutboxStatus.PENDING:
                message.status = OutboxStatus.FAILED
                message.last_error = "recipient erased"
            message.save(update_fields=["payload", "status", "last_error"])
        media_services.delete_ticket_media(ticket_ids=ticket_ids)
        _delete_exports(DataExport.objects.filter(buyer=user))
        erased_name = f"erased-{user.pk}"
        user.username = erased_name
        user.first_name = user.last_name = user.email = ""
        user.is_active = False
        user.set_unusable_password()
        user.save(update_fields=["username", "first_name", "last_name", "email", "is_active", "password"])
        access_log.record_access(actor=user, action=AccessAction.DATA_ERASED, target=f"user:{user.pk}")


def _delete_exports(exports: Any) -> None:
    names = [export.file_name for export in exports if export.file_name]
    exports.delete()
    transaction.on_commit(partial(_unlink_exports, names=names))


def _unlink_exports(*, names: list[str]) -> None:
    for name in names:
        (exports_dir() / name).unlink(missing_ok=True)


# --- retention -------------------------------------------------------------------------------------


def purge_expired_media(*, now: datetime | None = None) -> int:
    """Delete the media of tickets closed more than REFUNDCHAT_MEDIA_RETENTION_DAYS ago (0: keep all), and
    export files past their link's lifetime. Returns the number of attachments deleted."""
    now = now or timezone.now()
    with transaction.atomic():
        _delete_exports(DataExport.objects.filter(Q(expires_at__lte=now) | Q(status=ExportStatus.FAILED)))
    days = settings.REFUNDCHAT_MEDIA_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = now - timedelta(days=days)
    expired = list(
        RefundTicket.objects.filter(status__in=FINAL_STATUSES, resolved_at__lt=cutoff, attachments__isnull=False)
        .values_list("pk", flat=True)
        .distinct()
    )
    deleted = 0
    for start in range(0, len(expired), 100):
        with transaction.atomic():
            deleted += media_services.delete_ticket_media(ticket_ids=expired[start : start + 100])
    return deleted
