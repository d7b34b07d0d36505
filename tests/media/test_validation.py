"""Content is judged by its bytes: each refusal has its message, and leaves nothing behind."""

from __future__ import annotations

import pytest
from django.test import override_settings

from media import storage
from media.models import Attachment, Upload, UploadStatus
from tests import factories
from tests.media import samples
from tests.media.conftest import tus_client_for

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


def assert_refused_and_cleaned(response, *, status: int, code: str, message: str) -> None:
    assert response.status_code == status, response.content
    assert response["Tus-Resumable"] == "1.0.0"
    assert response.json() == {"code": code, "message": message}
    assert not Attachment.objects.exists()
    for upload in Upload.objects.all():
        assert upload.status == UploadStatus.REFUSED
        assert not storage.partial_path(upload.pk).exists()


@pytest.fixture
def send(tus, ticket, django_capture_on_commit_callbacks):
    def send(content: bytes, *, filename: str = "photo.jpg"):
        with django_capture_on_commit_callbacks(execute=True):
            return tus.upload(ticket=ticket, content=content, filename=filename)

    return send


def test_pixel_bomb_is_refused(send):
    assert_refused_and_cleaned(
        send(samples.pixel_bomb_png(), filename="cute.png"),
        status=422,
        code="too_many_pixels",
        message="This image has too many pixels (at most 100 megapixels). Send a smaller photo or a screenshot.",
    )


def test_pixel_bomb_far_over_the_limit_is_refused_by_pillow_itself(send):
    assert_refused_and_cleaned(
        send(samples.pixel_bomb_png(width=30_000, height=30_000)),
        status=422,
        code="too_many_pixels",
        message="This image has too many pixels (at most 100 megapixels). Send a smaller photo or a screenshot.",
    )


def test_svg_with_script_is_refused(send):
    assert_refused_and_cleaned(
        send(samples.SVG_WITH_SCRIPT, filename="receipt.svg"),
        status=415,
        code="markup",
        message="SVG and HTML files cannot be sent because they can contain scripts. Send a screenshot instead.",
    )


def test_html_named_jpg_is_refused(send):
    assert send(samples.HTML_PAGE, filename="photo.jpg").json()["code"] == "markup"


def test_executable_renamed_jpg_is_refused(send):
    assert_refused_and_cleaned(
        send(samples.elf_executable(), filename="photo.jpg"),
        status=415,
        code="executable",
        message=(
            "Programs and scripts cannot be sent. You can send photos (JPEG, PNG, WebP, HEIC, GIF), "
            "videos (MP4, MOV, WebM), audio (WebM, M4A, AAC, MP3, WAV, OGG) and PDF documents."
        ),
    )


@pytest.mark.parametrize(
    "content",
    [b"MZ\x90\x00" + b"\x00" * 200, b"#!/bin/sh\nrm -rf /\n", b"\xcf\xfa\xed\xfe" + b"\x00" * 200],
    ids=["windows", "script", "macos"],
)
def test_other_executables_are_refused(send, content):
    assert send(content).json()["code"] == "executable"


def test_polyglot_photo_with_an_archive_is_refused(send):
    assert_refused_and_cleaned(
        send(samples.jpeg_with_zip()),
        status=415,
        code="polyglot",
        message="This file has content of another type hidden inside it and cannot be sent.",
    )


def test_png_with_data_after_its_end_is_refused(send):
    content = samples.pillow_image("PNG") + b"<?php system($_GET['c']); ?>"
    assert send(content, filename="a.png").json()["code"] == "polyglot"


def test_pdf_with_javascript_is_refused(send):
    content = samples.pdf(extra=b"/OpenAction<</S/JavaScript/JS(app.alert(1))>>")
    assert send(content, filename="invoice.pdf").json()["code"] == "pdf_active_content"


def test_unknown_type_is_refused(send):
    assert_refused_and_cleaned(
        send(b"just some text, not evidence\n" * 10, filename="notes.jpg"),
        status=415,
        code="unsupported_type",
        message=(
            "This type of file cannot be sent. You can send photos (JPEG, PNG, WebP, HEIC, GIF), "
            "videos (MP4, MOV, WebM), audio (WebM, M4A, AAC, MP3, WAV, OGG) and PDF documents."
        ),
    )


def test_damaged_image_is_refused(send):
    content = samples.jpeg(width=200, height=200, noise=True)
    # A JPEG start and PNG chunks that do not add up: Pillow cannot read it.
    damaged = b"\x89PNG\r\n\x1a\n" + content[:200] + b"IEND"
    assert send(damaged).json()["code"] == "damaged"


