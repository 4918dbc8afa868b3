"""Build small teaching repositories on disk for tests: casesync.yaml, cases, images."""

from __future__ import annotations

import textwrap
from pathlib import Path

from casesync.cli.scaffold import sample_png


def png_bytes(seed: int, size: int = 8) -> bytes:
    """A valid greyscale PNG whose pixels (and so its hash) depend on ``seed``."""
    return sample_png(size, size, seed=seed)


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
