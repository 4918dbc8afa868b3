"""Decoding and windowing: a known slice against pydicom's own decoding, plus the special cases."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
from phifactory import bundled
from PIL import Image

from casesync.preview import pixels

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CT_SLICE = EXAMPLES / "cases" / "vertebral-haemangioma" / "ct" / "axial" / "IM-0010.dcm"


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def dicom_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1, written out piecewise, to 0..255."""
    low = center - 0.5 - (width - 1) / 2
    high = center - 0.5 + (width - 1) / 2
    linear = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255
    return np.rint(np.where(values <= low, 0, np.where(values > high, 255, linear)))


def modality_values(ds: pydicom.Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_ct_slice_matches_pydicom_decoding_for_each_preset() -> None:
    ds = pydicom.dcmread(CT_SLICE)
    rendered = pixels.render_dicom(CT_SLICE, (pixels.FILE_WINDOW, *pixels.CT_PRESETS))
    assert rendered.note is None
    hu = modality_values(ds)
    assert hu.min() < -500  # the slope/intercept really moved values into Hounsfield units
    for preset in pixels.CT_PRESETS:
        shown = decode_png(rendered.pngs[preset.name])
        assert shown.shape == ds.pixel_array.shape and shown.dtype == np.uint8
        np.testing.assert_array_equal(shown, dicom_window(hu, preset.center, preset.width))
    # no window in the file: the slice's own range
    low, high = hu.min(), hu.max()
    expected = dicom_window(hu, (low + high) / 2, high - low)
    np.testing.assert_array_equal(decode_png(rendered.pngs["file"]), expected)


def test_the_files_own_window_is_used_first_value_of_several(tmp_path: Path) -> None:
    ds = pydicom.dcmread(CT_SLICE)
    ds.WindowCenter, ds.WindowWidth = [300, 40], [1500, 400]
    ds.save_as(tmp_path / "w.dcm")
    rendered = pixels.render_dicom(tmp_path / "w.dcm", (pixels.FILE_WINDOW,))
    expected = dicom_window(modality_values(ds), 300, 1500)
    np.testing.assert_array_equal(decode_png(rendered.pngs["file"]), expected)


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    ds = pydicom.dcmread(CT_SLICE)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(tmp_path / "m1.dcm")
    window = pixels.CT_PRESETS[0]
    shown = decode_png(pixels.render_dicom(tmp_path / "m1.dcm", (window,)).pngs["soft"])
    expected = 255 - dicom_window(modality_values(ds), window.center, window.width)
    np.testing.assert_array_equal(shown, expected)


def test_rgb_is_shown_as_decoded() -> None:
    path = bundled("SC_rgb_rle.dcm")
    rendered = pixels.render_dicom(path, (pixels.FILE_WINDOW,))
    np.testing.assert_array_equal(
        decode_png(rendered.pngs["file"]), pydicom.dcmread(path).pixel_array
    )


def test_ybr_is_converted_to_rgb_by_pydicom() -> None:
    path = bundled("SC_ybr_full_422_uncompressed.dcm")
    shown = decode_png(pixels.render_dicom(path, (pixels.FILE_WINDOW,)).pngs["file"])
    rgb = decode_png(
        pixels.render_dicom(bundled("SC_rgb_rle.dcm"), (pixels.FILE_WINDOW,)).pngs["file"]
    )
    assert shown.shape == rgb.shape
    assert (
        np.abs(shown.astype(int) - rgb.astype(int)).max() <= 8
    )  # same picture (chroma subsampled)


def test_multi_frame_shows_the_first_frame_with_a_note() -> None:
    path = bundled("SC_rgb_rle_2frame.dcm")
    ds = pydicom.dcmread(path)
    rendered = pixels.render_dicom(path, (pixels.FILE_WINDOW,))
    assert rendered.note == f"first of {ds.NumberOfFrames} frames shown"
    assert decode_png(rendered.pngs["file"]).shape == ds.pixel_array[0].shape


def test_missing_handler_gives_a_placeholder_and_says_which_syntax() -> None:
    rendered = pixels.render_dicom(
        bundled("MR_small_jpeg_ls_lossless.dcm"), (pixels.FILE_WINDOW, pixels.CT_PRESETS[0])
    )
    assert rendered.note is not None and "JPEG-LS Lossless" in rendered.note
    assert rendered.pngs["file"] == rendered.pngs["soft"] == pixels.placeholder_png("no preview")
    assert rendered.info.sop_class == "MR Image Storage"


def test_header_facts_for_the_review_page(tmp_path: Path) -> None:
    ds = pydicom.dcmread(CT_SLICE)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(tmp_path / "b.dcm")
    assert pixels.read_info(tmp_path / "b.dcm") == pixels.SliceInfo("CT Image Storage", "YES", 1)
    assert pixels.read_info(CT_SLICE).burned_in == "absent"
