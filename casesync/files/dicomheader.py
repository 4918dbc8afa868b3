"""The DICOM values slice ordering and duplicate checks need, read from a file's first bytes.

Ordering a series needs InstanceNumber and the position along the slice normal for every
slice. pydicom parses a header in about a millisecond while holding the GIL, which made it
most of the cost of hashing a cold repository. The SOPInstanceUID (meta header first, else
the dataset) lets validation refuse two files of one instance in a series. This reader walks
the top-level elements of the common little-endian encodings up to the pixel data (skipping
nested sequences) and gives up (returns None, so the caller falls back to pydicom) on anything
else: big endian, deflate, elements out of ascending tag order, or a header longer than the
bytes it was given. So where it answers, it answers what pydicom's
``dcmread(stop_before_pixels=True)`` would.
"""

from __future__ import annotations

import struct

IMPLICIT_LITTLE = "1.2.840.10008.1.2"
UNSUPPORTED_SYNTAXES = (
    "1.2.840.10008.1.2.2",  # explicit VR big endian
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.4.95",  # JPIP referenced deflate: the dataset is deflated too
)
LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
INSTANCE_NUMBER = 0x00200013
IMAGE_POSITION = 0x00200032
IMAGE_ORIENTATION = 0x00200037
MEDIA_SOP_INSTANCE_UID = 0x00020003
SOP_INSTANCE_UID = 0x00080018
WANTED = (INSTANCE_NUMBER, IMAGE_POSITION, IMAGE_ORIENTATION, SOP_INSTANCE_UID)
END_OF_META = 0x0002FFFF
PIXEL_DATA = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})  # float, double float, pixel data
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF

SliceKeys = tuple[int | None, float | None, str | None]  # instance, position, SOP UID


def read_slice_keys(head: bytes, whole_file: bool) -> SliceKeys | None:
    """(InstanceNumber, position along the normal, SOPInstanceUID) from the file's first
    bytes, or None when this reader cannot tell (the caller then asks pydicom). ``whole_file``:
    ``head`` is all of it, so running out of bytes means the wanted elements are absent."""
    if head[128:132] != b"DICM":
        return None
    meta = _walk(head, 132, explicit=True, meta=True, whole_file=False)
    if meta is None:
        return None
    values, offset = meta
    syntax = values.get(0x00020010, b"").rstrip(b"\0 ").decode("ascii", "replace")
    if not syntax or syntax in UNSUPPORTED_SYNTAXES:
        return None
    found = _walk(
        head, offset, explicit=syntax != IMPLICIT_LITTLE, meta=False, whole_file=whole_file
    )
    if found is None:
        return None
    dataset, _ = found
    position, orientation = (
        _numbers(dataset.get(IMAGE_POSITION)),
        _numbers(dataset.get(IMAGE_ORIENTATION)),
    )
    along = position_along_normal(position, orientation) if position and orientation else None
    raw = dataset.get(INSTANCE_NUMBER)
    instance = instance_number(raw.decode("ascii", "replace")) if raw is not None else None
    sop_uid = _uid(values.get(MEDIA_SOP_INSTANCE_UID)) or _uid(dataset.get(SOP_INSTANCE_UID))
    return instance, along, sop_uid


def _walk(
    head: bytes, offset: int, *, explicit: bool, meta: bool, whole_file: bool
) -> tuple[dict[int, bytes], int] | None:
    """Top-level element values by tag from ``offset`` to the end of the meta group (``meta``)
    or to the pixel data; None when the bytes run out first, or when a tag is not above the one
    before it (pydicom reads such files in its own way, so it decides)."""
    values: dict[int, bytes] = {}
    size = len(head)
    previous = -1
    unpack = struct.unpack_from
    while offset + 8 <= size:
        # one unpack per element: this loop runs over every element of every slice
        group, element, vr, short = unpack("<HH2sH", head, offset)
        tag = group << 16 | element
        if (tag > END_OF_META) if meta else (tag in PIXEL_DATA):
            return values, offset
        if tag <= previous:
            return None
        previous = tag
        if not explicit:
            start, length = offset + 8, unpack("<I", head, offset + 4)[0]
        elif vr not in LONG_VRS:
            if not vr.isalpha() or not vr.isupper():
                return None  # declared explicit but written implicit: leave it to pydicom
            start, length = offset + 8, short
        elif offset + 12 <= size:
            start, length = offset + 12, unpack("<I", head, offset + 8)[0]
        else:
            return None
        if length == UNDEFINED:
            end = _skip_sequence(head, start, explicit and vr != b"UN")
            if end is None:
                return None
            offset = end
            continue
        if start + length > size:
            return None
        if meta or tag in WANTED:
            values[tag] = head[start : start + length]
        offset = start + length
    # Out of bytes: the elements are absent only if this was the whole file, cleanly ended.
    return (values, offset) if whole_file and offset == size else None


def _header(head: bytes, offset: int, explicit: bool) -> tuple[int, int, bytes] | None:
    """(value start, value length, VR) of the element at ``offset``; None if unreadable."""
    if not explicit:
        return offset + 8, struct.unpack_from("<I", head, offset + 4)[0], b""
    vr = head[offset + 4 : offset + 6]
    if not vr.isalpha() or not vr.isupper():
        return None  # declared explicit but written implicit: leave it to pydicom
    if vr not in LONG_VRS:
        return offset + 8, struct.unpack_from("<H", head, offset + 6)[0], vr
    if offset + 12 > len(head):
        return None
    return offset + 12, struct.unpack_from("<I", head, offset + 8)[0], vr


def _skip_sequence(head: bytes, offset: int, explicit: bool) -> int | None:
    """The offset just past an undefined-length sequence whose first item is at ``offset``
    (items of undefined length are walked element by element); None if the bytes run out."""
    size = len(head)
    while offset + 8 <= size:
        tag = struct.unpack_from("<HH", head, offset)
        length = struct.unpack_from("<I", head, offset + 4)[0]
        offset += 8
        code = tag[0] << 16 | tag[1]
        if code == SEQUENCE_END:
            return offset
        if code != ITEM:
            return None
        if length != UNDEFINED:
            offset += length
            continue
        item_end = _skip_item(head, offset, explicit)
        if item_end is None:
            return None
        offset = item_end
    return None


def _skip_item(head: bytes, offset: int, explicit: bool) -> int | None:
    """The offset just past the item delimiter of an undefined-length item at ``offset``."""
    size = len(head)
    while offset + 8 <= size:
        group, element = struct.unpack_from("<HH", head, offset)
        if group << 16 | element == ITEM_END:
            return offset + 8
        parsed = _header(head, offset, explicit)
        if parsed is None:
            return None
        start, length, vr = parsed
        if length == UNDEFINED:
            end = _skip_sequence(head, start, explicit and vr != b"UN")
        else:
            end = start + length if start + length <= size else None
        if end is None:
            return None
        offset = end
    return None


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


def instance_number(text: str) -> int | None:
    """An InstanceNumber as written: a whole number, also when written ``1.0`` or ``1e0`` (some
    devices do); anything else (``1.5``, several values, text) is None. Both the quick reader
    and the pydicom fallback use this, so a file's slice order never depends on the path."""
    try:
        number = float(text.strip(" \0"))
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


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
