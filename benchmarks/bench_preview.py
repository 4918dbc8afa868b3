"""How long ``casesync preview`` takes: the examples, and one CT series of 512 x 512 slices.

    python benchmarks/bench_preview.py [--slices 500]

Per project: ``validate`` from cold (nothing under .casesync: every file hashed and gated),
then the first preview (validation now cached, so this is the rendering: every CT slice in five
windows, as stored plus four CT presets), then a second preview (finds every image on disk and
writes nothing). Wall-clock and this process's CPU seconds (the PHI gate's worker processes are
not in the CPU figure). Data is generated in a
temporary folder from pydicom's bundled CT_small.dcm (tiled to 512 x 512, anonymised by
casesync) and removed afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples" / "tools"))

from slices import SeriesSpec, write_series  # noqa: E402

from casesync.phi.anonymise import anonymise_tree  # noqa: E402
from casesync.preview.build import build_preview  # noqa: E402
from casesync.project.validate import validate_project  # noqa: E402

T = TypeVar("T")

CASE_YAML = """\
title: Preview benchmark
system: Chest
studies:
  - modality: CT
    series:
      - images: ct
        perspective: Axial
"""


def big_series_repo(work: Path, slices: int) -> Path:
    raw, root = work / "raw", work / "big"
    write_series(raw, SeriesSpec("CT_small.dcm", slices, "bench-preview", tile=4))
    anonymise_tree(raw, root / "cases" / "big" / "ct", bytes(32))
    (root / "casesync.yaml").write_text("version: 1\n")
    (root / "cases" / "big" / "case.yaml").write_text(CASE_YAML)
    return root


def timed(run: Callable[[], T]) -> tuple[str, T]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return f"{time.perf_counter() - wall:.2f} s ({time.process_time() - cpu:.2f} s CPU)", result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="casesync-bench-preview-") as temp:
        work = Path(temp)
        examples = work / "examples"
        shutil.copytree(
            HERE.parent / "examples", examples, ignore=shutil.ignore_patterns(".casesync")
        )
        projects = {"examples (46 slices)": examples}
        projects[f"CT, {args.slices} slices of 512 x 512"] = big_series_repo(work, args.slices)
        print("| project | validate, cold | first preview | second preview | images | output |")
        print("|---|---|---|---|---|---|")
        for name, root in projects.items():
            validate, _ = timed(lambda root=root: validate_project(root))
            cold, first = timed(lambda root=root: build_preview(root))
            warm, second = timed(lambda root=root: build_preview(root))
            size = sum(p.stat().st_size for p in (root / ".casesync" / "preview").rglob("*.*"))
            print(
                f"| {name} | {validate} | {cold} | {warm} | "
                f"{first.images_written} then {second.images_written} | {size / 1e6:.0f} MB |"
            )


if __name__ == "__main__":
    main()
