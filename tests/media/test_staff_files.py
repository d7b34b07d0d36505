"""Files staff post through a form (media/staff_files.py): the chat upload's content checks, then kept as evidence."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from media import staff_files, storage
from media.errors import UploadError
from media.models import Attachment, AttachmentKind
from tests import factories
from tests.media import samples
from tickets.roles import Role

pytestmark = pytest.mark.django_db


def posted(name: str, content: bytes) -> SimpleUploadedFile:
    # The declared type is a lie on purpose: only the bytes count.
    return SimpleUploadedFile(name, content, content_type="image/jpeg")


def scratch_files() -> list[Path]:
    return sorted((Path(settings.MEDIA_ROOT) / storage.PARTIAL_DIR_NAME).glob("*.part"))


def test_a_photo_is_checked_then_stored_bit_for_bit(django_capture_on_commit_callbacks):
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=factories.buyer(), items=[(7900, 1)]))
    warehouse = factories.staff(Role.WAREHOUSE)
    content = samples.pillow_image("WEBP")
    checked = staff_files.check_file(fileobj=posted("../../etc/passwd.webp", content))
    assert checked.path.exists()
    assert (checked.verdict.sniffed.content_type, checked.size) == ("image/webp", len(content))
    assert checked.filename == "passwd.webp"  # never a path
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        attachment = staff_files.store_file(ticket=ticket, uploader=warehouse, checked=checked)
    attachment.refresh_from_db()
    assert not checked.path.exists()  # moved, not copied
    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    assert str(attachment.original.name).startswith(f"tickets/{ticket.pk}/")
    assert str(attachment.original.name).endswith(".webp")
    with attachment.original.open("rb") as original:
        assert original.read() == content
    assert attachment.status == "ready"


@pytest.mark.parametrize(
    ("content", "kinds", "code"),
    [
        (samples.SVG_WITH_SCRIPT, frozenset({AttachmentKind.IMAGE}), "markup"),
        (samples.HTML_PAGE, frozenset({AttachmentKind.IMAGE}), "markup"),
        (samples.pdf(), frozenset({AttachmentKind.IMAGE}), "wrong_kind"),
        (samples.wav(), frozenset({AttachmentKind.IMAGE}), "wrong_kind"),
        (samples.pixel_bomb_png(), frozenset({AttachmentKind.IMAGE}), "too_many_pixels"),
        (b"just text", frozenset({AttachmentKind.IMAGE}), "unsupported_type"),
    ],
)
def test_refusals_leave_no_scratch_file(content, kinds, code):
    before = scratch_files()
    with pytest.raises(UploadError) as refused:
        staff_files.check_file(fileobj=posted("x.jpg", content), kinds=kinds)
    assert refused.value.code == code
    assert scratch_files() == before


def test_other_kinds_pass_when_the_caller_allows_them():
    checked = staff_files.check_file(fileobj=posted("x.pdf", samples.pdf()), kinds=frozenset({AttachmentKind.PDF}))
    assert checked.verdict.sniffed.kind == AttachmentKind.PDF
    staff_files.discard([checked])
    assert not checked.path.exists()


def test_storing_needs_a_ticket_the_uploader_may_see():
    ticket = factories.open_ticket(order=factories.order_with_items(buyer=factories.buyer(), items=[(7900, 1)]))
    checked = staff_files.check_file(fileobj=posted("a.jpg", samples.jpeg()))
    # Another buyer: the ticket does not exist for them, and nothing is moved.
    with pytest.raises(UploadError) as refused, transaction.atomic():
        staff_files.store_file(ticket=ticket, uploader=factories.buyer(), checked=checked)
    assert refused.value.code == "ticket_not_found"
    assert checked.path.exists()
    assert checked.stored_name is None
    staff_files.discard([checked])
    assert not Attachment.objects.exists()
