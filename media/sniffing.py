"""What a file is, told by its bytes: a small signature table and just enough container parsing.

Nothing here trusts a filename or a declared type. `sniff_head` looks at the first bytes and says
which kinds the file may still turn out to be (an MP4 or WebM may be a video or a voice note);
`classify` reads the complete file (seeking, never loading it whole) and decides.
Both raise `Refused(code)`; media.validation turns codes into messages for people.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

# How many leading bytes `sniff_head` wants (fewer only when the whole file is shorter).
HEAD_BYTES = 4096
# How much of the end of a file is searched for a second format glued on.
TAIL_BYTES = 64 * 1024

IMAGE, VIDEO, AUDIO, PDF = "image", "video", "audio", "pdf"


class Refused(Exception):
    """The content is not acceptable; `code` says why (see media.validation for the messages)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Head:
    """What the first bytes say: the format and the kinds it may still be."""

    format: str
    kinds: frozenset[str]


@dataclass(frozen=True)
class Sniffed:
    kind: str
    content_type: str
    extension: str
    format: str


# --- Refused outright -----------------------------------------------------------------------------

EXECUTABLE_SIGNATURES = (
    b"\x7fELF",  # Linux
    b"MZ",  # Windows PE
    b"\xfe\xed\xfa\xce",  # Mach-O 32
    b"\xfe\xed\xfa\xcf",  # Mach-O 64
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal, Java class
    b"#!",  # scripts
    b"\x00asm",  # WebAssembly
    b"dex\n",  # Android
)
# Markup that a browser could render and run, searched (case-insensitively) at the start and end.
MARKUP_MARKERS = (b"<svg", b"<html", b"<script", b"<!doctype html", b"<body", b"<iframe", b"<?php", b"<object")
# Zip archives (JAR, APK, Office) glued to the end of an image make the classic GIFAR polyglot.
ZIP_MARKERS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x01\x02")
# Active content in a PDF.
PDF_ACTIVE = re.compile(rb"/(?:JavaScript|JS|Launch|EmbeddedFile|RichMedia|XFA)(?![A-Za-z0-9])")

# --- ISO base media (MP4, MOV, M4A, HEIC) brands ----------------------------------------------------

HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
HEIF_BRANDS = {b"mif1", b"msf1"}
AVIF_BRANDS = {b"avif", b"avis"}
M4A_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A "}
QUICKTIME_BRANDS = {b"qt  "}
MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"M4V ",
    b"M4VH",
    b"M4VP",
    b"mmp4",
    b"MSNV",
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3g2a",
    b"dash",
    b"XAVC",
    b"f4v ",
    b"NDAS",
}

# --- Matroska / WebM element ids ------------------------------------------------------------------

EBML_MAGIC = b"\x1a\x45\xdf\xa3"
EBML_DOCTYPE = 0x4282
MKV_SEGMENT = 0x18538067
MKV_TRACKS = 0x1654AE6B
MKV_TRACK_ENTRY = 0xAE
MKV_TRACK_TYPE = 0x83
MKV_CLUSTER = 0x1F43B675
MKV_ATTACHMENTS = 0x1941A469
MKV_TRACK_VIDEO, MKV_TRACK_AUDIO = 1, 2

# --- MPEG audio (MP3) -----------------------------------------------------------------------------

# Bit rates (kbit/s) of layer III by MPEG version: 1, and 2/2.5.
MP3_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
MP3_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def sniff_head(head: bytes) -> Head:
    """The format the first bytes announce, and the kinds it may be; `Refused` when it is not allowed."""
    if not head:
        raise Refused("empty")
    for signature in EXECUTABLE_SIGNATURES:
        if head.startswith(signature):
            raise Refused("executable", signature.hex())
    if _looks_like_markup(head):
        raise Refused("markup")
    if head.startswith(b"\xff\xd8\xff"):
        return Head("jpeg", frozenset({IMAGE}))
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Head("png", frozenset({IMAGE}))
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Head("gif", frozenset({IMAGE}))
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return Head("webp", frozenset({IMAGE}))
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return Head("wav", frozenset({AUDIO}))
    if head.startswith(b"%PDF-"):
        return Head("pdf", frozenset({PDF}))
    if head.startswith(b"OggS"):
        return _sniff_ogg(head)
    if head[4:8] == b"ftyp":
        return _sniff_iso_brands(head)
    if head.startswith(EBML_MAGIC):
        return _sniff_ebml_header(head)
    if head.startswith(b"ID3") and _id3_then_mpeg_audio(head):
        return Head("mp3", frozenset({AUDIO}))
    if _mpeg_audio_frames(head, 0) >= 2:
        return Head("mp3", frozenset({AUDIO}))
    if _adts_frames(head) >= 2:
        return Head("aac", frozenset({AUDIO}))
    raise Refused("unsupported_type")


