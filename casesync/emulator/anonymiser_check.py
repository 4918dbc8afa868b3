"""The server's anonymiser check: is a DICOM file a fixed point of Radiopaedia's policy?

What the policy would change is asked of ``casesync.phi.policy.changes``, the one reading of
the policy's semantics, so the emulator rejects exactly what the real server rejects (before,
an independent reading here agreed with the gate's own mistakes). The emulator imports
``casesync.phi`` for this one purpose only; it never imports the client's API code.
"""

from __future__ import annotations

import warnings
from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from casesync.phi.policy import SERVER_READABLE_SYNTAXES, changes

REJECTION = (
    "Validation failed: Uploaded data Was not anonymized, Uploaded data Key {} not anonymized"
)
UNREADABLE = (
    "Validation failed: Uploaded data Was not anonymized, Uploaded data is not readable DICOM"
)


def first_violation(data: bytes) -> str | None:
    """None when the server would accept these bytes, else its rejection message.

    Only DICOM files (``DICM`` after the 128-byte preamble) are checked; PNG, JPEG and other
    images pass. The meta group is not looked at: the policy leaves it untouched. A file the
    server could not process (no pixel data, or cut short) is refused as unreadable.
    """
    if data[128:132] != b"DICM":
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's notes on odd values
            dataset = dcmread(BytesIO(data))
            list(dataset)  # parse every value: the server's parser fails on a corrupt one
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError):
        return UNREADABLE
    if str(dataset.file_meta.get("TransferSyntaxUID", "")) not in SERVER_READABLE_SYNTAXES:
        return UNREADABLE  # deflate above all: the server's parser says "Invalid vr type"
    found = changes(dataset)
    if found:
        return REJECTION.format(f"{found[0].tag:08X}")
    return None if _complete_image(dataset) else UNREADABLE


def _complete_image(dataset: Dataset) -> bool:
    """pydicom reads truncated files without complaint; the server's processing would not."""
    if "PixelData" not in dataset:
        return False
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        return True
    try:
        frames = int(dataset.get("NumberOfFrames") or 1)
        samples = int(dataset.get("SamplesPerPixel") or 1)
        if str(dataset.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
            samples = 2  # 4:2:2 stores two samples per pixel, not three
        expected = dataset.Rows * dataset.Columns * samples * frames * dataset.BitsAllocated // 8
    except (AttributeError, TypeError, ValueError):
        return False
    return bool(len(dataset.PixelData) >= expected)
