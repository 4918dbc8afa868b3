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
    """The files the ``cases`` globs match below the root, in order, each once.

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
    if not paths:
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
    return list(paths)


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
