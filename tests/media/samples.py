"""Small real files of each kind, made on the spot (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import os
import struct
import wave
import zlib

from PIL import Image


def jpeg(*, width: int = 64, height: int = 48, noise: bool = False) -> bytes:
    """A JPEG; with noise it hardly compresses (about 3 bytes a pixel at quality 95)."""
    if noise:
        image = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), (200, 30, 30))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def pillow_image(fmt: str, *, size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, fmt)
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pixel_bomb_png(*, width: int = 12_000, height: int = 12_000) -> bytes:
    """A few hundred bytes that claim 144 megapixels: Pillow reads the size before any pixel."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    data = zlib.compress(row * 8)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


SVG_WITH_SCRIPT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.cookie)</script><rect width='10' height='10'/></svg>\n"
)

HTML_PAGE = b"<!DOCTYPE html><html><body><script>fetch('/api')</script></body></html>"


def elf_executable() -> bytes:
    """The start of a 64-bit Linux program (what `file` calls an ELF executable)."""
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + struct.pack("<HHI", 2, 62, 1) + os.urandom(2000)


def jpeg_with_zip() -> bytes:
    """A JPEG with a zip archive glued on: opens as a photo and as an archive (GIFAR-style polyglot)."""
    archive = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("readme.txt", "a second file hidden in the photo")
    return jpeg() + archive.getvalue()


def pdf(*, extra: bytes = b"") -> bytes:
    body = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R" + extra + b">>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    return body


def wav(*, seconds: float = 0.1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\x00\x00" * int(8000 * seconds))
    return out.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(*, handler: bytes = b"vide", brand: bytes = b"isom") -> bytes:
    """An ISO base media file with one track of the given handler (b'vide' video, b'soun' sound)."""
    hdlr = _box(b"hdlr", b"\x00" * 4 + b"\x00" * 4 + handler + b"\x00" * 12 + b"track\x00")
    trak = _box(b"trak", _box(b"mdia", hdlr))
    return (
        _box(b"ftyp", brand + b"\x00\x00\x02\x00" + brand + b"mp41")
        + _box(b"moov", trak)
        + _box(b"mdat", os.urandom(512))
    )


def _ebml(element_id: int, payload: bytes) -> bytes:
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    size = len(payload)
    assert size < 2**56 - 1
    return id_bytes + (size | (1 << 56)).to_bytes(8, "big") + payload


def webm(*, track_type: int = 2) -> bytes:
    """A WebM with one track: 1 video, 2 audio (a voice note, as MediaRecorder writes it)."""
    header = _ebml(0x1A45DFA3, _ebml(0x4286, b"\x01") + _ebml(0x4282, b"webm"))
    tracks = _ebml(0x1654AE6B, _ebml(0xAE, _ebml(0xD7, b"\x01") + _ebml(0x83, bytes([track_type]))))
    cluster = _ebml(0x1F43B675, _ebml(0xE7, b"\x00") + os.urandom(256))
    return header + _ebml(0x18538067, _ebml(0x1549A966, _ebml(0x2AD7B1, b"\x0f\x42\x40")) + tracks + cluster)


def mp3(*, frames: int = 5) -> bytes:
    """MPEG-1 layer III frames at 128 kbit/s, 44.1 kHz: 417 bytes each."""
    header = b"\xff\xfb\x90\x64"
    return (header + b"\x00" * (417 - 4)) * frames


def ogg_opus() -> bytes:
    packet = b"OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00"
    page = b"OggS\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
    return page + bytes([1, len(packet)]) + packet + os.urandom(200)
