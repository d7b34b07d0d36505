"""The warehouse's photos of a returned item: checked like chat uploads, kept with the receipt, or nothing kept."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings

from media import storage
from media.models import Attachment, AttachmentStatus
from tests import factories
from tests.media import samples
from tickets import workflow
from tickets.models import RefundTicket, TicketEvent, TicketStatus
from tickets.roles import Role
from tickets.workflow import TransitionInput

pytestmark = pytest.mark.django_db


@pytest.fixture
def ticket() -> RefundTicket:
    """A return on its way to the warehouse."""
    buyer = factories.buyer(username="alice")
    order = factories.order_with_items(buyer=buyer, items=[(12900, 1)])
    ticket = factories.open_ticket(order=order, kind="return_and_refund")
    workflow.do_transition(
        ticket_id=ticket.pk, name="require_return", user=factories.agent(), given=TransitionInput(amount_cents=12900)
    )
    workflow.do_transition(
        ticket_id=ticket.pk,
        name="ship_return",
        user=buyer,
        given=TransitionInput(carrier="SF", tracking_no="SF1234567890123"),
    )
    return ticket


@pytest.fixture
def warehouse() -> Any:
    return factories.staff(Role.WAREHOUSE, username="warehouse")


def upload(name: str, content: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


def stored_files() -> list[Path]:
    """Every file under the evidence storage and the scratch folder."""
    roots = [
        Path(settings.MEDIA_ROOT) / storage.EVIDENCE_DIR_NAME,
        Path(settings.MEDIA_ROOT) / storage.PARTIAL_DIR_NAME,
    ]
    return sorted(path for root in roots if root.exists() for path in root.rglob("*") if path.is_file())


def receive(ticket: RefundTicket, user: Any, *photos: SimpleUploadedFile, condition: str = "damaged") -> TicketEvent:
    return workflow.do_transition_with_photos(
        ticket_id=ticket.pk,
        name="receive_return",
        user=user,
        given=TransitionInput(condition=condition, amount_cents=9900, reason=""),
        photos=list(photos),
    )


def test_photos_are_kept_bit_for_bit_processed_and_linked_from_the_receipt(
    ticket, warehouse, django_capture_on_commit_callbacks
):
    photo, screenshot = samples.jpeg(width=80, height=60, noise=True), samples.pillow_image("PNG")
    with django_capture_on_commit_callbacks(execute=True):
        event = receive(
            ticket, warehouse, upload("IMG_0001.jpg", photo), upload("scratch.png", screenshot, "image/png")
        )

    ticket.refresh_from_db()
    assert (ticket.status, ticket.return_condition, ticket.approved_amount_cents) == (
        "return_received",
        "damaged",
        9900,
    )
    attachments = list(Attachment.objects.filter(ticket=ticket).order_by("id"))
    assert event.data["photos"] == [a.pk for a in attachments]
    assert (event.to_status, event.actor) == (TicketStatus.RETURN_RECEIVED, warehouse)
    for attachment, content, content_type in zip(
        attachments, (photo, screenshot), ("image/jpeg", "image/png"), strict=True
    ):
        assert attachment.uploader == warehouse
        assert (attachment.upload, attachment.message) == (None, None)
        assert (attachment.kind, attachment.content_type, attachment.size) == ("image", content_type, len(content))
        assert attachment.sha256 == hashlib.sha256(content).hexdigest()
        with attachment.original.open("rb") as original:
            assert original.read() == content
        # Processed as a chat upload is (queued after commit; eager in the tests).
        assert attachment.status == AttachmentStatus.READY
        assert attachment.thumbnail_small
    assert [a.filename for a in attachments] == ["IMG_0001.jpg", "scratch.png"]
    assert (attachments[0].width, attachments[0].height) == (80, 60)


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("receipt.pdf", samples.pdf(), "wrong_kind"),
        ("program.jpg", samples.elf_executable(), "executable"),
        ("drawing.svg", samples.SVG_WITH_SCRIPT, "markup"),
        ("empty.jpg", b"", "empty"),
        ("glued.jpg", samples.jpeg_with_zip(), "polyglot"),
    ],
)
def test_a_refused_file_keeps_nothing_and_the_receipt_is_not_taken(ticket, warehouse, name, content, code):
    before = stored_files()
    events = TicketEvent.objects.filter(ticket=ticket).count()
    with pytest.raises(workflow.Refused) as refused:
        # A good photo first: it is checked, then dropped with the rest.
        receive(ticket, warehouse, upload("good.jpg", samples.jpeg()), upload(name, content))
    assert refused.value.code == code
    assert refused.value.message
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RETURN_IN_TRANSIT
    assert ticket.return_condition == ""
    assert TicketEvent.objects.filter(ticket=ticket).count() == events
    assert not Attachment.objects.filter(ticket=ticket).exists()
    assert stored_files() == before


def test_an_oversized_photo_is_refused_with_the_photo_limit(ticket, warehouse):
    limits = {**settings.REFUNDCHAT_UPLOAD_KIND_LIMITS, "image": 2048}
    before = stored_files()
    with override_settings(REFUNDCHAT_UPLOAD_KIND_LIMITS=limits), pytest.raises(workflow.Refused) as refused:
        receive(ticket, warehouse, upload("big.jpg", samples.jpeg(width=400, height=300, noise=True)))
    assert refused.value.code == "too_large"
    assert "2 KB" in refused.value.message
    assert not Attachment.objects.filter(ticket=ticket).exists()
    assert stored_files() == before
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RETURN_IN_TRANSIT


def test_a_refused_transition_keeps_no_photo(ticket, warehouse, django_capture_on_commit_callbacks):
    before = stored_files()
    # The buyer may not confirm the receipt; a moved original must not stay behind either.
    with pytest.raises(workflow.TransitionRefused) as refused:
        receive(ticket, ticket.buyer, upload("good.jpg", samples.jpeg()))
    assert refused.value.code == "not_permitted"
    # Nor may the warehouse record a condition the workflow does not know.
    with pytest.raises(workflow.TransitionRefused) as refused:
        receive(ticket, warehouse, upload("good.jpg", samples.jpeg()), condition="soggy")
    assert refused.value.code == "condition_required"
    assert not Attachment.objects.filter(ticket=ticket).exists()
    assert stored_files() == before


def test_the_ticket_file_quota_applies(ticket, warehouse):
    with override_settings(REFUNDCHAT_UPLOAD_TICKET_MAX_FILES=1), pytest.raises(workflow.Refused) as refused:
        receive(ticket, warehouse, upload("a.jpg", samples.jpeg()), upload("b.jpg", samples.jpeg(width=20)))
    assert refused.value.code == "ticket_full"
    assert not Attachment.objects.filter(ticket=ticket).exists()


# --- through the console form ------------------------------------------------------------------------


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_warehouse_form_uploads_photos_and_staff_and_buyer_see_them_in_the_timeline(
    ticket, warehouse, django_capture_on_commit_callbacks
):
    console = client_for(warehouse)
    page = console.get(f"/console/tickets/{ticket.pk}/").content.decode()
    # The receipt form posts files.
    assert 'enctype="multipart/form-data"' in page
    photo_input = re.search(r'<input[^>]*name="receive_return-photos"[^>]*>', page)
    assert photo_input is not None
    assert "multiple" in photo_input.group(0)
    assert 'accept="image/*"' in photo_input.group(0)

    photo = samples.jpeg(width=64, height=48)
    with django_capture_on_commit_callbacks(execute=True):
        response = console.post(
            f"/console/tickets/{ticket.pk}/actions/receive_return/",
            {"receive_return-condition": "used", "receive_return-photos": [upload("box.jpg", photo)]},
        )
    assert response.status_code == 302
    attachment = Attachment.objects.get(ticket=ticket)
    event = TicketEvent.objects.get(ticket=ticket, to_status=TicketStatus.RETURN_RECEIVED)
    assert event.data["photos"] == [attachment.pk]

    thumbnail = f"/attachments/{attachment.pk}/thumbnail_small"
    original = f"/attachments/{attachment.pk}/original"
    staff_page = console.get(f"/console/tickets/{ticket.pk}/").content.decode()
    assert thumbnail in staff_page
    assert original in staff_page

    buyer = client_for(ticket.buyer)
    buyer_page = buyer.get(f"/refunds/{ticket.pk}/").content.decode()
    assert 'data-testid="timeline-photo"' in buyer_page
    assert thumbnail in buyer_page
    # The buyer may open it (it justifies the refund); another buyer may not know it exists.
    served = buyer.get(original)
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == photo
    assert client_for(factories.buyer()).get(original).status_code == 404


def test_a_refused_photo_through_the_form_shows_the_reason_and_changes_nothing(ticket, warehouse):
    console = client_for(warehouse)
    response = console.post(
        f"/console/tickets/{ticket.pk}/actions/receive_return/",
        {
            "receive_return-condition": "intact",
            "receive_return-photos": [upload("logo.svg", samples.SVG_WITH_SCRIPT, "image/svg+xml")],
        },
        follow=True,
        headers={"Accept-Language": "zh-hans"},
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any("SVG" in m and "脚本" in m for m in shown), shown
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RETURN_IN_TRANSIT
    assert not Attachment.objects.filter(ticket=ticket).exists()


def test_the_receipt_without_photos_still_works(ticket, warehouse):
    response = client_for(warehouse).post(
        f"/console/tickets/{ticket.pk}/actions/receive_return/", {"receive_return-condition": "intact"}
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.RETURN_RECEIVED
    event = TicketEvent.objects.get(ticket=ticket, to_status=TicketStatus.RETURN_RECEIVED)
    assert "photos" not in event.data
