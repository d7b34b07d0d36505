"""What the chat shows, derived from a kept original (issue #4, "Processing").

Runs in Celery after the attachment's transaction commits (media.tasks.process_attachment).
The long work (decoding, ffmpeg) runs outside any transaction: the Attachment row is locked only
while its status changes, so a transcode of several minutes holds no lock and no connection.

Idempotent: derived files have fixed names made from the attachment's id, are written under a
temporary name and renamed into place, so a second run (a redelivered task, a retry) replaces
them instead of adding more; and only an attachment that is still `processing` changes status.

The original is only read, never written. A file we cannot decode fails for good with a reason in
the buyer's language (`retry_processing` runs it again); anything else (the disk, a timeout, the
database) is raised for Celery to retry with backoff.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import InterfaceError, OperationalError, transaction
from django.utils import translation
from django.utils.translation import gettext as _
from PIL import Image, ImageCms, ImageOps

from media import selectors, storage
from media.models import DERIVED_FIELDS, Attachment, AttachmentKind, AttachmentStatus
from messaging import realtime
from messaging.models import Conversation

logger = logging.getLogger(__name__)

# Worth another try later: the disk, a tool that ran out of time on a busy machine, the database.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    subprocess.TimeoutExpired,
    OperationalError,
    InterfaceError,
)

THUMBNAIL_SMALL = 320  # pixels on the long side: chat bubbles
THUMBNAIL_LARGE = 1280  # the lightbox, and the video poster
WEBP_QUALITY = 80
SHAREABLE_QUALITY = 92  # evidence of a colour difference must survive the re-encoding
MAX_PLAYABLE_SIDE = 1920

FFPROBE_TIMEOUT = 60.0  # seconds
POSTER_TIMEOUT = 120.0
# A transcode gets time in proportion to the video, capped below the broker's visibility timeout
# (1 h): past that, Redis would hand the still-running task to a second worker.
TRANSCODE_TIMEOUT_BASE = 300.0
TRANSCODE_SECONDS_PER_SECOND = 4.0
TRANSCODE_TIMEOUT_MAX = 3000.0

# Scratch files live beside the derived files, so that moving one into place is an atomic rename.
WORK_DIR_NAME = ".work"
# Older than any run can last (TRANSCODE_TIMEOUT_MAX): left by a worker that died.
STALE_SCRATCH_AGE = timedelta(hours=2)

# Our sniffed type -> the only ffmpeg demuxer allowed to read it: ffmpeg never guesses the format
# (no playlist or concat file can smuggle in other paths), and reads only local files.
DEMUXERS = {
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "audio/mp4": "mov",
    "video/webm": "matroska",
    "audio/webm": "matroska",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/wav": "wav",
    "audio/ogg": "ogg",
}

# What plays in current Chrome, Firefox and Safari without a copy: (video codecs, audio codecs).
# QuickTime and Ogg are missing on purpose: Firefox does not play .mov, Safari does not play Ogg.
WEB_PLAYABLE: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "video/mp4": (frozenset({"h264"}), frozenset({"aac", "mp3"})),
    "video/webm": (frozenset({"vp8", "vp9", "av1"}), frozenset({"opus", "vorbis"})),
    "audio/mp4": (frozenset(), frozenset({"aac", "mp3"})),
    "audio/webm": (frozenset(), frozenset({"opus", "vorbis"})),
    "audio/mpeg": (frozenset(), frozenset({"mp3"})),
    "audio/aac": (frozenset(), frozenset({"aac"})),
    "audio/wav": (frozenset(), frozenset({"pcm_s16le", "pcm_u8"})),
}
# Browsers decode 8-bit 4:2:0 H.264 only (not High 10 or 4:2:2).
WEB_PIXEL_FORMATS = frozenset({"yuv420p", "yuvj420p"})

# The shareable copy of a photo keeps its format where browsers show it; HEIC and GIF do not stay.
SHAREABLE_FORMATS = {"JPEG": "JPEG", "HEIF": "JPEG", "PNG": "PNG", "GIF": "PNG", "WEBP": "WEBP"}
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}

# Pillow's ways of saying it cannot decode a file.
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


class ProcessingFailed(Exception):
    """The original cannot be turned into what the chat shows; `code` picks the message (failure_message)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code


