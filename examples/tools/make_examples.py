"""Regenerate the example images: raw slices in a temp folder, then casesync's own anonymise.

    python examples/tools/make_examples.py

The DICOM series come from pydicom's bundled CT_small.dcm and MR_small.dcm (new UIDs,
instance numbers and positions); the radiograph and the photograph are drawn here. Everything
then goes through ``anonymise_tree`` with a fixed, public key so the output is byte-identical on
every run (a real repository keeps its key secret in ``.casesync/anonymise.key``). The results
are committed, so the demo never needs this script.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from slices import SeriesSpec, write_series  # beside this script (sys.path[0])

from casesync.phi.anonymise import anonymise_tree

EXAMPLES = Path(__file__).resolve().parent.parent
# Public on purpose: only the examples use it. Never reuse it for real images.
EXAMPLE_KEY = hashlib.sha256(b"casesync examples: public key, not for real data").digest()

SERIES = {
    "vertebral-haemangioma/ct/axial": SeriesSpec(
        "CT_small.dcm", 20, "example-ct", blank=("ContrastBolusAgent", "PositionReferenceIndicator")
    ),
    "vestibular-schwannoma/mri/t2-axial": SeriesSpec(
        "MR_small.dcm", 12, "example-mr", description="Ax T2 FSE"
    ),
    "vestibular-schwannoma/mri/t1c-axial": SeriesSpec(
        "MR_small.dcm", 12, "example-mr-c", invert=True, description="Ax T1 post gad"
    ),
}


def png(width: int, height: int, channels: int, pixel: Callable[[int, int], bytes]) -> bytes:
    """An 8-bit greyscale (1) or RGB (3) PNG with no text chunks."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"".join(pixel(x, y) for x in range(width)) for y in range(height))
    color_type = {1: 0, 3: 2}[channels]
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _noise(x: int, y: int) -> int:
    """Deterministic grain in -6..6."""
    return (x * 7919 + y * 104729 + x * y * 31) % 13 - 6


def _inside(x: float, y: float, cx: float, cy: float, rx: float, ry: float) -> float:
    """Normalised distance from an ellipse centre: < 1 inside."""
    return math.hypot((x - cx) / rx, (y - cy) / ry)


def chest_radiograph() -> bytes:
    """A frontal chest radiograph with a coin en face at the thoracic inlet."""

    def pixel(x: int, y: int) -> bytes:
        value = 18.0
        if _inside(x, y, 160, 230, 150, 215) < 1:
            value = 150
            for cx in (92, 228):
                d = _inside(x, y, cx, 215, 58, 130)
                if d < 1 and y < 330:
                    value = 48 + 45 * d**3
                    if (y - 0.006 * (x - 160) ** 2) % 30 < 6:
                        value += 38  # ribs
            if _inside(x, y, 190, 285, 62, 52) < 1:
                value = max(value, 160)  # heart
            if abs(x - 160) < 11:
                value = max(value, 185)  # spine
            if abs(y - 78 - 0.18 * abs(x - 160)) < 5 and 55 < abs(x - 160) < 120:
                value = max(value, 200)  # clavicles
        if math.hypot(x - 161, y - 96) < 15:
            value = 250 - 12 * (math.hypot(x - 161, y - 96) > 13)  # the coin, rim a touch darker
        return bytes((max(0, min(255, int(value) + _noise(x, y))),))

    return png(320, 384, 1, pixel)


def coin_photograph() -> bytes:
    """The retrieved coin on a green drape, lit from the top left."""

    def pixel(x: int, y: int) -> bytes:
        r = math.hypot(x - 128, y - 96)
        if r < 62:
            light = 1.15 - 0.35 * ((x - 70) + (y - 40)) / 180
            rim = 0.8 if r > 56 else 1.0
            base = (184, 115, 51)
            return bytes(max(0, min(255, int(c * light * rim) + _noise(x, y))) for c in base)
        shade = 1 - 0.25 * y / 192
        return bytes(int(c * shade) + _noise(y, x) % 4 for c in (40, 112, 98))

    return png(256, 192, 3, pixel)


PICTURES: dict[str, Callable[[], bytes]] = {
    "coin-ingestion/xray/frontal.png": chest_radiograph,
    "coin-ingestion/photo/retrieved-coin.png": coin_photograph,
}


def build(cases: Path) -> None:
    """Write every generated image under ``cases``, replacing the folders this script owns."""
    for folder in {*SERIES, *(Path(p).parent.as_posix() for p in PICTURES)}:
        shutil.rmtree(cases / folder, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "cases"
        for folder, spec in SERIES.items():
            write_series(raw / folder, spec)
        for name, draw in PICTURES.items():
            (raw / name).parent.mkdir(parents=True, exist_ok=True)
            (raw / name).write_bytes(draw())
        report = anonymise_tree(raw, cases, EXAMPLE_KEY, workers=1)
    if report.skipped:
        raise SystemExit(f"anonymise skipped {report.skipped}")


def main() -> None:
    build(EXAMPLES / "cases")
    print(f"wrote the example images under {EXAMPLES / 'cases'}")


if __name__ == "__main__":
    main()
