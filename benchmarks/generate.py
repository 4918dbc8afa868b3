"""Generate benchmark teaching repositories (no downloads): N cases of M small PNG slices.

Also writes a casesync.lock that matches the manifests, as a finished apply would, so that
``casesync plan`` on the result is a no-op: the cost measured is the cost of finding out that
nothing changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from casesync.cli.scaffold import sample_png
from casesync.project.validate import validate_project
from casesync.sync.lockfile import (
    Lock,
    LockedCase,
    LockedFile,
    LockedSeries,
    LockedStudy,
    fingerprints,
    save_lock,
)

CASE_YAML = """\
title: Benchmark case {index}
system: Chest
diagnostic_certainty: Certain
age: 50 years
studies:
  - modality: CT
    caption: Chest CT
    series:
      - images: slices
        perspective: Axial
"""


def png(seed: int, size: int = 16) -> bytes:
    """A small, valid greyscale PNG unique to ``seed``."""
    return sample_png(size, size, seed=seed)


def generate_repo(root: Path, cases: int, files_per_case: int) -> None:
    (root / "cases").mkdir(parents=True, exist_ok=True)
    (root / "casesync.yaml").write_text("version: 1\napi_url: http://127.0.0.1:8787\n")
    for index in range(cases):
        case_dir = root / "cases" / f"case-{index:04d}"
        (case_dir / "slices").mkdir(parents=True, exist_ok=True)
        (case_dir / "case.yaml").write_text(CASE_YAML.format(index=index))
        for slice_index in range(files_per_case):
            (case_dir / "slices" / f"{slice_index:05d}.png").write_bytes(
                png(index * files_per_case + slice_index)
            )


def write_matching_lock(root: Path) -> None:
    """The lockfile a complete apply would have left (fake ids)."""
    result = validate_project(root)
    assert result.manifest is not None, [str(p) for p in result.errors]
    lock = Lock(api_url="http://127.0.0.1:8787")
    next_id = 1
    for case in result.manifest.cases:
        studies = []
        for position, study in enumerate(case.studies, start=2):
            series_list = []
            for series in study.series:
                files = []
                for file in series.files:
                    files.append(LockedFile(file.path, file.size, file.sha256, next_id))
                    next_id += 1
                series_list.append(
                    LockedSeries(
                        series.content_id,
                        series.key,
                        f"job-{next_id}",
                        None,
                        None,
                        fingerprints(series.sent_fields()),
                        files,
                    )
                )
            studies.append(
                LockedStudy(
                    next_id, position, study.key, fingerprints(study.sent_fields()), series_list
                )
            )
        lock.cases[case.key] = LockedCase(
            next_id, "", fingerprints(case.sent_fields()), True, studies
        )
    save_lock(root / "casesync.lock", lock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--files-per-case", type=int, default=200)
    args = parser.parse_args()
    generate_repo(args.root, args.cases, args.files_per_case)
    write_matching_lock(args.root)


if __name__ == "__main__":
    main()
