"""From a series' ``images`` entry to a safe, ordered list of files and a root slice index.

Paths are resolved relative to the case folder; after following symlinks they must stay inside
the project root and be readable regular files. Folders and globs are put in slice order
(DICOM: InstanceNumber, then position along the slice normal, then natural name order; other
images: natural name order); an explicit list keeps the order the author wrote.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from casesync.hashing import FileFacts

GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Selection:
    """The files an ``images`` entry names, before their content is known."""

    relpaths: list[str]  # posix, relative to the project root
    explicit_order: bool  # a list: keep the author's order
    errors: list[tuple[str, str]]  # (what is wrong, how to fix)


def natural_key(name: str) -> list[object]:
    """``img2`` before ``img10``: digits compare as numbers."""
    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name)]


def select_files(root: Path, case_dir: Path, images: str | list[str]) -> Selection:
    """Expand ``images`` (a folder, a file, or a list of files and globs) safely."""
    entries = [images] if isinstance(images, str) else list(images)
    relpaths: list[str] = []
    errors: list[tuple[str, str]] = []
    for entry in entries:
        if GLOB_CHARS.search(entry):
            matches = sorted(glob.glob(str(case_dir / entry), recursive=True), key=natural_key)
            files = [Path(match) for match in matches if not Path(match).name.startswith(".")]
            if not files:
                errors.append((f"{entry!r} matches no file", "check the pattern"))
        else:
            target = case_dir / entry
            if target.is_dir():
                files = _folder_files(target)
                if not files:
                    errors.append((f"folder {entry!r} holds no image files", "add images"))
            else:
                files = [target]
        for file in files:
            relpath, problem = _safe_relpath(root, file, entry)
            if problem:
                errors.append(problem)
            elif relpath is not None:
                relpaths.append(relpath)
    return Selection(relpaths, explicit_order=isinstance(images, list), errors=errors)


def _folder_files(folder: Path) -> list[Path]:
    with os.scandir(folder) as entries:
        names = [e.name for e in entries if not e.name.startswith(".") and not e.is_dir()]
    return [folder / name for name in sorted(names, key=natural_key)]


def _safe_relpath(root: Path, file: Path, entry: str) -> tuple[str | None, tuple[str, str] | None]:
    label = repr(entry) if Path(entry).name == file.name else f"{entry!r}: {file.name}"
    if not os.path.lexists(file):
        return None, (f"{label} does not exist", "fix the path or add the file")
    resolved = file.resolve()
    if not resolved.is_relative_to(root):
        return None, (
            f"{label} resolves outside the project root",
            "keep images inside the repository (no '..' or symlinks pointing out)",
        )
    if not resolved.is_file():
        return None, (f"{label} is not a regular file", "point at image files")
    if not os.access(resolved, os.R_OK):
        return None, (f"{label} is not readable", "fix its permissions")
    return resolved.relative_to(root).as_posix(), None


def order_slices(relpaths: list[str], facts: dict[str, FileFacts]) -> list[str]:
    """Slice order for a folder or glob: DICOM keys first, then natural file-name order."""

    def key(relpath: str) -> tuple[object, ...]:
        f = facts[relpath]
        return (
            f.instance_number is None,
            f.instance_number or 0,
            f.slice_position is None,
            f.slice_position or 0.0,
            natural_key(Path(relpath).name),
        )

    return sorted(relpaths, key=key)


def resolve_root(
    root_spec: str | int | None, relpaths: list[str], relative_to: Callable[[str], str]
) -> tuple[int | None, str | None]:
    """The root slice as a 0-based index, or an error message."""
    count = len(relpaths)
    if root_spec is None or root_spec == "middle":
        return count // 2, None
    if root_spec == "first":
        return 0, None
    if root_spec == "last":
        return count - 1, None
    if isinstance(root_spec, int):
        if root_spec < count:
            return root_spec, None
        return None, f"root index {root_spec} is out of range: the series has {count} images"
    for index, relpath in enumerate(relpaths):
        if root_spec in (Path(relpath).name, relative_to(relpath)):
            return index, None
    return None, f"root {root_spec!r} is not one of the series' files"
