"""Build small teaching repositories on disk for tests: casesync.yaml, cases, images."""

from __future__ import annotations

import struct
import textwrap
import zlib
from pathlib import Path


def png_bytes(seed: int, size: int = 8) -> bytes:
    """A valid greyscale PNG whose pixels (and so its hash) depend on ``seed``."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    pixels = seed.to_bytes(8, "big") * (size * size // 8 + 1)
    rows = b"".join(b"\x00" + pixels[y * size : (y + 1) * size] for y in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def write_project(root: Path, project_yaml: str = "version: 1\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "casesync.yaml").write_text(project_yaml)
    return root


def write_case(root: Path, folder: str, yaml_text: str) -> Path:
    """Write ``cases/<folder>/case.yaml`` (dedented) and return the case folder."""
    case_dir = root / "cases" / folder
    case_dir.mkdir(parents=True, exist_ok=True)
    (case_dir / "case.yaml").write_text(textwrap.dedent(yaml_text).lstrip("\n"))
    return case_dir


def write_pngs(folder: Path, names: list[str], seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for offset, name in enumerate(names):
        path = folder / name
        path.write_bytes(png_bytes(seed + offset))
        paths.append(path)
    return paths


SIMPLE_CASE = textwrap.dedent(
    """
    title: Acute appendicitis
    system: Gastrointestinal
    diagnostic_certainty: Certain
    age: 34 years
    gender: Female
    body: <p>Discussion</p>
    studies:
      - modality: X-ray
        caption: Frontal
        series:
          - images: xr
"""
).lstrip("\n")


def simple_repo(root: Path, cases: int = 1, images: int = 3) -> Path:
    """A valid repo with ``cases`` X-ray cases of ``images`` PNG slices each."""
    write_project(root)
    for index in range(cases):
        case_dir = write_case(
            root, f"case-{index:02d}", SIMPLE_CASE.replace("appendicitis", f"appendicitis {index}")
        )
        write_pngs(case_dir / "xr", [f"img{n}.png" for n in range(1, images + 1)], seed=index * 100)
    return root
