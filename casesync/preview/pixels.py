"""One image file to display-ready bytes: DICOM decoded and windowed to 8 bits, other images as is.

numpy and Pillow are imported here only, and this module is imported only by ``casesync preview``,
so other commands never pay for them. Windowing follows the DICOM linear VOI function (PS3.3
C.11.2.1.2) on modality values (rescale slope/intercept applied); MONOCHROME1 is inverted after
windowing; colour (RGB, and YBR which pydicom converts to RGB) is shown as decoded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
from PIL import Image, ImageDraw
from pydicom.multival import MultiValue
from pydicom.uid import UID

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pydicom.dataset import Dataset


@dataclass(frozen=True)
class Window:
    """A window/level preset; ``center``/``width`` None means the file's own window."""

    name: str
    label: str
    center: float | None = None
    width: float | None = None

    @property
    def params(self) -> str:
        return f"{self.name}:{self.center}:{self.width}"


FILE_WINDOW = Window("file", "As stored")
CT_PRESETS = (
    Window("soft", "Soft tissue (W400 L40)", 40, 400),
    Window("lung", "Lung (W1500 L-600)", -600, 1500),
    Window("bone", "Bone (W1800 L400)", 400, 1800),
    Window("brain", "Brain (W80 L40)", 40, 80),
)


@dataclass(frozen=True)
class SliceInfo:
    """What the review page shows beside a DICOM slice (no patient data)."""

    sop_class: str
    burned_in: str  # YES, NO, or "absent"
    frames: int


def read_info(path: Path) -> SliceInfo:
    """Header only (no pixel data is read)."""
    return _info(pydicom.dcmread(path, stop_before_pixels=True, force=True))


def _info(ds: Dataset) -> SliceInfo:
    sop = ds.get("SOPClassUID")
    sop_class = UID(str(sop)).name if sop else "absent"
    burned = str(ds.get("BurnedInAnnotation", "")).strip().upper() or "absent"
    return SliceInfo(sop_class, burned, int(ds.get("NumberOfFrames", 1) or 1))


@dataclass(frozen=True)
class Rendered:
    """The PNG of every requested window, a note when decoding failed, and the header facts."""

    pngs: dict[str, bytes]
    note: str | None
    info: SliceInfo


def render_dicom(path: Path, windows: tuple[Window, ...]) -> Rendered:
    """Decode once, window once per preset; a file that cannot be decoded gets a placeholder."""
    ds = pydicom.dcmread(path, force=True)
    info = _info(ds)
    try:
        pixels = _first_frame(ds.pixel_array, ds, info.frames)
    except Exception as exc:  # any decoder failure on arbitrary input becomes a placeholder
        png = placeholder_png("no preview")
        return Rendered({window.name: png for window in windows}, _decode_note(ds, exc), info)
    note = f"first of {info.frames} frames shown" if info.frames > 1 else None
    arrays = display_arrays(pixels, ds, windows)
    return Rendered({name: encode_png(array) for name, array in arrays.items()}, note, info)


def _first_frame(array: NDArray[Any], ds: Dataset, frames: int) -> NDArray[Any]:
    return array[0] if frames > 1 else array


def _decode_note(ds: Dataset, exc: Exception) -> str:
    syntax = getattr(ds.get("file_meta"), "TransferSyntaxUID", None)
    if syntax is not None and UID(str(syntax)).is_compressed:
        return (
            f"cannot decode {UID(str(syntax)).name}: no pixel data handler for it is installed "
            "(e.g. pip install pylibjpeg pylibjpeg-libjpeg); the upload is not affected"
        )
    return f"cannot decode the pixel data ({type(exc).__name__})"


def display_arrays(
    pixels: NDArray[Any], ds: Dataset, windows: tuple[Window, ...]
) -> dict[str, NDArray[np.uint8]]:
    """8-bit greyscale (one per window) or RGB (as decoded) arrays for one frame.

    Integer pixels go through a lookup table built over their range, so each extra window
    costs one indexing pass instead of floating-point arithmetic over the whole slice.
    """
    if pixels.ndim == 3:
        rgb = _colour_to_uint8(pixels)
        return {window.name: rgb for window in windows}
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    invert = str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"
    if pixels.dtype.kind in "iu":
        low = int(pixels.min())
        domain = np.arange(low, int(pixels.max()) + 1, dtype=np.float64) * slope + intercept
        index = np.subtract(pixels, low, dtype=np.int32)
    else:
        domain = pixels.astype(np.float64) * slope + intercept
        index = None
    shown = {}
    for window in windows:
        out = apply_window(domain, *_window_values(ds, window, domain))
        out = 255 - out if invert else out
        shown[window.name] = out[index] if index is not None else out
    return shown


def apply_window(values: NDArray[np.float64], center: float, width: float) -> NDArray[np.uint8]:
    """DICOM linear windowing to 0..255."""
    width = max(width, 1.0)
    scaled = ((values - (center - 0.5)) / (width - 1 if width > 1 else 1) + 0.5) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _window_values(ds: Dataset, window: Window, values: NDArray[np.float64]) -> tuple[float, float]:
    if window.center is not None and window.width is not None:
        return window.center, window.width
    center, width = _first_value(ds.get("WindowCenter")), _first_value(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        return center, width
    low, high = float(values.min()), float(values.max())
    return (low + high) / 2, max(high - low, 1.0)


def _first_value(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _colour_to_uint8(pixels: NDArray[Any]) -> NDArray[np.uint8]:
    if pixels.dtype == np.uint8:
        return pixels
    high = float(pixels.max()) or 1.0
    return np.clip(pixels.astype(np.float64) * (255.0 / high), 0, 255).astype(np.uint8)


def encode_png(array: NDArray[np.uint8]) -> bytes:
    """Fast PNG (compress level 1): pages stay light and a 500-slice series renders quickly."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def placeholder_png(text: str) -> bytes:
    image = Image.new("L", (256, 256), 40)
    ImageDraw.Draw(image).text((80, 120), text, fill=220)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
