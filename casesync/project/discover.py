"""Finding the case manifests the ``cases`` globs name, confined to the project root.

A glob reaching outside the root is one problem and nothing it matches is named; a folder the
globs cannot list is a problem too, since its cases would otherwise silently go missing.
"""

from __future__ import annotations

import os
from pathlib import Path

from casesync.fsutil import recursive_glob
from casesync.problems import Problem
from casesync.project.seriesfiles import glob_prefix
from casesync.settings import PROJECT_FILE


def outside_problem(display: str) -> Problem:
    return Problem(
        display,
        1,
        1,
        "resolves outside the project root (a symlink?); it was not read",
        "keep manifests inside the repository: replace the symlink by the file",
        code="outside-root",
    )


def find_case_manifests(
    root: Path, patterns: tuple[str, ...], problems: list[Problem]
) -> list[Path]:
    """The files the ``cases`` globs match below the root, in order, each once (also when a
    symlinked folder names one file twice).

    A pattern reaching outside the root is one problem, and nothing it matches is named; a
    folder the globs cannot list is a problem too (its cases would silently go missing).
    """
    paths: dict[Path, None] = {}
    for pattern in patterns:
        base = Path(os.path.normpath(root / glob_prefix(pattern)))
        if not base.is_relative_to(root):
            problems.append(
                Problem(
                    PROJECT_FILE,
                    1,
                    1,
                    f"cases pattern {pattern!r} reaches outside the project root",
                    "use patterns relative to the root, without '..'",
                    code="outside-root",
                )
            )
            continue
        for match in recursive_glob(str(root / pattern)):
            paths[Path(match)] = None
        for folder in unreadable_folders(root, pattern):
            problems.append(
                Problem(
                    folder.relative_to(root).as_posix(),
                    1,
                    1,
                    "folder cannot be read, so case manifests in it would be missed",
                    "fix its permissions (chmod u+rx)",
                    code="folder-unreadable",
                )
            )
    found = _once_each(root, list(paths), problems)
    if not found:
        problems.append(
            Problem(
                PROJECT_FILE,
                1,
                1,
                "no case manifests found",
                f"patterns: {', '.join(patterns)}",
                code="no-cases",
            )
        )
    return found


def _once_each(root: Path, paths: list[Path], problems: list[Problem]) -> list[Path]:
    """Drop a manifest reached a second time through a symlinked folder (``cases/*/case.yaml``
    with ``cases/b -> a``): read twice, it would be two cases, created twice on the site."""
    first: dict[str, Path] = {}
    kept = []
    for path in paths:
        real = os.path.realpath(path)
        if real not in first:
            first[real] = path
            kept.append(path)
            continue
        problems.append(
            Problem(
                path.relative_to(root).as_posix(),
                1,
                1,
                f"is {first[real].relative_to(root).as_posix()} again, reached through a "
                "symlink: it would be created as a second case",
                "remove the symlink, or narrow casesync.yaml's cases patterns to name it once",
                code="duplicate-manifest",
            )
        )
    return kept


def unreadable_folders(root: Path, pattern: str) -> list[Path]:
    """The folders ``pattern`` would look into that cannot be listed (glob skips them)."""
    found = []
    folders = os.path.join(root, os.path.dirname(pattern), "")  # the final "/": folders only
    for folder in recursive_glob(folders):
        try:
            with os.scandir(folder):
                pass
        except (NotADirectoryError, FileNotFoundError):
            pass
        except OSError:
            found.append(Path(folder))
    return found