def classify(fileobj: BinaryIO, *, size: int) -> Sniffed:
    """Decide what a complete file is, checking its structure and that nothing else hides inside."""
    fileobj.seek(0)
    head = sniff_head(fileobj.read(HEAD_BYTES))
    check_not_polyglot(fileobj, size=size, head_format=head.format)
    match head.format:
        case "jpeg":
            return Sniffed(IMAGE, "image/jpeg", ".jpg", "jpeg")
        case "png":
            _check_png_ends_at_iend(fileobj, size=size)
            return Sniffed(IMAGE, "image/png", ".png", "png")
        case "gif":
            return Sniffed(IMAGE, "image/gif", ".gif", "gif")
        case "webp":
            _check_riff_size(fileobj, size=size)
            return Sniffed(IMAGE, "image/webp", ".webp", "webp")
        case "wav":
            _check_riff_size(fileobj, size=size)
            return Sniffed(AUDIO, "audio/wav", ".wav", "wav")
        case "pdf":
            _check_pdf(fileobj, size=size)
            return Sniffed(PDF, "application/pdf", ".pdf", "pdf")
        case "ogg":
            return Sniffed(AUDIO, "audio/ogg", ".ogg", "ogg")
        case "mp3":
            return Sniffed(AUDIO, "audio/mpeg", ".mp3", "mp3")
        case "aac":
            return Sniffed(AUDIO, "audio/aac", ".aac", "aac")
        case "heic" | "heif":
            _iso_top_level_boxes(fileobj, size=size)
            return Sniffed(IMAGE, f"image/{head.format}", f".{head.format}", head.format)
        case "m4a" | "mp4" | "mov":
            return _classify_iso_media(fileobj, size=size, head_format=head.format)
        case "webm":
            return _classify_webm(fileobj, size=size)
    raise Refused("unsupported_type", head.format)  # pragma: no cover - every head format is handled


# --- Polyglots -------------------------------------------------------------------------------------


def check_not_polyglot(fileobj: BinaryIO, *, size: int, head_format: str) -> None:
    """Refuse a file that is also something else: markup or an archive at its start or end.

    Images and PDFs, at most a few tens of MB, are searched whole for script tags; a PDF also for
    active content (JavaScript, launch actions, embedded files).
    """
    fileobj.seek(0)
    head = fileobj.read(HEAD_BYTES)
    fileobj.seek(max(0, size - TAIL_BYTES))
    tail = fileobj.read(TAIL_BYTES)
    for marker in ZIP_MARKERS:
        if marker in head or marker in tail:
            raise Refused("polyglot", "zip")
    head, tail = head.lower(), tail.lower()
    for marker in MARKUP_MARKERS:
        if marker in head or marker in tail:
            raise Refused("polyglot", marker.decode())
    if head_format in {"jpeg", "png", "gif", "webp", "heic", "heif", "pdf"}:
        for chunk in _overlapping_chunks(fileobj, overlap=32):
            if b"<script" in chunk.lower():
                raise Refused("polyglot", "<script")
            if head_format == "pdf" and PDF_ACTIVE.search(chunk):
                raise Refused("pdf_active_content")


def _overlapping_chunks(fileobj: BinaryIO, *, overlap: int, chunk_size: int = 1024 * 1024) -> _Chunks:
    return _Chunks(fileobj, overlap=overlap, chunk_size=chunk_size)


