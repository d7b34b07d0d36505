"""Processing (issue #4): what the chat shows is derived from the kept original, live over the socket.

Inputs are made on the spot: Pillow for photos, ffmpeg's test sources for tiny videos and voice notes.
They go in through the real tus path, and the Celery task runs eagerly after commit.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Retry
from django.contrib import admin
from django.test import Client
from django.utils import translation
from PIL import ExifTags, Image

from media import processing, services, storage, tasks
from media.admin import AttachmentAdmin
from media.models import Attachment, AttachmentStatus
from messaging import realtime
from tests import factories
from tests.media import samples
from tests.media.conftest import TusClient
from tickets.roles import Role

pytestmark = pytest.mark.django_db

if shutil.which("ffmpeg") is None:
    # Never a silent skip: processing is part of the product, and .ci/run installs ffmpeg.
    pytest.fail("ffmpeg is not installed: apt-get install ffmpeg", pytrace=False)

Published = list[tuple[str, dict[str, Any]]]

# Stored sideways, as a phone held upright writes it: EXIF orientation 6 turns it a quarter clockwise.
STORED_SIZE = (1600, 1000)
SHOWN_SIZE = (1000, 1600)
RED, BLUE = (220, 20, 20), (20, 20, 220)


def ffmpeg(*arguments: str, output: Path) -> bytes:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *arguments, str(output)], check=True, timeout=60)
    return output.read_bytes()


def has_encoder(name: str) -> bool:
    listed = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, check=True, timeout=30)
    return f" {name} ".encode() in listed.stdout


TEST_PICTURE = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=1"]
TEST_TONE = ["-f", "lavfi", "-i", "sine=frequency=440:duration=1"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One-second clips, made once for the module (a few hundred milliseconds in all)."""
    folder = tmp_path_factory.mktemp("clips")
    made = {
        "h264": ffmpeg(
            *TEST_PICTURE, *TEST_TONE, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", output=folder / "h264.mp4",
        ),
        "voice": ffmpeg(
            "-f", "lavfi", "-i", "sine=frequency=300:duration=1.5", "-c:a", "libopus", output=folder / "voice.ogg"
        ),
    }  # fmt: skip
    if has_encoder("libx265"):
        made["not_web"] = ffmpeg(
            *TEST_PICTURE, "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=none",
            "-pix_fmt", "yuv420p", "-tag:v", "hvc1", output=folder / "hevc.mp4",
        )  # fmt: skip
    else:  # MPEG-4 part 2 in a QuickTime file: no browser plays it either
        made["not_web"] = ffmpeg(*TEST_PICTURE, "-c:v", "mpeg4", "-f", "mov", output=folder / "mpeg4.mov")
    return made


