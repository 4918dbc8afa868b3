"""Reading every element but the pixel bytes: after native and encapsulated pixel data."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from phifactory import OPTIONS, bundled, clean_ct, write
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from casesync.phi.anonymise import anonymise_dataset
from casesync.phi.elements import read_after_pixels


class CountingFile(io.FileIO):
    """A file that counts the bytes read from it."""

    total = 0

    def read(self, size: int = -1, /) -> bytes:
        data = super().read(size)
        self.total += len(data or b"")
        return data or b""


def with_trailing_elements(ds: Dataset) -> Dataset:
    item = Dataset()
    item.add_new(0x00100010, "PN", "Doe^Jane")
    ds.add_new(0xFFFAFFFA, "SQ", Sequence([item]))
    ds.private_block(0x7FE1, "ACME", create=True).add_new(0x01, "LO", "secret")
    return ds


def read(path: Path, needed: int = 0) -> tuple[Dataset, list[int], str | None, int]:
    with CountingFile(path) as handle:
        ds = pydicom.dcmread(handle, stop_before_pixels=True)
        unread: list[int] = []
        problem = read_after_pixels(handle, ds, unread, needed)
        return ds, unread, problem, handle.total


@pytest.mark.parametrize("name", ["CT_small.dcm", "JPEG2000.dcm"])
def test_elements_after_the_pixels_are_read_and_the_pixels_are_not(
    name: str, tmp_path: Path
) -> None:
    ds = pydicom.dcmread(bundled(name))
    anonymise_dataset(ds, OPTIONS)
    path = write(with_trailing_elements(ds), tmp_path / name)
    header, unread, problem, total = read(path)
    assert problem is None and unread == [0x7FE00010]
    assert {0xFFFAFFFA, 0x7FE10010, 0x7FE11001} <= set(header.keys())
    assert header[0xFFFAFFFA].value[0].PatientName == "Doe^Jane"
    assert total < path.stat().st_size - len(ds.PixelData) + 1024


def test_cut_encapsulated_pixel_data_and_short_native_pixels(tmp_path: Path) -> None:
    ds = pydicom.dcmread(bundled("JPEG2000.dcm"))
    data = write(ds, tmp_path / "whole.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-20])
    assert read(tmp_path / "cut.dcm")[2] == "truncated: encapsulated pixel data has no end"
    ct = write(clean_ct(), tmp_path / "ct.dcm")
    size = len(clean_ct().PixelData)
    assert read(ct, needed=size)[2] is None
    assert read(ct, needed=size + 2)[2] == (
        "truncated: the pixel data holds fewer bytes than Rows x Columns x frames need"
    )
    (tmp_path / "no-pixels.dcm").write_bytes(data[: data.index(b"\xe0\x7f\x10\x00")])
    assert read(tmp_path / "no-pixels.dcm")[2] == "no pixel data"
