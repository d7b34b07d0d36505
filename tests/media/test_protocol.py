"""The tus 1.0.0 endpoint through Django's full request stack: headers, offsets, checksums, termination,
expiry, CSRF and who may touch which upload."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from media import services, storage
from media.models import Attachment, AttachmentStatus, Upload, UploadStatus
from tests import factories
from tests.media import samples
from tests.media.conftest import OFFSET_STREAM, TUS, metadata_header, tus_client_for

pytestmark = pytest.mark.django_db


def sha256_header(data: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_options_advertises_version_extensions_and_limits(client):
    response = client.options("/api/v1/uploads/")
    assert response.status_code == 204
    assert response["Tus-Version"] == "1.0.0"
    assert response["Tus-Resumable"] == "1.0.0"
    assert set(response["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    }
    assert response["Tus-Max-Size"] == str(500 * 1024 * 1024)
    assert "sha256" in response["Tus-Checksum-Algorithm"].split(",")


def test_create_head_patch_in_chunks_completes_an_attachment(tus, ticket, django_capture_on_commit_callbacks):
    content = samples.jpeg(width=300, height=200, noise=True)
    created = tus.create(ticket=ticket, length=len(content), filename="../../etc/破损的杯子.jpg")
    assert created.status_code == 201
    location = created["Location"]
    assert location.startswith("http://testserver/api/v1/uploads/")
    assert "Upload-Expires" in created

    head = tus.head(location)
    assert head.status_code == 200
    assert (head["Upload-Offset"], head["Upload-Length"]) == ("0", str(len(content)))
    assert head["Cache-Control"] == "no-store"
    assert "filename" in head["Upload-Metadata"]

    half = len(content) // 2
    first = tus.patch(location, content[:half], offset=0, **{"Upload-Checksum": sha256_header(content[:half])})
    assert first.status_code == 204
    assert first["Upload-Offset"] == str(half)
    assert "Upload-Expires" in first
    with django_capture_on_commit_callbacks(execute=True):
        last = tus.patch(location, content[half:], offset=half)
    assert last.status_code == 204
    assert last["Upload-Offset"] == str(len(content))

    attachment = Attachment.objects.get()
    assert last["RefundChat-Attachment-Id"] == str(attachment.pk)
    assert (attachment.kind, attachment.content_type, attachment.size) == ("image", "image/jpeg", len(content))
    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    assert (attachment.width, attachment.height) == (300, 200)
    assert attachment.status == AttachmentStatus.READY  # the processing task ran after commit
    # Stored bit-for-bit under a name the server made up; the buyer's name is for display only.
    assert attachment.original.name.startswith(f"tickets/{ticket.pk}/")
    assert "etc" not in attachment.original.name
    assert attachment.original.name.endswith(".jpg")
    assert attachment.filename == "破损的杯子.jpg"
    with attachment.original.open("rb") as stored:
        assert stored.read() == content
    upload = Upload.objects.get()
    assert (upload.status, upload.sha256) == (UploadStatus.COMPLETE, attachment.sha256)
    assert not storage.partial_path(upload.pk).exists()


def test_creation_with_upload_takes_the_first_bytes_in_the_post(tus, ticket):
    content = samples.jpeg(width=200, height=200, noise=True)
    created = tus.create(ticket=ticket, length=len(content), body=content[:1000])
    assert created.status_code == 201
    assert created["Upload-Offset"] == "1000"
    assert tus.head(created["Location"])["Upload-Offset"] == "1000"


def test_offset_mismatch_is_409_and_changes_nothing(tus, ticket):
    content = samples.jpeg(width=100, height=100, noise=True)
    location = tus.create(ticket=ticket, length=len(content))["Location"]
    assert tus.patch(location, content[:500], offset=0).status_code == 204

    for wrong in (0, 400, 600):
        response = tus.patch(location, content[wrong : wrong + 100], offset=wrong)
        assert response.status_code == 409
        assert response.json()["code"] == "offset_mismatch"
        assert response["Upload-Offset"] == "500"
    assert Upload.objects.get().offset == 500
    assert storage.partial_path(Upload.objects.get().pk).stat().st_size == 500


def test_wrong_checksum_is_460_and_the_chunk_is_not_kept(tus, ticket):
    content = samples.jpeg(width=100, height=100, noise=True)
    location = tus.create(ticket=ticket, length=len(content))["Location"]
    assert tus.patch(location, content[:500], offset=0).status_code == 204

    chunk = content[500:1500]
    response = tus.patch(location, chunk, offset=500, **{"Upload-Checksum": sha256_header(b"something else")})
    assert response.status_code == 460
    assert response.json()["code"] == "checksum_mismatch"
    assert tus.head(location)["Upload-Offset"] == "500"
    assert storage.partial_path(Upload.objects.get().pk).read_bytes() == content[:500]
    # The same chunk with its right checksum goes through.
    assert tus.patch(location, chunk, offset=500, **{"Upload-Checksum": sha256_header(chunk)}).status_code == 204


def test_unknown_checksum_algorithm_is_400(tus, ticket):
    location = tus.create(ticket=ticket, length=100)["Location"]
    response = tus.patch(
        location, b"x" * 10, offset=0, **{"Upload-Checksum": "md5 " + base64.b64encode(b"0" * 16).decode()}
    )
    assert response.status_code == 400
    assert tus.head(location)["Upload-Offset"] == "0"


def test_sha1_checksum_the_spec_requires_is_accepted(tus, ticket):
    content = samples.jpeg()
    location = tus.create(ticket=ticket, length=len(content))["Location"]
    checksum = "sha1 " + base64.b64encode(hashlib.sha1(content[:100]).digest()).decode()
    assert tus.patch(location, content[:100], offset=0, **{"Upload-Checksum": checksum}).status_code == 204


def test_more_bytes_than_declared_are_refused(tus, ticket):
    location = tus.create(ticket=ticket, length=100)["Location"]
    response = tus.patch(location, b"\xff\xd8\xff" + b"x" * 200, offset=0)
    assert response.status_code == 400
    assert response.json()["code"] == "beyond_length"
    assert Upload.objects.get().offset == 0


def test_patch_needs_the_offset_content_type_and_the_protocol_version(tus, ticket):
    location = tus.create(ticket=ticket, length=100)["Location"]
    wrong_type = tus.client.generic(
        "PATCH", location, data=b"x", content_type="application/json", headers={**TUS, "Upload-Offset": "0"}
    )
    assert wrong_type.status_code == 415
    no_version = tus.client.generic(
        "PATCH", location, data=b"x", content_type=OFFSET_STREAM, headers={"Upload-Offset": "0"}
    )
    assert no_version.status_code == 412
    assert no_version["Tus-Version"] == "1.0.0"
    assert Upload.objects.get().offset == 0


def test_method_override_lets_a_post_patch_and_delete(tus, ticket, django_capture_on_commit_callbacks):
    content = samples.jpeg()
    location = tus.create(ticket=ticket, length=len(content))["Location"]
    patched = tus.client.post(
        location,
        data=content[:100],
        content_type=OFFSET_STREAM,
        headers={**TUS, "Upload-Offset": "0", "X-HTTP-Method-Override": "PATCH"},
    )
    assert patched.status_code == 204
    assert patched["Upload-Offset"] == "100"
    with django_capture_on_commit_callbacks(execute=True):
        deleted = tus.client.post(location, headers={**TUS, "X-HTTP-Method-Override": "DELETE"})
    assert deleted.status_code == 204
    assert not Upload.objects.exists()


def test_termination_deletes_the_upload_and_its_partial_file(tus, ticket, django_capture_on_commit_callbacks):
    content = samples.jpeg(width=100, height=100, noise=True)
    location = tus.create(ticket=ticket, length=len(content))["Location"]
    tus.patch(location, content[:1000], offset=0)
    upload = Upload.objects.get()
    partial = storage.partial_path(upload.pk)
    assert partial.stat().st_size == 1000

    with django_capture_on_commit_callbacks(execute=True):
        assert tus.delete(location).status_code == 204
    assert not partial.exists()
    assert not Upload.objects.exists()
    assert tus.head(location).status_code == 404
    assert tus.patch(location, content[1000:1100], offset=1000).status_code == 404


def test_a_received_file_cannot_be_withdrawn_by_termination(tus, ticket):
    content = samples.jpeg()
    response = tus.upload(ticket=ticket, content=content)
    assert response.status_code == 204
    location = response.wsgi_request.build_absolute_uri()
    refused = tus.delete(location)
    assert refused.status_code == 403
    assert Attachment.objects.count() == 1


def test_expired_upload_is_gone_and_the_sweep_removes_it(tus, ticket, django_capture_on_commit_callbacks):
    content = samples.jpeg(width=100, height=100, noise=True)
    location = tus.create(ticket=ticket, length=len(content))["Location"]
    tus.patch(location, content[:1000], offset=0)
    upload = Upload.objects.get()
    Upload.objects.filter(pk=upload.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    refused = tus.patch(location, content[1000:2000], offset=1000)
    assert refused.status_code == 410
    assert refused.json()["code"] == "expired"
    assert tus.head(location).status_code == 410
    assert storage.partial_path(upload.pk).stat().st_size == 1000

    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep_uploads() == 1
    assert not Upload.objects.exists()
    assert not storage.partial_path(upload.pk).exists()
    assert tus.head(location).status_code == 404


def test_sweep_keeps_live_uploads_and_removes_orphan_partial_files(ticket, django_capture_on_commit_callbacks):
    live = factories.UploadFactory(ticket=ticket)
    storage.partial_path(live.pk).write_bytes(b"x" * 10)
    orphan = storage.partial_path(uuid.uuid4())
    orphan.write_bytes(b"left by a crash")
    with django_capture_on_commit_callbacks(execute=True):
        assert services.sweep_uploads(now=timezone.now() + timedelta(hours=2)) == 0
    assert storage.partial_path(live.pk).exists()
    assert not orphan.exists()


def test_sweep_task_is_scheduled_by_beat():
    from django.conf import settings

    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "media.tasks.sweep_uploads" in entries


def test_a_second_writer_is_turned_away_while_the_first_holds_the_upload(tus, ticket):
    location = tus.create(ticket=ticket, length=1000)["Location"]
    upload = Upload.objects.get()
    Upload.objects.filter(pk=upload.pk).update(
        lease_token=uuid.uuid4(), lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    busy = tus.patch(location, b"\xff\xd8\xff" + b"x" * 97, offset=0)
    assert busy.status_code == 423
    assert busy.json()["code"] == "busy"
    # A lease whose writer died runs out.
    Upload.objects.filter(pk=upload.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert tus.patch(location, b"\xff\xd8\xff" + b"x" * 97, offset=0).status_code == 204


def test_bytes_of_a_dead_writer_past_the_offset_are_cut_off(tus, ticket):
    content = samples.jpeg(width=100, height=100, noise=True)
    location = tus.create(ticket=ticket, length=len(content))["Location"]
    tus.patch(location, content[:500], offset=0)
    with storage.partial_path(Upload.objects.get().pk).open("ab") as partial:
        partial.write(b"garbage that was never acknowledged")
    assert tus.patch(location, content[500:], offset=500).status_code == 204
    with Attachment.objects.get().original.open("rb") as stored:
        assert stored.read() == content


# --- Who may upload --------------------------------------------------------------------------------


def test_another_buyers_ticket_is_not_found(ticket):
    mallory = factories.buyer(username="mallory")
    response = tus_client_for(mallory).create(ticket=ticket, length=100)
    assert response.status_code == 404
    assert response.json() == {"code": "ticket_not_found", "message": "This ticket does not exist."}
    assert not Upload.objects.exists()


def test_unknown_ticket_is_not_found(tus):
    class Missing:
        pk = 999_999

    assert tus.create(ticket=Missing(), length=100).status_code == 404


def test_staff_who_do_not_handle_the_ticket_may_not_upload(ticket):
    onlooker = factories.agent(username="onlooker")
    response = tus_client_for(onlooker).create(ticket=ticket, length=100)
    assert response.status_code == 403
    assert response.json()["code"] == "not_allowed"


def test_the_assigned_agent_may_upload(ticket):
    from tickets import services as ticket_services

    agent = factories.agent(username="agent")
    ticket_services.claim_ticket(ticket_id=ticket.pk, agent=agent)
    response = tus_client_for(agent).upload(ticket=ticket, content=samples.jpeg())
    assert response.status_code == 204
    assert Attachment.objects.get().uploader == agent


def test_someone_elses_upload_is_hidden_or_forbidden(tus, ticket):
    location = tus.create(ticket=ticket, length=100)["Location"]
    mallory = tus_client_for(factories.buyer(username="mallory"))
    assert mallory.head(location).status_code == 404
    assert mallory.patch(location, b"\xff\xd8\xff", offset=0).status_code == 404
    assert mallory.delete(location).status_code == 404
    # Console staff may see the ticket, but not write into the buyer's upload.
    onlooker = tus_client_for(factories.agent(username="onlooker"))
    assert onlooker.head(location).status_code == 403
    assert Upload.objects.get().offset == 0


def test_anonymous_requests_are_refused():
    client = Client()
    response = client.head(f"/api/v1/uploads/{uuid.uuid4()}", headers=TUS)
    assert response.status_code == 403
    response = client.post("/api/v1/uploads/", headers={**TUS, "Upload-Length": "10"})
    assert response.status_code == 403


def test_csrf_token_is_required_in_the_header(alice, ticket):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    headers = {
        **TUS,
        "Upload-Length": "100",
        "Upload-Metadata": metadata_header(ticket=str(ticket.pk), filename="a.jpg"),
    }
    assert client.post("/api/v1/uploads/", headers=headers).status_code == 403
    assert not Upload.objects.exists()

    token = "k" * 32  # the CSRF cookie a page of ours would have set
    client.cookies["csrftoken"] = token
    created = client.post("/api/v1/uploads/", headers={**headers, "X-CSRFToken": token})
    assert created.status_code == 201
    # A GET cannot be turned into a PATCH to dodge the check.
    dodged = client.get(created["Location"], headers={**TUS, "X-HTTP-Method-Override": "PATCH"})
    assert dodged.status_code == 405


def test_the_same_upload_works_under_asgi_as_daphne_serves_it(alice, ticket):
    """Under ASGI the body reaches the view as a spooled file; the view reads it in the same chunks."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    content = samples.jpeg(width=120, height=120, noise=True)

    async def upload() -> tuple[int, int, str]:
        client = AsyncClient()
        await client.aforce_login(alice)
        headers = {
            **TUS,
            "Upload-Length": str(len(content)),
            "Upload-Metadata": metadata_header(ticket=str(ticket.pk), filename="a.jpg"),
        }
        created: Any = await client.post("/api/v1/uploads/", headers=headers)
        patched: Any = await client.generic(
            "PATCH",
            created["Location"],
            data=content,
            content_type=OFFSET_STREAM,
            headers={**TUS, "Upload-Offset": "0", "Upload-Checksum": sha256_header(content)},
        )
        return created.status_code, patched.status_code, patched["Upload-Offset"]

    assert async_to_sync(upload)() == (201, 204, str(len(content)))
    assert Attachment.objects.get().sha256 == hashlib.sha256(content).hexdigest()