@dataclass
class Derived:
    """What one run made: scratch files by Attachment field, and what was measured."""

    files: dict[str, Path] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None


# --- Status changes (row locked) -------------------------------------------------------------------


def process_attachment(*, attachment_id: int) -> Attachment:
    """Derive thumbnails, a stripped copy, a poster or a playable copy, then mark the attachment ready.

    Raises Attachment.DoesNotExist for a deleted attachment, TRANSIENT_ERRORS for Celery to retry.
    """
    attachment = Attachment.objects.select_related("ticket").get(pk=attachment_id)
    if attachment.status != AttachmentStatus.PROCESSING:
        # Ready already (a redelivered task), or failed and waiting for someone to retry.
        return attachment
    workdir = Path(storage.derived_storage().path(f"{WORK_DIR_NAME}/{uuid.uuid4().hex}"))
    workdir.mkdir(parents=True)
    try:
        try:
            derived = derive(attachment=attachment, workdir=workdir)
        except ProcessingFailed as failure:
            logger.warning("Attachment %s could not be processed: %s", attachment_id, failure)
            return mark_failed(attachment_id=attachment_id, code=failure.code)
        names = put_in_place(attachment=attachment, files=derived.files)
        return mark_ready(attachment_id=attachment_id, derived=derived, names=names)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def locked_attachment(*, attachment_id: int) -> Attachment:
    """The row, locked until the transaction ends: status changes are serialised."""
    return Attachment.objects.select_for_update(of=("self",)).select_related("ticket").get(pk=attachment_id)


def mark_ready(*, attachment_id: int, derived: Derived, names: dict[str, str]) -> Attachment:
    with transaction.atomic():
        attachment = locked_attachment(attachment_id=attachment_id)
        if attachment.status != AttachmentStatus.PROCESSING:
            return attachment  # another run finished first; it wrote the same files
        for name in DERIVED_FIELDS:
            setattr(attachment, name, names.get(name, ""))
        attachment.width = derived.width if derived.width is not None else attachment.width
        attachment.height = derived.height if derived.height is not None else attachment.height
        attachment.duration_ms = derived.duration_ms
        attachment.status = AttachmentStatus.READY
        attachment.failure_reason = ""
        attachment.save(update_fields=[*DERIVED_FIELDS, "width", "height", "duration_ms", "status", "failure_reason"])
        publish_update(attachment=attachment)
    return attachment


def mark_failed(*, attachment_id: int, code: str) -> Attachment:
    """Fail a processing attachment with a reason in the buyer's language; its original stays."""
    with transaction.atomic():
        attachment = locked_attachment(attachment_id=attachment_id)
        if attachment.status != AttachmentStatus.PROCESSING:
            return attachment
        with translation.override(attachment.ticket.language):
            attachment.failure_reason = failure_message(code=code, kind=attachment.kind)
        attachment.status = AttachmentStatus.FAILED
        for name in DERIVED_FIELDS:
            setattr(attachment, name, "")
        attachment.save(update_fields=[*DERIVED_FIELDS, "status", "failure_reason"])
        publish_update(attachment=attachment)
        transaction.on_commit(
            functools.partial(delete_derived_files, ticket_id=attachment.ticket_id, attachment_id=attachment.pk)
        )
    return attachment


def give_up(*, attachment_id: int) -> Attachment | None:
    """After the last retry: a bubble must not say "processing" forever."""
    try:
        return mark_failed(attachment_id=attachment_id, code="unavailable")
    except Attachment.DoesNotExist:
        return None


