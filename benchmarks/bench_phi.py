"""Gate and anonymise throughput on typical CT slices (no downloads).

Builds N anonymised copies of pydicom's CT_small.dcm (distinct InstanceNumber, so distinct
content), then times the gate (cold, then from the cache) and anonymise over them.

    /tmp/venv/bin/python benchmarks/bench_phi.py [N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file

from casesync.phi.anonymise import Options, anonymise_dataset, anonymise_tree
from casesync.phi.gate import PhiCache, check_files


def make_slices(folder: Path, count: int) -> list[Path]:
    source = get_testdata_file("CT_small.dcm", download=False)
    assert source is not None
    ds = pydicom.dcmread(source)
    anonymise_dataset(ds, Options(b"b" * 32, keep_series_description=True, split_frames=False))
    paths = []
    for index in range(count):
        ds.InstanceNumber = index + 1
        path = folder / f"slice{index:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def timed(label: str, count: int, action: object) -> None:
    assert callable(action)
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    print(f"{label:<28} {count:>6} files in {seconds:6.2f} s = {count / seconds:8.0f} files/s")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "src").mkdir()
        paths = make_slices(root / "src", count)
        reports: list[object] = []
        timed("gate, 1 process", count, lambda: reports.extend(check_files(paths, workers=1)))
        timed("gate, all cores", count, lambda: check_files(paths))
        with PhiCache(root / "phi.sqlite") as cache:
            timed("gate + hashing, cold cache", count, lambda: check_files(paths, cache=cache))
            timed("gate, warm cache", count, lambda: check_files(paths, cache=cache))
        timed(
            "anonymise, all cores",
            count,
            lambda: anonymise_tree(root / "src", root / "out", b"k" * 32),
        )
        assert all(report.passed for report in check_files(paths))  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
