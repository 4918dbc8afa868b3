"""The gate's truncation check against pydicom's own decoder, on every native file it ships."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import pydicom
import pytest
from phifactory import bundled, bundled_files
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from casesync.phi.gate import check_file

YBR_422 = "SC_ybr_full_422_uncompressed.dcm"


def truncated(path: Path) -> bool:
    return any("truncated" in finding.reason for finding in check_file(path).findings)


def native_files() -> list[tuple[Path, bool]]:
    """Every bundled file with native pixel data, and whether pydicom decodes its pixels."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in bundled_files():
            try:
                ds = pydicom.dcmread(path)
                syntax = UID(ds.file_meta.TransferSyntaxUID)
            except Exception:  # not DICOM, or no meta header: not this test's business
                continue
            if syntax.is_compressed or "PixelData" not in ds:
                continue
            try:
                get_decoder(syntax).as_buffer(ds)
                decodes = True
            except Exception:
                decodes = False
            found.append((path, decodes))
    return found


def test_no_native_file_pydicom_decodes_is_called_truncated() -> None:
    files = native_files()
    assert len(files) >= 50
    assert any(path.name == YBR_422 for path, _ in files)
    wrongly_refused = [path.name for path, decodes in files if decodes and truncated(path)]
    assert wrongly_refused == []


def test_files_pydicom_cannot_decode_for_size_are_called_truncated() -> None:
    undecodable = [path.name for path, decodes in native_files() if not decodes]
    assert "MR_truncated.dcm" in undecodable
    assert truncated(bundled("MR_truncated.dcm"))


def test_ybr_422_is_two_bytes_per_pixel_and_still_checked(tmp_path: Path) -> None:
    """4:2:2 is not simply exempt: one byte short of rows x columns x 2 is still truncated."""
    source = bundled(YBR_422)
    ds = pydicom.dcmread(source)
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    needed = ds.Rows * ds.Columns * 2
    assert len(ds.PixelData) == needed
    assert not truncated(source)
    data = source.read_bytes()
    header = data.rindex(b"\xe0\x7f\x10\x00OB\x00\x00")
    assert struct.unpack_from("<I", data, header + 8)[0] == needed
    short = needed - 2  # stays even, as DICOM values must
    cut = data[: header + 8] + struct.pack("<I", short) + data[header + 12 : header + 12 + short]
    (tmp_path / "short.dcm").write_bytes(cut)
    assert truncated(tmp_path / "short.dcm")


@pytest.mark.parametrize("photometric", ["YBR_FULL_422", "YBR_PARTIAL_422"])
def test_both_422_interpretations_count_two_thirds(tmp_path: Path, photometric: str) -> None:
    ds = pydicom.dcmread(bundled(YBR_422))
    ds.PhotometricInterpretation = photometric
    ds.save_as(tmp_path / "a.dcm")
    assert not truncated(tmp_path / "a.dcm")
    ds.PhotometricInterpretation = "RGB"  # the same bytes as RGB are a third short
    ds.save_as(tmp_path / "b.dcm")
    assert truncated(tmp_path / "b.dcm")
