"""PNG and JPEG metadata: find identifying fields (gate) and strip them losslessly (anonymise).

Only container segments are touched: compressed image data is copied byte for byte, so
stripping never re-encodes and never changes a pixel.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Chunks that carry free text or EXIF; everything else (IHDR, PLTE, IDAT, gAMA, iCCP, ...) stays.
PNG_METADATA_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"})
# PNG text keywords that name a person, a place or a time.
PNG_IDENTIFYING_KEYWORDS = frozenset(
    {"author", "artist", "comment", "description", "title", "copyright", "source",
     "creation time", "disclaimer", "warning", "usercomment", "gps"}
)  # fmt: skip

# JPEG APPn markers that carry EXIF/XMP (APP1), IPTC (APP13) and comments (COM).
JPEG_METADATA_MARKERS = frozenset({0xE1, 0xED, 0xFE})
# EXIF tags that identify: ImageDescription, Artist, DateTimeOriginal, UserComment; GPS IFD.
EXIF_IDENTIFYING = {
    0x010E: "ImageDescription",
    0x013B: "Artist",
    0x9003: "DateTimeOriginal",
    0x9286: "UserComment",
    0x8825: "GPS",
}
EXIF_SUB_IFD = 0x8769


def png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes, bytes]]:
    """(kind, body, whole chunk bytes) for each chunk; stops at a truncated chunk."""
    offset = len(PNG_SIGNATURE)
    while offset + 12 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        end = offset + 12 + length
        if end > len(data):
            return
        yield data[offset + 4 : offset + 8], data[offset + 8 : end - 4], data[offset:end]
        offset = end


def jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, whole segment bytes) up to start-of-scan, then (0xDA, rest of the file)."""
    offset = 2  # after SOI
    yield 0xD8, data[:2]
    while offset + 4 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if marker == 0xDA:
            yield marker, data[offset:]
            return
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        yield marker, data[offset : offset + 2 + length]
        offset += 2 + length
    yield 0xDA, data[offset:]


def metadata_fields(data: bytes) -> list[str]:
    """Names of identifying metadata fields in a PNG or JPEG (never their values)."""
    if data.startswith(PNG_SIGNATURE):
        return _png_fields(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_fields(data)
    return []


def _png_fields(data: bytes) -> list[str]:
    fields: list[str] = []
    for kind, body, _ in png_chunks(data):
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            keyword = body.split(b"\x00", 1)[0].decode("latin-1")
            if keyword.lower() in PNG_IDENTIFYING_KEYWORDS:
                fields.append(f"PNG {kind.decode()} {keyword}")
        elif kind == b"eXIf":
            fields.extend(f"EXIF {name}" for name in _exif_fields(body))
    return fields


def _jpeg_fields(data: bytes) -> list[str]:
    fields: list[str] = []
    for marker, segment in jpeg_segments(data):
        body = segment[4:]
        if marker == 0xE1 and body.startswith(b"Exif\x00\x00"):
            fields.extend(f"EXIF {name}" for name in _exif_fields(body[6:]))
        elif marker == 0xE1 and b"http://ns.adobe.com/xap/1.0/" in body[:64]:
            fields.append("XMP packet")
        elif marker == 0xED:
            fields.append("IPTC/Photoshop block")
        elif marker == 0xFE:
            fields.append("JPEG comment")
    return fields


def _exif_fields(tiff: bytes) -> list[str]:
    """Identifying tags in IFD0 and the EXIF sub-IFD of a TIFF-structured EXIF block."""
    if tiff[:2] not in (b"II", b"MM") or len(tiff) < 8:
        return ["EXIF block (unreadable)"] if tiff else []
    order = "<" if tiff[:2] == b"II" else ">"
    found: list[str] = []
    pending = [struct.unpack(order + "I", tiff[4:8])[0]]
    seen: set[int] = set()
    while pending:
        ifd = pending.pop()
        if ifd in seen or ifd + 2 > len(tiff):
            continue
        seen.add(ifd)
        (count,) = struct.unpack(order + "H", tiff[ifd : ifd + 2])
        for index in range(count):
            entry = tiff[ifd + 2 + 12 * index : ifd + 14 + 12 * index]
            if len(entry) < 12:
                break
            tag = struct.unpack(order + "H", entry[:2])[0]
            if tag in EXIF_IDENTIFYING:
                found.append(EXIF_IDENTIFYING[tag])
            elif tag == EXIF_SUB_IFD:
                pending.append(struct.unpack(order + "I", entry[8:12])[0])
    return found


def strip_metadata(data: bytes) -> bytes:
    """The same PNG or JPEG without text, EXIF, XMP, IPTC or comment segments."""
    if data.startswith(PNG_SIGNATURE):
        kept = [chunk for kind, _, chunk in png_chunks(data) if kind not in PNG_METADATA_CHUNKS]
        return PNG_SIGNATURE + b"".join(kept)
    if data.startswith(b"\xff\xd8"):
        return b"".join(
            segment
            for marker, segment in jpeg_segments(data)
            if marker not in JPEG_METADATA_MARKERS
        )
    return data