def retry_processing(*, attachment_id: int, user: User | AnonymousUser) -> Attachment:
    """Run a failed attachment's processing again; for whoever may see it (its buyer, staff).

    Anyone else gets Http404, as for the download. Retrying one that is not failed changes nothing.
    """
    selectors.viewable_attachment(user=user, attachment_id=attachment_id)
    from media import tasks  # the task module imports this one

    with transaction.atomic():
        attachment = locked_attachment(attachment_id=attachment_id)
        if attachment.status != AttachmentStatus.FAILED:
            return attachment
        attachment.status = AttachmentStatus.PROCESSING
        attachment.failure_reason = ""
        attachment.save(update_fields=["status", "failure_reason"])
        publish_update(attachment=attachment)
        transaction.on_commit(functools.partial(tasks.process_attachment.delay, attachment.pk))
    return attachment


def failure_message(*, code: str, kind: str) -> str:
    if code == "unavailable":
        return _("This file could not be prepared because of a problem on our side. Try again in a few minutes.")
    if code == "conversion":
        return _(
            "This file could not be converted into a format that every browser plays. "
            "Try again, or send it in another format."
        )
    messages = {
        AttachmentKind.IMAGE: _("This photo could not be opened: the file may be damaged or incomplete."),
        AttachmentKind.VIDEO: _("This video could not be read: the file may be damaged or incomplete."),
        AttachmentKind.AUDIO: _("This recording could not be read: the file may be damaged or incomplete."),
    }
    message = messages.get(AttachmentKind(kind), _("This file could not be opened."))
    # Outside the f-string, where makemessages finds it.
    hint = _("Try again, or send the file again.")
    return f"{message} {hint}"


def publish_update(*, attachment: Attachment) -> None:
    """The `attachment.updated` frame (docs/uploads.md) to the ticket's conversation, after commit."""
    conversation_id = Conversation.objects.filter(ticket_id=attachment.ticket_id).values_list("pk", flat=True).first()
    if conversation_id is None:
        return
    realtime.publish(
        group=realtime.conversation_group(conversation_id),
        frame={"type": "attachment.updated", "attachment": selectors.attachment_payload(attachment=attachment)},
    )


# --- Derived files -----------------------------------------------------------------------------------


def derived_name(*, ticket_id: int, attachment_id: int, field_name: str, extension: str) -> str:
    """A fixed name per attachment and variant: a second run replaces, never adds."""
    return f"tickets/{ticket_id}/{attachment_id}/{field_name}{extension}"


