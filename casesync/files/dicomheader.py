"""The DICOM values slice ordering and duplicate checks need, read from a file's first bytes.

Ordering a series needs InstanceNumber and the position along the slice normal for every
slice. pydicom parses a header in about a millisecond while holding the GIL, which made it
most of the cost of hashing a cold repository. The SOPInstanceUID (meta header first, else
the dataset) lets validation refuse two files of one instance in a series. This reader walks
the elements of the common little-endian encodings up to group 0020 and gives up (returns
None, so the caller falls back to pydicom) on anything else: big endian, deflate, undefined
lengths, or a header longer than the bytes it was given.
"""

from __future__ import annotations

import struct

IMPLICIT_LITTLE = "1.2.840.10008.1.2"
UNSUPPORTED_SYNTAXES = ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")  # big endian, deflate
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
INSTANCE_NUMBER = 0x00200013
IMAGE_POSITION = 0x00200032
IMAGE_ORIENTATION = 0x00200037
MEDIA_SOP_INSTANCE_UID = 0x00020003
SOP_INSTANCE_UID = 0x00080018
UNDEFINED = 0xFFFFFFFF

SliceKeys = tuple[int | None, float | None, str | None]  # instance, position, SOP UID


def read_slice_keys(head: bytes, whole_file: bool) -> SliceKeys | None:
    """(InstanceNumber, position along the normal, SOPInstanceUID) from the file's first
    bytes, or None when
    this reader cannot tell (the caller then asks pydicom). ``whole_file``: ``head`` is all of
    it, so running out of bytes means the wanted elements are absent."""
    if head[128:132] != b"DICM":
        return None
    meta = _walk(head, 132, explicit=True, stop_after=0x0002FFFF, whole_file=False)
    if meta is None:
        return None
    values, offset = meta
    syntax = values.get(0x00020010, b"").rstrip(b"\0 ").decode("ascii", "replace")
    if not syntax or syntax in UNSUPPORTED_SYNTAXES:
        return None
    explicit = syntax != IMPLICIT_LITTLE
    found = _walk(
        head, offset, explicit=explicit, stop_after=IMAGE_ORIENTATION, whole_file=whole_file
    )
    if found is None:
        return None
    dataset, _ = found
    position, orientation = (
        _numbers(dataset.get(IMAGE_POSITION)),
        _numbers(dataset.get(IMAGE_ORIENTATION)),
    )
    along = position_along_normal(position, orientation) if position and orientation else None
    sop_uid = _uid(values.get(MEDIA_SOP_INSTANCE_UID)) or _uid(dataset.get(SOP_INSTANCE_UID))
    return _instance(dataset.get(INSTANCE_NUMBER)), along, sop_uid


def _walk(
    head: bytes, offset: int, *, explicit: bool, stop_after: int, whole_file: bool
) -> tuple[dict[int, bytes], int] | None:
    """Element values by tag from ``offset`` until a tag beyond ``stop_after``; None when the
    bytes run out first or an element has an undefined length."""
    values: dict[int, bytes] = {}
    size = len(head)
    while offset + 8 <= size:
        group, element = struct.unpack_from("<HH", head, offset)
        tag = group << 16 | element
        if tag > stop_after:
            return values, offset
        if explicit:
            vr = head[offset + 4 : offset + 6]
            if not vr.isalpha() or not vr.isupper():
                return None  # declared explicit but written implicit: leave it to pydicom
            if vr in LONG_VRS:
                if offset + 12 > size:
                    return None
                length = struct.unpack_from("<I", head, offset + 8)[0]
                start = offset + 12
            else:
                length = struct.unpack_from("<H", head, offset + 6)[0]
                start = offset + 8
        else:
            length = struct.unpack_from("<I", head, offset + 4)[0]
            start = offset + 8
        if length == UNDEFINED or start + length > size:
            return None
        values[tag] = head[start : start + length]
        offset = start + length
    # Out of bytes: the elements are absent only if this was the whole file, cleanly ended.
    return (values, offset) if whole_file and offset == size else None


def _numbers(raw: bytes | None) -> list[float] | None:
    if raw is None:
        return None
    try:
        return [float(part) for part in raw.decode("ascii").strip(" \0").split("\\")]
    except (UnicodeDecodeError, ValueError):
        return None


def _uid(raw: bytes | None) -> str | None:
    text = raw.rstrip(b"\0 ").decode("ascii", "replace") if raw else ""
    return text or None


def _instance(raw: bytes | None) -> int | None:
    numbers = _numbers(raw)
    if not numbers or len(numbers) != 1 or not numbers[0].is_integer():
        return None
    return int(numbers[0])


def position_along_normal(position: list[float], orientation: list[float]) -> float | None:
    """ImagePositionPatient projected on the slice normal (row x column direction cosines)."""
    if len(position) != 3 or len(orientation) != 6:
        return None
    row, col = orientation[:3], orientation[3:]
    normal = (
        row[1] * col[2] - row[2] * col[1],
        row[2] * col[0] - row[0] * col[2],
        row[0] * col[1] - row[1] * col[0],
    )
    return sum(p * n for p, n in zip(position, normal, strict=True))
