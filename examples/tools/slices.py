"""Raw (not yet anonymised) DICOM series built from pydicom's bundled test files; no downloads.

Used by ``make_examples.py`` (the example cases) and ``benchmarks/run.py`` (big slices). The
output still carries the source file's patient data on purpose: casesync's own ``anonymise``
is what makes it publishable, exactly as for real scans.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid


@dataclass(frozen=True)
class SeriesSpec:
    """One stack: ``count`` slices of ``source`` with fresh UIDs, numbers and positions."""

    source: str  # a bundled pydicom file, e.g. "CT_small.dcm"
    count: int
    seed: str  # makes the UIDs unique and repeatable
    tile: int = 1  # repeat the image tile x tile times (4 on CT_small gives ~512 KB slices)
    invert: bool = False  # a cheap different "sequence" from the same pixels
    description: str | None = None
    first_instance: int = 1
    blank: tuple[str, ...] = ()  # keywords to empty, as an author does after a gate warning


def bundled(name: str) -> Dataset:
    """A pydicom test file (``download=False``: some are fetched on demand, never here)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        raise FileNotFoundError(f"pydicom does not bundle {name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def write_series(folder: Path, spec: SeriesSpec) -> list[Path]:
    """Write the slices as ``IM-0001.dcm``...; slice i moves one slice thickness along z."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = bundled(spec.source)  # rewritten in place for each slice: every varying field is set
    rows, columns = ds.Rows * spec.tile, ds.Columns * spec.tile
    pixels = _tiled(ds, spec.tile)
    if spec.invert:
        pixels = _inverted(pixels)
    row_bytes = len(pixels) // rows
    ds.Rows, ds.Columns = rows, columns
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[spec.seed, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[spec.seed, "series"])
    if spec.description:
        ds.SeriesDescription = spec.description
    for keyword in spec.blank:
        if keyword in ds:
            ds[keyword].value = None
    thickness = float(ds.get("SliceThickness") or 1.0)
    x, y, z0 = (float(v) for v in ds.ImagePositionPatient)
    paths = []
    for index in range(spec.count):
        number = spec.first_instance + index
        sop_uid = generate_uid(entropy_srcs=[spec.seed, "sop", str(number)])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
        ds.InstanceNumber = number
        z = round(z0 + index * thickness, 4)
        ds.ImagePositionPatient = [x, y, z]
        ds.SliceLocation = z
        # shift the image a row per slice so a stack scrolls like one, not a still frame
        shift = (index % (rows // spec.tile)) * row_bytes
        ds.PixelData = pixels[shift:] + pixels[:shift]
        path = folder / f"IM-{number:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _tiled(ds: Dataset, tile: int) -> bytes:
    """The pixels repeated ``tile`` times across and down (call before changing Rows)."""
    data = bytes(ds.PixelData)
    if tile == 1:
        return data
    width = len(data) // ds.Rows
    rows = [data[r * width : (r + 1) * width] * tile for r in range(ds.Rows)]
    return b"".join(rows) * tile


def _inverted(pixels: bytes) -> bytes:
    """Signed 16-bit little-endian values mirrored within their range (a T1-like look)."""
    values = memoryview(pixels).cast("h")
    top = max(values)
    out = bytearray(len(pixels))
    view = memoryview(out).cast("h")
    for index, value in enumerate(values):
        view[index] = max(0, top - value)
    return bytes(out)
