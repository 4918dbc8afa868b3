"""Image formats, told apart by their bytes (never by the file name).

A series sends one ``image_format`` (a MIME type) for all its slices, so every file of a
series must sniff to the same type.
"""

from __future__ import annotations

from pathlib import Path

from casesync.fsutil import open_regular

DICOM = "application/dicom"
PNG = "image/png"
JPEG = "image/jpeg"
GIF = "image/gif"
BMP = "image/bmp"
MP4 = "video/mp4"

SUPPORTED = (DICOM, PNG, JPEG, GIF, BMP, MP4)

# How many leading bytes sniffing needs: the DICOM magic sits after a 128-byte preamble.
SNIFF_BYTES = 132


def sniff_format(head: bytes) -> str | None:
    """The MIME type of a file from its first ``SNIFF_BYTES`` bytes, or None if unknown."""
    if len(head) >= 132 and head[128:132] == b"DICM":
        return DICOM
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"BM") and len(head) >= 14:
        return BMP
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return MP4
    return None


def sniff_file(path: Path) -> str | None:
    """Read just enough of ``path`` to sniff its format."""
    with open_regular(path) as handle:  # a FIFO or a device must not block or stream forever
        return sniff_format(handle.read(SNIFF_BYTES))
