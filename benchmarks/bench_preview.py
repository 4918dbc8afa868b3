"""How long ``casesync preview`` takes: the examples, and one CT series of 512 x 512 slices.

    python benchmarks/bench_preview.py [--slices 500]

Each project is previewed twice: cold (nothing under .casesync, so validation hashes and gates
every file and every slice is rendered in five windows: as stored plus four CT presets) and warm
(the second run, which finds every image on disk and writes nothing). Data is generated in a
temporary folder from pydicom's bundled CT_small.dcm (tiled to 512 x 512, anonymised by
casesync) and removed afterwards.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples" / "tools"))

from slices import SeriesSpec, write_series  # noqa: E402

from casesync.phi.anonymise import anonymise_tree  # noqa: E402
from casesync.preview.build import PreviewResult, build_preview  # noqa: E402

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


def timed(root: Path) -> tuple[float, PreviewResult]:
    start = time.perf_counter()
    result = build_preview(root)
    return time.perf_counter() - start, result


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
        print("| project | cold | warm (second run) | images written cold / warm | output |")
        print("|---|---|---|---|---|")
        for name, root in projects.items():
            cold, first = timed(root)
            warm, second = timed(root)
            size = sum(p.stat().st_size for p in (root / ".casesync" / "preview").rglob("*.*"))
            print(
                f"| {name} | {cold:.1f} s | {warm:.2f} s | "
                f"{first.images_written} / {second.images_written} | {size / 1e6:.0f} MB |"
            )


if __name__ == "__main__":
    main()