def test_file_over_the_largest_limit_is_refused_at_creation(tus, ticket):
    response = tus.create(ticket=ticket, length=500 * MiB + 1, filename="long.mp4")
    assert response.status_code == 413
    assert response.json() == {"code": "too_large", "message": "This file is too large: files can be at most 500 MB."}
    assert not Upload.objects.exists()


def test_photo_over_its_kind_limit_is_refused_from_the_first_bytes(tus, ticket, django_capture_on_commit_callbacks):
    head = samples.jpeg(width=100, height=100, noise=True)  # a real JPEG start, declared as 30 MB
    location = tus.create(ticket=ticket, length=30 * MiB)["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        response = tus.patch(location, head, offset=0)
    assert_refused_and_cleaned(
        response, status=413, code="too_large", message="This photo is too large: photos can be at most 25 MB."
    )
    assert tus.head(location).status_code == 410


@override_settings(REFUNDCHAT_UPLOAD_KIND_LIMITS={"image": 25 * MiB, "video": 500 * MiB, "audio": 500, "pdf": 20 * MiB})
def test_voice_note_over_the_audio_limit_is_refused_once_its_tracks_are_known(send):
    # An MP4 may be a video (500 MB) or a voice note: only the complete file tells.
    response = send(samples.mp4(handler=b"soun") + b"", filename="voice.m4a")
    assert response.json()["code"] == "too_large"
    assert response.json()["message"] == "This recording is too large: audio files can be at most 500 B."


def test_refusal_speaks_the_requesters_language(alice, ticket):
    response = tus_client_for(alice, language="zh-hans").upload(ticket=ticket, content=samples.SVG_WITH_SCRIPT)
    assert response.status_code == 415
    assert response.json()["message"] == "不能发送 SVG 和 HTML 文件，因为它们可能包含脚本。请改为发送截图。"


@override_settings(REFUNDCHAT_UPLOAD_TICKET_MAX_FILES=2)
def test_ticket_file_count_limit(tus, ticket):
    assert tus.upload(ticket=ticket, content=samples.jpeg()).status_code == 204
    assert tus.create(ticket=ticket, length=100).status_code == 201  # a reserved slot counts
    response = tus.create(ticket=ticket, length=100)
    assert response.status_code == 422
    assert response.json() == {
        "code": "ticket_full",
        "message": "This ticket already holds 2 files, the most it can take.",
    }


@override_settings(REFUNDCHAT_UPLOAD_TICKET_MAX_BYTES=10_000)
def test_ticket_total_size_limit(tus, ticket):
    assert tus.create(ticket=ticket, length=6_000).status_code == 201
    response = tus.create(ticket=ticket, length=6_000)
    assert response.status_code == 413
    assert response.json()["code"] == "ticket_quota"


@pytest.mark.parametrize(
    ("make", "kind", "content_type"),
    [
        (lambda: samples.pillow_image("PNG"), "image", "image/png"),
        (lambda: samples.pillow_image("GIF"), "image", "image/gif"),
        (lambda: samples.pillow_image("WEBP"), "image", "image/webp"),
        (lambda: samples.mp4(), "video", "video/mp4"),
        (lambda: samples.mp4(brand=b"qt  "), "video", "video/quicktime"),
        (lambda: samples.mp4(handler=b"soun", brand=b"M4A "), "audio", "audio/mp4"),
        (lambda: samples.webm(track_type=1), "video", "video/webm"),
        (lambda: samples.webm(track_type=2), "audio", "audio/webm"),
        (lambda: samples.mp3(), "audio", "audio/mpeg"),
        (lambda: samples.wav(), "audio", "audio/wav"),
        (lambda: samples.ogg_opus(), "audio", "audio/ogg"),
        (lambda: samples.pdf(), "pdf", "application/pdf"),
    ],
    ids=["png", "gif", "webp", "mp4", "mov", "m4a", "webm-video", "webm-voice", "mp3", "wav", "ogg", "pdf"],
)
def test_allowed_kinds_are_kept_with_their_sniffed_type(send, make, kind, content_type):
    # The declared name and type say JPEG every time: only the bytes count.
    response = send(make(), filename="photo.jpg")
    assert response.status_code == 204, response.content
    attachment = Attachment.objects.get()
    assert (attachment.kind, attachment.content_type) == (kind, content_type)


def test_an_agent_sees_the_refusal_in_their_own_upload_only(ticket):
    """A refused upload cannot be resumed: a new file is needed."""
    from tickets import services as ticket_services

    agent = factories.agent(username="agent")
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    client = tus_client_for(agent)
    response = client.upload(ticket=ticket, content=samples.elf_executable())
    assert response.status_code == 415
    location = response.wsgi_request.build_absolute_uri()
    again = client.patch(location, b"\xff\xd8\xff", offset=0)
    assert again.status_code == 410
    assert again.json()["code"] == "refused"