def put_in_place(*, attachment: Attachment, files: dict[str, Path]) -> dict[str, str]:
    derived = storage.derived_storage()
    names: dict[str, str] = {}
    for field_name, scratch in files.items():
        name = derived_name(
            ticket_id=attachment.ticket_id, attachment_id=attachment.pk, field_name=field_name, extension=scratch.suffix
        )
        target = Path(derived.path(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        # Same file system: a reader sees the old file or the new one, never half of one.
        os.replace(scratch, target)
        names[field_name] = name
    return names


def delete_stale_scratch(*, now: datetime) -> None:
    """Scratch folders of workers that died mid-run (the beat task media.tasks.sweep_uploads)."""
    folder = Path(storage.derived_storage().path(WORK_DIR_NAME))
    if not folder.is_dir():
        return
    cutoff = (now - STALE_SCRATCH_AGE).timestamp()
    for scratch in folder.iterdir():
        if scratch.stat().st_mtime < cutoff:
            shutil.rmtree(scratch, ignore_errors=True)


def delete_derived_files(*, ticket_id: int, attachment_id: int) -> None:
    directory = Path(storage.derived_storage().path(f"tickets/{ticket_id}/{attachment_id}"))
    shutil.rmtree(directory, ignore_errors=True)


def derive(*, attachment: Attachment, workdir: Path) -> Derived:
    source = Path(attachment.original.path)
    if not source.is_file():
        # Never expected (originals are kept); an OSError, so that Celery tries again before giving up.
        logger.error("Attachment %s: original %s is missing", attachment.pk, source)
        raise FileNotFoundError(source)
    if attachment.kind == AttachmentKind.IMAGE:
        return derive_image(source=source, workdir=workdir)
    if attachment.kind == AttachmentKind.VIDEO:
        return derive_video(source=source, content_type=attachment.content_type, workdir=workdir)
    if attachment.kind == AttachmentKind.AUDIO:
        return derive_audio(source=source, content_type=attachment.content_type, workdir=workdir)
    return Derived()  # a PDF is shown as it is


# --- Images ------------------------------------------------------------------------------------------


def derive_image(*, source: Path, workdir: Path) -> Derived:
    """Upright pixels, in sRGB, with no metadata at all; two WebP thumbnails."""
    try:
        with Image.open(source) as opened:
            source_format = opened.format or ""
            image = clean_pixels(opened)
    except DECODE_ERRORS as error:
        raise ProcessingFailed("damaged", str(error)) from error
    width, height = image.size
    shareable_format = SHAREABLE_FORMATS.get(source_format, "PNG")
    if shareable_format == "JPEG" and image.mode == "RGBA":
        shareable_format = "PNG"  # JPEG has no transparency
    files = {"shareable": workdir / f"shareable{EXTENSIONS[shareable_format]}"}
    save_image(image, path=files["shareable"], image_format=shareable_format, quality=SHAREABLE_QUALITY)
    # The small one from the large one: resizing a 100-megapixel photo once is enough.
    large = fit(image, THUMBNAIL_LARGE)
    files["thumbnail_large"] = save_webp(large, path=workdir / "thumbnail_large.webp", size=THUMBNAIL_LARGE)
    files["thumbnail_small"] = save_webp(large, path=workdir / "thumbnail_small.webp", size=THUMBNAIL_SMALL)
    return Derived(files=files, width=width, height=height)


def clean_pixels(opened: Image.Image) -> Image.Image:
    """The first frame turned upright (EXIF orientation), converted to sRGB, with every metadata dropped."""
    image = ImageOps.exif_transpose(opened) or opened
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    mode = "RGBA" if has_alpha else "RGB"
    icc = image.info.get("icc_profile")
    if icc and image.mode in ("RGB", "RGBA", "CMYK"):
        # Phones shoot in Display P3: dropping the profile without converting would dull the colours.
        try:
            converted = ImageCms.profileToProfile(
                image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"), outputMode=mode
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # a broken profile: keep the pixels as they are
        image = converted or image
    if image.mode != mode:
        image = image.convert(mode)
    else:
        image.load()
    # Encoders copy EXIF (GPS), XMP, ICC and comments from `info`; the copies must carry none.
    image.info = {}
    return image


def save_image(image: Image.Image, *, path: Path, image_format: str, quality: int) -> Path:
    options: dict[str, Any] = {"quality": quality} if image_format in ("JPEG", "WEBP") else {}
    image.save(path, image_format, exif=b"", **options)
    return path


def fit(image: Image.Image, size: int) -> Image.Image:
    """At most `size` pixels on the long side, never enlarged; a new image only when it shrinks."""
    scale = size / max(image.size)
    if scale >= 1:
        return image
    width, height = image.size
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)


def save_webp(image: Image.Image, *, path: Path, size: int) -> Path:
    return save_image(fit(image, size), path=path, image_format="WEBP", quality=WEBP_QUALITY)


# --- Video and audio (ffprobe, ffmpeg) ----------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What ffprobe says about a file; width and height as displayed (rotation applied)."""

    duration_ms: int | None
    video_codec: str | None
    pixel_format: str | None
    width: int | None
    height: int | None
    audio_codec: str | None


def run_tool(command: list[str], *, timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg or ffprobe: an argument list, never a shell; the one path in it is our storage's."""
    return subprocess.run(command, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL)


def input_arguments(*, source: Path, content_type: str) -> list[str]:
    # `file:` keeps a name from being read as a protocol or an option.
    return ["-protocol_whitelist", "file", "-f", DEMUXERS[content_type], "-i", f"file:{source}"]


def ffmpeg_command(*, source: Path, content_type: str, seek: float | None = None) -> list[str]:
    """ffmpeg reading our original, quiet but for errors, never waiting for a terminal."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
    if seek is not None:
        command += ["-ss", f"{seek:.3f}"]  # before the input: a fast seek
    return command + input_arguments(source=source, content_type=content_type)


def probe(*, source: Path, content_type: str, unreadable: str) -> Probe:
    command = ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    command += input_arguments(source=source, content_type=content_type)
    result = run_tool(command, timeout=FFPROBE_TIMEOUT)
    if result.returncode != 0:
        raise ProcessingFailed(unreadable, result.stderr.decode(errors="replace")[-500:])
    try:
        described = json.loads(result.stdout)
    except ValueError as error:
        raise ProcessingFailed(unreadable, "ffprobe printed no JSON") from error
    streams = described.get("streams", [])
    # Cover art in an M4A is a "video" stream too; it is not the video.
    video = next(
        (
            stream
            for stream in streams
            if stream.get("codec_type") == "video" and not stream.get("disposition", {}).get("attached_pic")
        ),
        None,
    )
    audio = next((stream for stream in streams if stream.get("codec_type") == "audio"), None)
    width = height = None
    if video is not None and video.get("width") and video.get("height"):
        width, height = int(video["width"]), int(video["height"])
        if rotation(video) % 180 == 90:
            width, height = height, width
    seconds = described.get("format", {}).get("duration") or (video or audio or {}).get("duration")
    return Probe(
        duration_ms=round(float(seconds) * 1000) if seconds not in (None, "N/A") else None,
        video_codec=video.get("codec_name") if video else None,
        pixel_format=video.get("pix_fmt") if video else None,
        width=width,
        height=height,
        audio_codec=audio.get("codec_name") if audio else None,
    )


def rotation(stream: dict[str, Any]) -> int:
    """Degrees a player turns the picture (phones store portrait video as landscape plus a rotation)."""
    for side_data in stream.get("side_data_list", []):
        if "rotation" in side_data:
            return int(float(side_data["rotation"])) % 360
    return int(stream.get("tags", {}).get("rotate", 0)) % 360


def measured_duration_ms(*, source: Path, content_type: str, unreadable: str) -> int | None:
    """The duration read from the packets: MediaRecorder's WebM states none in its header.

    The streams are copied to nothing, not decoded, so this stays fast.
    """
    command = ffmpeg_command(source=source, content_type=content_type)
    command += ["-map", "0", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-"]
    result = run_tool(command, timeout=POSTER_TIMEOUT)
    if result.returncode != 0:
        raise ProcessingFailed(unreadable, result.stderr.decode(errors="replace")[-500:])
    times = [line.split(b"=", 1)[1] for line in result.stdout.splitlines() if line.startswith(b"out_time_us=")]
    values = [int(value) for value in times if value.strip().isdigit()]
    return max(values) // 1000 if values else None


def plays_in_browsers(*, content_type: str, found: Probe, kind: str) -> bool:
    video_codecs, audio_codecs = WEB_PLAYABLE.get(content_type, (frozenset(), frozenset()))
    if found.audio_codec is not None and found.audio_codec not in audio_codecs:
        return False
    if kind == AttachmentKind.AUDIO:
        return found.audio_codec is not None
    return found.video_codec in video_codecs and found.pixel_format in WEB_PIXEL_FORMATS | {None}


def duration_of(*, found: Probe, source: Path, content_type: str, unreadable: str) -> int | None:
    if found.duration_ms is not None:
        return found.duration_ms
    return measured_duration_ms(source=source, content_type=content_type, unreadable=unreadable)


def derive_video(*, source: Path, content_type: str, workdir: Path) -> Derived:
    found = probe(source=source, content_type=content_type, unreadable="damaged")
    if found.video_codec is None:
        raise ProcessingFailed("damaged", "no video stream")
    duration_ms = duration_of(found=found, source=source, content_type=content_type, unreadable="damaged")
    files = {"poster": poster_frame(source=source, content_type=content_type, workdir=workdir, duration_ms=duration_ms)}
    if not plays_in_browsers(content_type=content_type, found=found, kind=AttachmentKind.VIDEO):
        files["playable"] = playable_video(
            source=source, content_type=content_type, workdir=workdir, found=found, duration_ms=duration_ms
        )
    return Derived(files=files, width=found.width, height=found.height, duration_ms=duration_ms)


def poster_frame(*, source: Path, content_type: str, workdir: Path, duration_ms: int | None) -> Path:
    """A WebP of one frame, a little way in (the very first frame is often black)."""
    frame = workdir / "poster.png"
    offset = min(1.0, (duration_ms or 0) / 10_000)
    for seconds in dict.fromkeys((offset, 0.0)):  # a seek past the last frame gives nothing: then the first
        command = ffmpeg_command(source=source, content_type=content_type, seek=seconds)
        # ffmpeg turns the frame upright itself (the stream's rotation).
        command += ["-map", "0:v:0", "-frames:v", "1", "-pix_fmt", "rgb24", "-c:v", "png", "-f", "image2"]
        result = run_tool([*command, f"file:{frame}"], timeout=POSTER_TIMEOUT)
        if result.returncode == 0 and frame.is_file() and frame.stat().st_size > 0:
            break
    else:
        raise ProcessingFailed("damaged", result.stderr.decode(errors="replace")[-500:])
    try:
        with Image.open(frame) as opened:
            image = clean_pixels(opened)
    except DECODE_ERRORS as error:
        raise ProcessingFailed("damaged", str(error)) from error
    return save_webp(image, path=workdir / "poster.webp", size=THUMBNAIL_LARGE)


def transcode_timeout(duration_ms: int | None) -> float:
    seconds = (duration_ms or 0) / 1000
    return min(TRANSCODE_TIMEOUT_MAX, TRANSCODE_TIMEOUT_BASE + TRANSCODE_SECONDS_PER_SECOND * seconds)


def playable_video(*, source: Path, content_type: str, workdir: Path, found: Probe, duration_ms: int | None) -> Path:
    """H.264/AAC in MP4 with its index first (plays while it downloads); no metadata (GPS) carried over."""
    target = workdir / "playable.mp4"
    command = ffmpeg_command(source=source, content_type=content_type)
    command += ["-map", "0:v:0", "-map", "0:a:0?", "-map_metadata", "-1", "-map_chapters", "-1", "-sn", "-dn"]
    if found.video_codec == "h264" and found.pixel_format in WEB_PIXEL_FORMATS:
        command += ["-c:v", "copy"]  # a .mov of H.264 only needs another container
    else:
        # Even dimensions (4:2:0 needs them), at most MAX_PLAYABLE_SIDE on the long side, never enlarged.
        side = MAX_PLAYABLE_SIDE
        scale = f"scale='if(gte(iw,ih),trunc(min({side},iw)/2)*2,-2)':'if(gte(iw,ih),-2,trunc(min({side},ih)/2)*2)'"
        command += ["-vf", scale, "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
    command += ["-c:a", "copy"] if found.audio_codec == "aac" else ["-c:a", "aac", "-b:a", "128k"]
    command += ["-movflags", "+faststart", "-f", "mp4", f"file:{target}"]
    convert(command=command, target=target, timeout=transcode_timeout(duration_ms))
    return target


def derive_audio(*, source: Path, content_type: str, workdir: Path) -> Derived:
    found = probe(source=source, content_type=content_type, unreadable="damaged")
    if found.audio_codec is None:
        raise ProcessingFailed("damaged", "no audio stream")
    duration_ms = duration_of(found=found, source=source, content_type=content_type, unreadable="damaged")
    files: dict[str, Path] = {}
    if not plays_in_browsers(content_type=content_type, found=found, kind=AttachmentKind.AUDIO):
        target = workdir / "playable.m4a"
        command = ffmpeg_command(source=source, content_type=content_type)
        command += ["-map", "0:a:0", "-vn", "-map_metadata", "-1", "-c:a", "aac", "-b:a", "96k"]
        command += ["-movflags", "+faststart", "-f", "mp4", f"file:{target}"]
        convert(command=command, target=target, timeout=transcode_timeout(duration_ms))
        files["playable"] = target
    return Derived(files=files, duration_ms=duration_ms)


def convert(*, command: list[str], target: Path, timeout: float) -> None:
    result = run_tool(command, timeout=timeout)
    if result.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
        raise ProcessingFailed("conversion", result.stderr.decode(errors="replace")[-500:])