class _Chunks:
    """The file in chunks, each starting with the last `overlap` bytes of the one before."""

    def __init__(self, fileobj: BinaryIO, *, overlap: int, chunk_size: int) -> None:
        self.fileobj, self.overlap, self.chunk_size = fileobj, overlap, chunk_size

    def __iter__(self) -> _Chunks:
        self.fileobj.seek(0)
        self.carry = b""
        return self

    def __next__(self) -> bytes:
        data = self.fileobj.read(self.chunk_size)
        if not data:
            raise StopIteration
        chunk = self.carry + data
        self.carry = chunk[-self.overlap :]
        return chunk


def _looks_like_markup(head: bytes) -> bool:
    """Text that starts with a tag (after a byte-order mark and blanks): SVG, HTML, XML."""
    return head.lstrip(b"\xef\xbb\xbf\xfe\xff\x00 \t\r\n").startswith(b"<")


# --- Formats ---------------------------------------------------------------------------------------


def _sniff_ogg(head: bytes) -> Head:
    # The first page's first packet names the codec: Opus, Vorbis, FLAC or Speex are sound.
    if len(head) < 28 + 8:
        raise Refused("damaged", "ogg")
    segments = head[26]
    packet = head[27 + segments : 27 + segments + 8]
    if packet.startswith((b"OpusHead", b"\x01vorbis", b"\x7fFLAC", b"Speex   ")):
        return Head("ogg", frozenset({AUDIO}))
    raise Refused("unsupported_type", "ogg video")


def _sniff_iso_brands(head: bytes) -> Head:
    (box_size,) = struct.unpack(">I", head[:4])
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    brands = {major} | compatible
    if major in AVIF_BRANDS or (brands & AVIF_BRANDS and not brands & HEIC_BRANDS):
        raise Refused("unsupported_type", "avif")
    if major in HEIC_BRANDS or (major in HEIF_BRANDS and brands & HEIC_BRANDS):
        return Head("heic", frozenset({IMAGE}))
    if major in HEIF_BRANDS:
        return Head("heif", frozenset({IMAGE}))
    if major in M4A_BRANDS:
        return Head("m4a", frozenset({AUDIO}))
    if major in QUICKTIME_BRANDS:
        return Head("mov", frozenset({VIDEO}))
    if major in MP4_BRANDS:
        # A phone's voice note and its video look alike here: the tracks decide at the end.
        return Head("mp4", frozenset({VIDEO, AUDIO}))
    raise Refused("unsupported_type", f"ftyp {major!r}")