def jpeg_with_gps() -> bytes:
    """A photo with the buyer's position in its EXIF, stored sideways: red on the left, blue on the right."""
    image = Image.new("RGB", STORED_SIZE, BLUE)
    image.paste(RED, (0, 0, STORED_SIZE[0] // 2, STORED_SIZE[1]))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "Phone"
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (31.0, 13.0, 50.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (121.0, 28.0, 30.0),
    }
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


@pytest.fixture
def send(tus: TusClient, ticket: Any, django_capture_on_commit_callbacks: Any) -> Callable[..., Attachment]:
    """Upload through tus; the processing task runs (eagerly) once the upload's transaction commits."""

    def upload(content: bytes, *, filename: str) -> Attachment:
        with django_capture_on_commit_callbacks(execute=True):
            response = tus.upload(ticket=ticket, content=content, filename=filename)
        assert response.status_code == 204, response.content
        return Attachment.objects.get(pk=response["RefundChat-Attachment-Id"])

    return upload


def frames(published: Published) -> list[tuple[str, dict[str, Any]]]:
    return [(group, frame) for group, frame in published if frame["type"] == "attachment.updated"]


def urls(attachment: Attachment, *variants: str) -> dict[str, str | None]:
    every = ("original", "thumbnail_small", "thumbnail_large", "shareable", "poster", "playable")
    return {
        variant: f"/attachments/{attachment.pk}/{variant}" if variant in ("original", *variants) else None
        for variant in every
    }


def expected_frame(attachment: Attachment, *, status: str, **fields: Any) -> dict[str, Any]:
    described = {
        "id": attachment.pk,
        "ticket_id": attachment.ticket_id,
        "kind": attachment.kind,
        "status": status,
        "failure_reason": "",
        "width": None,
        "height": None,
        "duration_ms": None,
        "urls": urls(attachment),
    }
    return {"type": "attachment.updated", "attachment": {**described, **fields}}


def opened(field: Any) -> Image.Image:
    with field.open("rb") as stored:
        image = Image.open(io.BytesIO(stored.read()))
    image.load()
    return image


def probe(field: Any) -> dict[str, Any]:
    described = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", field.path],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return json.loads(described.stdout)


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- Photos ---------------------------------------------------------------------------------------------


def test_photo_gets_a_stripped_upright_copy_and_webp_thumbnails(send, ticket, published):
    content = jpeg_with_gps()
    assert Image.open(io.BytesIO(content)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the input does carry GPS

    attachment = send(content, filename="cup.jpg")

    assert attachment.status == AttachmentStatus.READY
    assert (attachment.width, attachment.height) == SHOWN_SIZE
    shareable = opened(attachment.shareable)
    assert shareable.format == "JPEG"
    assert shareable.size == SHOWN_SIZE
    assert len(shareable.getexif()) == 0
    assert not shareable.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert not {"exif", "xmp", "icc_profile", "comment"} & set(shareable.info)
    # Turned a quarter clockwise: what was on the left is now on top.
    assert _close(shareable.getpixel((500, 100)), RED)
    assert _close(shareable.getpixel((500, 1500)), BLUE)

    for field, size in ((attachment.thumbnail_large, (800, 1280)), (attachment.thumbnail_small, (200, 320))):
        thumbnail = opened(field)
        assert (thumbnail.format, thumbnail.size) == ("WEBP", size)
        assert not thumbnail.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert _close(thumbnail.getpixel((size[0] // 2, 5)), RED)
    assert (attachment.poster.name, attachment.playable.name) == ("", "")

    # The original is kept bit for bit, GPS and all, for the record.
    with attachment.original.open("rb") as original:
        assert hashlib.sha256(original.read()).hexdigest() == attachment.sha256 == hashlib.sha256(content).hexdigest()

    group = realtime.conversation_group(ticket.conversation.pk)
    assert frames(published) == [
        (group, expected_frame(attachment, status="processing", width=1600, height=1000)),
        (
            group,
            expected_frame(
                attachment,
                status="ready",
                width=1000,
                height=1600,
                urls=urls(attachment, "thumbnail_small", "thumbnail_large", "shareable"),
            ),
        ),
    ]


def _close(pixel: Any, colour: tuple[int, int, int]) -> bool:
    return all(abs(int(a) - b) < 40 for a, b in zip(pixel[:3], colour, strict=True))


def test_processing_twice_changes_nothing(send, ticket, published, django_capture_on_commit_callbacks):
    attachment = send(samples.jpeg(width=300, height=200), filename="a.jpg")
    derived_root = Path(storage.derived_storage().path(""))

    def snapshot() -> tuple[Any, ...]:
        row = Attachment.objects.get(pk=attachment.pk)
        files = sorted(
            (str(path.relative_to(derived_root)), path.read_bytes())
            for path in derived_root.rglob("*")
            if path.is_file() and path.is_relative_to(derived_root / "tickets" / str(ticket.pk))
        )
        fields = (row.status, row.thumbnail_small.name, row.thumbnail_large.name, row.shareable.name)
        return fields, (row.width, row.height), files

    before = snapshot()
    assert len(before[2]) == 3
    sent = len(published)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.process_attachment.delay(attachment.pk)  # a redelivered task: ready already, nothing to do
    assert snapshot() == before
    assert len(published) == sent

    # A worker that died after writing the files but before recording them: the redelivery writes the
    # same files under the same names, and leaves no scratch file behind.
    Attachment.objects.filter(pk=attachment.pk).update(status=AttachmentStatus.PROCESSING)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.process_attachment.delay(attachment.pk)
    assert snapshot() == before
    assert not any((derived_root / processing.WORK_DIR_NAME).iterdir())


# --- Video and audio ------------------------------------------------------------------------------------


def test_h264_video_gets_poster_duration_and_size_and_no_copy(send, clips, published):
    attachment = send(clips["h264"], filename="parcel.mp4")

    assert (attachment.kind, attachment.status) == ("video", AttachmentStatus.READY)
    assert (attachment.width, attachment.height) == (160, 120)
    assert 900 <= attachment.duration_ms <= 1100
    poster = opened(attachment.poster)
    assert (poster.format, poster.size) == ("WEBP", (160, 120))
    assert attachment.playable.name == ""  # H.264/AAC in MP4 plays everywhere as it is
    assert frames(published)[-1][1] == expected_frame(
        attachment,
        status="ready",
        width=160,
        height=120,
        duration_ms=attachment.duration_ms,
        urls=urls(attachment, "poster"),
    )


def test_video_no_browser_plays_gets_an_h264_copy(send, clips):
    attachment = send(clips["not_web"], filename="iphone.mov")

    assert attachment.status == AttachmentStatus.READY, attachment.failure_reason
    assert (attachment.width, attachment.height) == (160, 120)
    assert attachment.playable.name.endswith(".mp4")
    (stream,) = probe(attachment.playable)["streams"]
    assert (stream["codec_name"], stream["pix_fmt"], stream["width"], stream["height"]) == ("h264", "yuv420p", 160, 120)
    assert attachment.poster.name.endswith(".webp")


def test_voice_note_gets_duration_and_a_copy_safari_plays(send, clips):
    attachment = send(clips["voice"], filename="voice.ogg")

    assert (attachment.kind, attachment.status) == ("audio", AttachmentStatus.READY)
    assert 1400 <= attachment.duration_ms <= 1600
    (stream,) = probe(attachment.playable)["streams"]
    assert stream["codec_name"] == "aac"
    assert (attachment.width, attachment.height, attachment.poster.name) == (None, None, "")


def test_wav_plays_as_it_is(send):
    attachment = send(samples.wav(seconds=0.5), filename="note.wav")
    assert (attachment.status, attachment.duration_ms, attachment.playable.name) == (AttachmentStatus.READY, 500, "")


# --- Failure and retry ----------------------------------------------------------------------------------


def test_damaged_video_fails_with_a_reason_and_can_be_retried(
    alice, send, ticket, published, django_capture_on_commit_callbacks
):
    # Boxes that tile the file (so it is accepted as an MP4) around bytes that are no video at all.
    attachment = send(samples.mp4(), filename="broken.mp4")

    with translation.override(ticket.language):
        reason = processing.failure_message(code="damaged", kind="video")
    assert ticket.language == "zh-hans"
    assert reason != processing.failure_message(code="damaged", kind="video")  # translated
    assert (attachment.status, attachment.failure_reason) == (AttachmentStatus.FAILED, reason)
    assert attachment.original.storage.exists(attachment.original.name)  # the original is never lost

    with django_capture_on_commit_callbacks(execute=True):
        retried = processing.retry_processing(attachment_id=attachment.pk, user=alice)
    assert retried.status == AttachmentStatus.PROCESSING
    attachment.refresh_from_db()
    assert attachment.status == AttachmentStatus.FAILED  # the task ran again, on the same bytes

    group = realtime.conversation_group(ticket.conversation.pk)
    failed = expected_frame(attachment, status="failed", failure_reason=reason)
    assert frames(published) == [
        (group, expected_frame(attachment, status="processing")),
        (group, failed),
        (group, expected_frame(attachment, status="processing")),
        (group, failed),
    ]


def test_retry_is_for_whoever_may_see_the_ticket(alice, ticket, django_capture_on_commit_callbacks):
    attachment = factories.stored_attachment(ticket=ticket, content=samples.jpeg(), uploader=alice)
    Attachment.objects.filter(pk=attachment.pk).update(status=AttachmentStatus.FAILED, failure_reason="broken")
    url = f"/attachments/{attachment.pk}/retry"

    assert logged_in(factories.buyer(username="mallory")).post(url).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(alice).post(url)
    assert response.status_code == 202
    assert response.json()["status"] == "processing"
    attachment.refresh_from_db()
    assert attachment.status == AttachmentStatus.READY
    assert attachment.thumbnail_small.name.endswith(".webp")


def test_trouble_on_our_side_is_retried_then_reported(ticket, monkeypatch, django_capture_on_commit_callbacks):
    attachment = factories.stored_attachment(ticket=ticket, content=samples.jpeg())
    Attachment.objects.filter(pk=attachment.pk).update(status=AttachmentStatus.PROCESSING)
    calls: list[int] = []

    def disk_error(**kwargs: Any) -> processing.Derived:
        calls.append(1)
        raise OSError("No space left on device")

    monkeypatch.setattr(processing, "derive", disk_error)
    with pytest.raises(Retry):  # eager mode raises what a worker would schedule
        tasks.process_attachment.delay(attachment.pk)
    attachment.refresh_from_db()
    assert attachment.status == AttachmentStatus.PROCESSING

    # The last retry: the bubble must not stay "processing" for ever.
    with pytest.raises(OSError, match="No space left"), django_capture_on_commit_callbacks(execute=True):
        tasks.process_attachment.apply(args=[attachment.pk], retries=tasks.PROCESSING_MAX_RETRIES)
    assert len(calls) == 2
    attachment.refresh_from_db()
    assert attachment.status == AttachmentStatus.FAILED
    with translation.override(ticket.language):
        assert attachment.failure_reason == processing.failure_message(code="unavailable", kind="image")


# --- Download of derived files --------------------------------------------------------------------------


def test_variants_are_served_with_the_same_checks(alice, send, ticket, clips):
    photo = send(samples.jpeg(width=300, height=200), filename="a.jpg")
    video = send(clips["not_web"], filename="b.mov")
    client = logged_in(alice)

    thumbnail = client.get(f"/attachments/{photo.pk}/thumbnail_small")
    assert thumbnail.status_code == 200
    assert thumbnail["Content-Type"] == "image/webp"
    assert thumbnail["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in thumbnail["Content-Security-Policy"]
    assert thumbnail["Content-Disposition"] == f'inline; filename="{ticket.number}-{photo.pk}-thumbnail-small.webp"'
    with photo.thumbnail_small.open("rb") as stored:
        assert b"".join(thumbnail.streaming_content) == stored.read()

    playable = client.get(f"/attachments/{video.pk}/playable", headers={"Range": "bytes=0-99"})
    assert playable.status_code == 206
    assert playable["Content-Type"] == "video/mp4"
    assert playable["Content-Range"] == f"bytes 0-99/{video.playable.size}"
    assert len(b"".join(playable.streaming_content)) == 100

    assert client.get(f"/attachments/{photo.pk}/poster").status_code == 404  # a photo has no poster
    assert client.get(f"/attachments/{photo.pk}/secrets").status_code == 404
    assert logged_in(factories.staff(Role.AGENT)).get(f"/attachments/{video.pk}/poster").status_code == 200

    mallory = logged_in(factories.buyer(username="mallory"))
    for variant in ("thumbnail_small", "shareable", "original"):
        assert mallory.get(f"/attachments/{photo.pk}/{variant}").status_code == 404
    assert mallory.get(f"/attachments/{video.pk}/playable", headers={"Range": "bytes=0-1"}).status_code == 404

    # Staff in the admin get the derived files too, the shareable copy first among them to pass on.
    links = AttachmentAdmin(Attachment, admin.site).derived_links(photo)
    assert f'href="/attachments/{photo.pk}/shareable"' in links
    assert "/poster" not in links


def test_sweep_removes_scratch_left_by_a_dead_worker():
    scratch_root = Path(storage.derived_storage().path(processing.WORK_DIR_NAME))
    old, fresh = scratch_root / "old", scratch_root / "fresh"
    for folder in (old, fresh):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "poster.png").write_bytes(b"x")
    three_hours_ago = time.time() - 3 * 3600
    os.utime(old, (three_hours_ago, three_hours_ago))

    services.sweep_uploads()

    assert not old.exists()
    assert fresh.exists()
