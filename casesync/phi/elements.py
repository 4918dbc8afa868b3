"""Every top-level element of a DICOM file but the pixel bytes, for the PHI gate.

pydicom reads the header up to the pixel data (``stop_before_pixels``); this module goes on from
there: it skips each pixel element by its length (or by walking the item headers of encapsulated
pixel data) and reads whatever follows, so an element placed after the pixel data (a private
tag, a DigitalSignaturesSequence) is checked too, and the pixel bytes are never read.
"""

from __future__ import annotations

import os
import struct
import warnings
from typing import BinaryIO

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset

PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
ITEM, SEQUENCE_DELIMITATION = 0xFFFEE000, 0xFFFEE0DD


def read_after_pixels(handle: BinaryIO, ds: Dataset, unread: list[int], needed: int) -> str | None:
    """Skip the pixel data by its length, read every element after it into ``ds``.

    Returns why the file is truncated or corrupt, else None; ``unread`` gets the tags of the
    pixel elements whose values were skipped. The pixel bytes themselves are never read;
    ``needed`` is how many bytes the first, native pixel data must hold at least.
    """
    implicit, little = ds.original_encoding
    size = os.fstat(handle.fileno()).st_size
    first = True
    while handle.tell() < size:
        start = handle.tell()
        head = handle.read(12)
        if len(head) < 8:
            return "truncated: an element header is cut short"
        group, element = struct.unpack("<HH" if little else ">HH", head[:4])
        tag = group << 16 | element
        if tag not in PIXEL_TAGS:
            handle.seek(start)
            problem = _read_elements(handle, ds, bool(implicit), bool(little))
            if problem:
                return problem
            continue
        unread.append(tag)
        minimum = needed if first else 0
        problem = _skip_pixels(handle, head, bool(implicit), bool(little), size, minimum)
        if problem:
            return problem
        first = False
    return "no pixel data" if first else None


def _read_elements(handle: BinaryIO, ds: Dataset, implicit: bool, little: bool) -> str | None:
    """Read top-level elements up to the next pixel element (or the end) into ``ds``."""
    start = handle.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            part = read_dataset(handle, implicit, little, stop_when=_at_pixels)
    except Exception as exc:  # pydicom raises many types on corrupt input
        return f"elements after the pixel data are corrupt ({type(exc).__name__})"
    if handle.tell() <= start:
        return "elements after the pixel data are corrupt"
    for element in part.elements():
        ds[element.tag] = element
    return None


def _at_pixels(tag: int, vr: str | None, length: int) -> bool:
    return tag in PIXEL_TAGS


def _skip_pixels(
    handle: BinaryIO, head: bytes, implicit: bool, little: bool, size: int, needed: int
) -> str | None:
    """Move past one pixel element's value; catch truncation cheaply."""
    order = "<" if little else ">"
    start = handle.tell() - len(head)
    if implicit or head[4:6] not in (b"OB", b"OW", b"OF", b"OD", b"UN"):
        (length,) = struct.unpack(order + "I", head[4:8])
        value_start = start + 8
    else:
        (length,) = struct.unpack(order + "I", head[8:12])
        value_start = start + 12
    if length == 0xFFFFFFFF:
        handle.seek(value_start)
        return _skip_fragments(handle, order, size)
    if value_start + length > size:
        return "truncated: the pixel data is shorter than its header says"
    if length < needed:
        return "truncated: the pixel data holds fewer bytes than Rows x Columns x frames need"
    handle.seek(value_start + length)
    return None


def _skip_fragments(handle: BinaryIO, order: str, size: int) -> str | None:
    """Walk encapsulated pixel data by its item headers up to the sequence delimiter."""
    while True:
        item = handle.read(8)
        if len(item) < 8:
            return "truncated: encapsulated pixel data has no end"
        group, element, length = struct.unpack(order + "HHI", item)
        tag = group << 16 | element
        if tag == SEQUENCE_DELIMITATION:
            return None
        if tag != ITEM or length == 0xFFFFFFFF or handle.tell() + length > size:
            return "truncated: encapsulated pixel data has no end"
        handle.seek(length, os.SEEK_CUR)