def _iso_top_level_boxes(fileobj: BinaryIO, *, size: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each top-level box; they must tile the file exactly."""
    boxes = []
    position = 0
    while position < size:
        box_type, start, end = _read_box_header(fileobj, position=position, limit=size)
        boxes.append((box_type, start, end))
        position = end
    return boxes


def _read_box_header(fileobj: BinaryIO, *, position: int, limit: int) -> tuple[bytes, int, int]:
    fileobj.seek(position)
    header = fileobj.read(8)
    if len(header) < 8:
        raise Refused("damaged", "truncated box")
    box_size, box_type = struct.unpack(">I4s", header)
    start = position + 8
    if box_size == 1:
        large = fileobj.read(8)
        if len(large) < 8:
            raise Refused("damaged", "truncated box")
        (box_size,) = struct.unpack(">Q", large)
        start += 8
    elif box_size == 0:
        box_size = limit - position
    if not all(32 <= byte < 127 for byte in box_type):
        # Bytes that are no box at all after valid boxes: something else was glued on.
        raise Refused("polyglot" if position > 0 else "damaged", f"box {box_type!r}")
    end = position + box_size
    if end > limit or end < start:
        raise Refused("damaged", f"box {box_type!r} overruns")
    return box_type, start, end


def _child_boxes(fileobj: BinaryIO, *, start: int, end: int) -> list[tuple[bytes, int, int]]:
    boxes = []
    position = start
    while position + 8 <= end:
        box = _read_box_header(fileobj, position=position, limit=end)
        boxes.append(box)
        position = box[2]
    return boxes


def _classify_iso_media(fileobj: BinaryIO, *, size: int, head_format: str) -> Sniffed:
    top = _iso_top_level_boxes(fileobj, size=size)
    handlers: set[bytes] = set()
    for box_type, start, end in top:
        if box_type != b"moov":
            continue
        for trak_type, trak_start, trak_end in _child_boxes(fileobj, start=start, end=end):
            if trak_type != b"trak":
                continue
            for mdia_type, mdia_start, mdia_end in _child_boxes(fileobj, start=trak_start, end=trak_end):
                if mdia_type != b"mdia":
                    continue
                for hdlr_type, hdlr_start, _hdlr_end in _child_boxes(fileobj, start=mdia_start, end=mdia_end):
                    if hdlr_type == b"hdlr":
                        fileobj.seek(hdlr_start + 8)  # version, flags, pre_defined
                        handlers.add(fileobj.read(4))
    if b"vide" in handlers and head_format != "m4a":
        if head_format == "mov":
            return Sniffed(VIDEO, "video/quicktime", ".mov", "mov")
        return Sniffed(VIDEO, "video/mp4", ".mp4", "mp4")
    if b"soun" in handlers and head_format != "mov":
        return Sniffed(AUDIO, "audio/mp4", ".m4a", "m4a")
    raise Refused("damaged", "no playable track")


def _sniff_ebml_header(head: bytes) -> Head:
    doc_type = _ebml_doc_type(head)
    if doc_type == b"webm":
        return Head("webm", frozenset({VIDEO, AUDIO}))
    raise Refused("unsupported_type", f"ebml {doc_type!r}")


def _ebml_doc_type(data: bytes) -> bytes:
    position = len(EBML_MAGIC)
    header_size, position = _read_vint(data, position, keep_marker=False)
    if header_size is None:
        raise Refused("damaged", "ebml")
    end = min(len(data), position + header_size)
    while position < end:
        element_id, position = _read_vint(data, position, keep_marker=True)
        element_size, position = _read_vint(data, position, keep_marker=False)
        if element_id is None or element_size is None:
            raise Refused("damaged", "ebml")
        if element_id == EBML_DOCTYPE:
            return data[position : position + element_size].rstrip(b"\x00")
        position += element_size
    raise Refused("damaged", "ebml without doc type")


def _read_vint(data: bytes, position: int, *, keep_marker: bool) -> tuple[int | None, int]:
    """An EBML variable-length integer; None for 'unknown size' (all value bits set) or bad input."""
    if position >= len(data):
        return None, position
    first = data[position]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        length += 1
        mask >>= 1
    if length > 8 or position + length > len(data):
        return None, position + 1
    value = first if keep_marker else first & (mask - 1)
    for byte in data[position + 1 : position + length]:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        return None, position + length  # unknown size
    return value, position + length


def _classify_webm(fileobj: BinaryIO, *, size: int) -> Sniffed:
    # Tracks come before the first Cluster in files from browsers and phones; a few MB is plenty.
    fileobj.seek(0)
    data = fileobj.read(min(size, 4 * 1024 * 1024))
    position = len(EBML_MAGIC)
    header_size, position = _read_vint(data, position, keep_marker=False)
    if header_size is None:
        raise Refused("damaged", "ebml")
    position += header_size
    segment_id, position = _read_vint(data, position, keep_marker=True)
    if segment_id != MKV_SEGMENT:
        raise Refused("damaged", "no segment")
    _segment_size, position = _read_vint(data, position, keep_marker=False)
    track_types: set[int] = set()
    while position < len(data):
        element_id, position = _read_vint(data, position, keep_marker=True)
        element_size, position = _read_vint(data, position, keep_marker=False)
        if element_id is None:
            raise Refused("damaged", "webm element")
        if element_id == MKV_ATTACHMENTS:
            raise Refused("polyglot", "webm attachments")
        if element_id == MKV_CLUSTER or element_size is None:
            break
        if element_id == MKV_TRACKS:
            track_types = _webm_track_types(data[position : position + element_size])
            break
        position += element_size
    if MKV_TRACK_VIDEO in track_types:
        return Sniffed(VIDEO, "video/webm", ".webm", "webm")
    if MKV_TRACK_AUDIO in track_types:
        return Sniffed(AUDIO, "audio/webm", ".webm", "webm")
    raise Refused("damaged", "no playable track")


def _webm_track_types(tracks: bytes) -> set[int]:
    types: set[int] = set()
    position = 0
    while position < len(tracks):
        element_id, position = _read_vint(tracks, position, keep_marker=True)
        element_size, position = _read_vint(tracks, position, keep_marker=False)
        if element_id is None or element_size is None:
            break
        if element_id == MKV_TRACK_ENTRY:
            entry = tracks[position : position + element_size]
            inner = 0
            while inner < len(entry):
                child_id, inner = _read_vint(entry, inner, keep_marker=True)
                child_size, inner = _read_vint(entry, inner, keep_marker=False)
                if child_id is None or child_size is None:
                    break
                if child_id == MKV_TRACK_TYPE:
                    types.add(int.from_bytes(entry[inner : inner + child_size], "big"))
                inner += child_size
        position += element_size
    return types


def _mpeg_audio_frames(data: bytes, position: int, *, wanted: int = 2) -> int:
    """How many consecutive MPEG-1/2/2.5 layer III frame headers start at `position` (up to `wanted`)."""
    found = 0
    while found < wanted and position + 4 <= len(data):
        b1, b2, b3 = data[position + 1], data[position + 2], data[position + 3]
        if data[position] != 0xFF or b1 & 0xE0 != 0xE0:
            break
        version = (b1 >> 3) & 0x03  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
        layer = (b1 >> 1) & 0x03  # 1: layer III
        bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 0x03, (b2 >> 1) & 0x01
        if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3 or b3 & 0x03 == 2:
            break
        bitrate = MP3_BITRATES[1 if version == 3 else 2][bitrate_index] * 1000
        sample_rate = MP3_SAMPLE_RATES[version][rate_index]
        frame_length = (144 if version == 3 else 72) * bitrate // sample_rate + padding
        found += 1
        position += frame_length
    return found


def _id3_then_mpeg_audio(head: bytes) -> bool:
    """An ID3v2 tag (its size is 'synchsafe', 7 bits a byte) followed by MPEG audio frames."""
    if len(head) < 10 or any(byte & 0x80 for byte in head[6:10]):
        return False
    tag_end = 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9])
    if tag_end + 4 > len(head):
        return True  # a long tag (cover art): the frames lie beyond the bytes at hand
    return _mpeg_audio_frames(head, tag_end, wanted=1) == 1


def _adts_frames(data: bytes, *, wanted: int = 2) -> int:
    """How many consecutive AAC ADTS frame headers start the data (up to `wanted`)."""
    found = 0
    position = 0
    while found < wanted and position + 7 <= len(data):
        if data[position] != 0xFF or data[position + 1] & 0xF6 != 0xF0:
            break
        frame_length = ((data[position + 3] & 0x03) << 11) | (data[position + 4] << 3) | (data[position + 5] >> 5)
        if frame_length < 7:
            break
        found += 1
        position += frame_length
    return found


def _check_png_ends_at_iend(fileobj: BinaryIO, *, size: int) -> None:
    position = 8
    while True:
        fileobj.seek(position)
        header = fileobj.read(8)
        if len(header) < 8:
            raise Refused("damaged", "png without IEND")
        (length,) = struct.unpack(">I", header[:4])
        position += 12 + length
        if header[4:8] == b"IEND":
            break
    if position != size:
        raise Refused("polyglot", "data after IEND")


def _check_riff_size(fileobj: BinaryIO, *, size: int) -> None:
    fileobj.seek(4)
    (riff_size,) = struct.unpack("<I", fileobj.read(4))
    # RIFF pads odd sizes with one byte.
    if riff_size + 8 not in (size, size - 1):
        raise Refused("polyglot" if riff_size + 8 < size else "damaged", "riff size")


def _check_pdf(fileobj: BinaryIO, *, size: int) -> None:
    fileobj.seek(max(0, size - 1024))
    if b"%%EOF" not in fileobj.read(1024):
        raise Refused("damaged", "pdf without %%EOF")
