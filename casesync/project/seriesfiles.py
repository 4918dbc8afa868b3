"""From a series' ``images`` entry to a safe, ordered list of files, a root slice index, and
the typed series (``build_series``: every problem of a series reported in one run).

Paths are resolved relative to the case folder; after following symlinks they must stay inside
the project root and be readable regular files. Folders and globs are put in slice order
(DICOM: InstanceNumber, then position along the slice normal, then natural name order; other
images: natural name order); an explicit list keeps the order the author wrote.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casesync.files.formats import DICOM
from casesync.files.hashing import FileFacts
from casesync.fsutil import recursive_glob
from casesync.problems import Problem
from casesync.project.manifest import ImageFile, Location, SeriesSpec
from casesync.project.yamlload import LoadedYaml
from casesync.wording import plural

GLOB_CHARS = re.compile(r"[*?\[]")
DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Selection:
    """The files an ``images`` entry names, before their content is known."""

    relpaths: list[str]  # posix, relative to the project root
    explicit_order: bool  # a list: keep the author's order
    errors: list[tuple[str, str]]  # (what is wrong, how to fix)


def natural_key(name: str) -> list[object]:
    """``img2`` before ``img10``: digits compare as numbers (text parts at even places)."""
    parts = DIGITS.split(name.casefold())
    parts[1::2] = map(int, parts[1::2])
    return parts


def select_files(root: Path, case_dir: Path, images: str | list[str]) -> Selection:
    """Expand ``images`` (a folder, a file, or a list of files and globs) safely.

    Hot path of a no-op plan (thousands of files): plain strings and ``DirEntry`` data, and
    one ``realpath`` per folder rather than per file. A folder's plain files are not checked
    for access here: ``gather_facts`` checks the ones it must read (the others have not
    changed since they were read).
    """
    root_prefix = str(root) + os.sep
    entries = [images] if isinstance(images, str) else list(images)
    relpaths: list[str] = []
    errors: list[tuple[str, str]] = []
    for entry in entries:
        target = os.path.join(case_dir, entry)
        if GLOB_CHARS.search(entry):
            _expand_glob(root_prefix, target, entry, relpaths, errors)
        elif os.path.isdir(target):
            errors_before = len(errors)
            folder_relpaths = _folder_relpaths(root_prefix, target, entry, errors)
            if folder_relpaths is None:
                errors.append((f"{entry!r} resolves outside the project root", ESCAPE_HINT))
            elif not folder_relpaths and len(errors) == errors_before:
                errors.append((f"folder {entry!r} holds no image files", "add images"))
            else:
                relpaths.extend(folder_relpaths)
        else:
            _check_each(root_prefix, [target], entry, relpaths, errors)
    return Selection(relpaths, explicit_order=isinstance(images, list), errors=errors)


ESCAPE_HINT = "keep files inside the repository (no '..' or symlinks pointing out)"


def glob_prefix(pattern: str) -> str:
    """The folders of ``pattern`` before its first wildcard ("cases/**/case.yaml" -> "cases")."""
    parts = Path(pattern).parts
    literal = list(itertools.takewhile(lambda part: not GLOB_CHARS.search(part), parts))
    if len(literal) == len(parts):
        literal = literal[:-1]  # a plain file name: its folder
    return os.path.join(*literal) if literal else "."


def _expand_glob(
    root_prefix: str, target: str, entry: str, relpaths: list[str], errors: list[tuple[str, str]]
) -> None:
    """Confined before anything is reported: a pattern reaching outside the root is one error,
    and no file outside is ever named (``images: [/etc/*]`` must not list /etc)."""
    base = os.path.normpath(os.path.join(os.path.dirname(target), glob_prefix(entry)))
    if not (base + os.sep).startswith(root_prefix):
        errors.append((f"{entry!r} reaches outside the project root", ESCAPE_HINT))
        return
    matches = sorted(recursive_glob(target), key=natural_key)
    # a glob names files: the folders it also matches (``xr/**`` matches xr/ itself) are not
    # images, and a FIFO or device still fails the regular-file check below
    files = [m for m in matches if not os.path.basename(m).startswith(".") and not os.path.isdir(m)]
    inside = [f for f in files if os.path.realpath(f).startswith(root_prefix)]
    if len(inside) < len(files):
        errors.append(
            (
                f"{entry!r} matches {len(files) - len(inside)} file(s) outside the project root",
                ESCAPE_HINT,
            )
        )
    elif not files:
        errors.append((f"{entry!r} matches no file", "check the pattern"))
    _check_each(root_prefix, inside, entry, relpaths, errors)


def _folder_relpaths(
    root_prefix: str, folder: str, entry: str, errors: list[tuple[str, str]]
) -> list[str] | None:
    """A folder's visible files in natural order; symlinked entries are checked one by one."""
    real_folder = os.path.realpath(folder)
    if not (real_folder + os.sep).startswith(root_prefix):
        return None
    plain: list[str] = []
    linked: set[str] = set()
    try:
        with os.scandir(folder) as scan:
            for item in scan:
                if item.name.startswith("."):
                    continue
                if item.is_symlink():
                    linked.add(item.name)
                elif item.is_file(follow_symlinks=False):
                    plain.append(item.name)
    except OSError as exc:
        errors.append(
            (
                f"folder {entry!r} cannot be read ({exc.strerror})",
                "fix its permissions (chmod u+rx)",
            )
        )
        return []
    relative_folder = real_folder[len(root_prefix) :].replace(os.sep, "/")
    result: list[str] = []
    for name in sorted([*plain, *linked], key=natural_key):
        if name in linked:
            _check_each(root_prefix, [os.path.join(folder, name)], name, result, errors)
        else:
            result.append(f"{relative_folder}/{name}")
    return result


def _check_each(
    root_prefix: str,
    files: list[str],
    entry: str,
    relpaths: list[str],
    errors: list[tuple[str, str]],
) -> None:
    for file in files:
        name = os.path.basename(file)
        label = repr(entry) if os.path.basename(entry) == name else f"{entry!r}: {name}"
        if not os.path.lexists(file):
            errors.append((f"{label} does not exist", "fix the path or add the file"))
            continue
        resolved = os.path.realpath(file)
        if not resolved.startswith(root_prefix):
            errors.append((f"{label} resolves outside the project root", ESCAPE_HINT))
        elif not os.path.isfile(resolved):
            errors.append((f"{label} is not a regular file", "point at a file, not a folder"))
        elif not os.access(resolved, os.R_OK):
            errors.append((f"{label} is not readable", "fix its permissions"))
        else:
            relpaths.append(resolved[len(root_prefix) :].replace(os.sep, "/"))


def confined_file(
    root: Path, base_dir: Path, entry: str
) -> tuple[str | None, list[tuple[str, str]]]:
    """One file named relative to ``base_dir`` under the same rules as images: it exists,
    stays inside the project after following symlinks, is a regular, readable file.
    Returns its posix path relative to ``root``, or None and the errors."""
    found: list[str] = []
    errors: list[tuple[str, str]] = []
    _check_each(str(root) + os.sep, [os.path.join(base_dir, entry)], entry, found, errors)
    return (found[0] if found else None), errors


def order_slices(relpaths: list[str], facts: dict[str, FileFacts]) -> list[str]:
    """Slice order for a folder or glob: DICOM keys first, then the natural name order.

    The input is already in natural name order and the sort is stable, so names need no
    second look.
    """

    def key(relpath: str) -> tuple[bool, int, bool, float]:
        f = facts[relpath]
        return (
            f.instance_number is None,
            f.instance_number or 0,
            f.slice_position is None,
            f.slice_position or 0.0,
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
        return (
            None,
            f"root index {root_spec} is out of range: the series has {plural(count, 'image')}",
        )
    for index, relpath in enumerate(relpaths):
        if root_spec in (Path(relpath).name, relative_to(relpath)):
            return index, None
    return None, f"root {root_spec!r} is not one of the series' files"


@dataclass
class DraftSeries:
    """A series between file selection and content facts."""

    loaded: LoadedYaml
    path: tuple[str | int, ...]
    raw: dict[str, Any]
    case_dir: Path
    relpaths: list[str]
    explicit_order: bool


def build_series(
    draft: DraftSeries, facts: dict[str, FileFacts], problems: list[Problem]
) -> SeriesSpec | None:
    """The typed series; every problem it has is reported in one run (format, duplicates,
    root). A series whose files are usable but whose root or duplicates are wrong is still
    built, so the PHI gate checks it in the same run; its errors keep the manifest from being
    built."""
    where = (*draft.path, "images")
    if not draft.relpaths:
        return None
    found: list[Problem] = []
    unknown = [p for p in draft.relpaths if facts[p].format is None]
    if unknown:
        others = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        found.append(
            draft.loaded.problem(
                where,
                f"{unknown[0]}{others} is not a supported image "
                "(DICOM, PNG, JPEG, GIF, BMP or MP4)",
                "remove it from the series",
                code="unsupported-image",
            )
        )
    formats = sorted({f for p in draft.relpaths if (f := facts[p].format)})
    if len(formats) > 1:
        found.append(
            draft.loaded.problem(
                where,
                f"series mixes formats ({', '.join(formats)})",
                "put each format in its own series",
                code="mixed-formats",
            )
        )
    usable = not found
    found.extend(_duplicates(draft, facts))
    # only DICOM files have slice keys: other folders are already in natural name order
    keep = draft.explicit_order or formats != [DICOM]
    ordered = draft.relpaths if keep else order_slices(draft.relpaths, facts)
    index, error = resolve_root(
        draft.raw.get("root"),
        ordered,
        lambda p: Path(p).relative_to(_case_rel(draft)).as_posix(),
    )
    if index is None:
        found.append(
            draft.loaded.problem((*draft.path, "root"), error or "bad root", code="bad-root")
        )
    problems.extend(found)
    if not usable:
        return None
    line, col = draft.loaded.where(draft.path)
    return SeriesSpec(
        files=tuple(ImageFile(p, facts[p].sha256, facts[p].size) for p in ordered),
        image_format=formats[0],
        root_index=index or 0,
        perspective=draft.raw.get("perspective"),
        specifics=draft.raw.get("specifics"),
        key=draft.raw.get("key"),
        burned_in_reviewed=draft.raw.get("burned_in_annotation") == "reviewed",
        location=Location(draft.loaded.file, line, col),
    )


def _duplicates(draft: DraftSeries, facts: dict[str, FileFacts]) -> list[Problem]:
    """Two files of one series with the same bytes or the same SOPInstanceUID: the site would
    show one image twice or keep only one of them. Names both files, never the UID."""
    found = []
    by_content: dict[str, int] = {}
    by_uid: dict[str, int] = {}
    for index, relpath in enumerate(draft.relpaths):
        fact = facts[relpath]
        first = by_content.setdefault(fact.sha256, index)
        if first != index:
            other = draft.relpaths[first]
            what = (
                f"{relpath} is listed twice"
                if other == relpath
                else f"{relpath} has the same content as {other}"
            )
        elif fact.sop_uid and (first := by_uid.setdefault(fact.sop_uid, index)) != index:
            what = f"{relpath} has the same SOPInstanceUID as {draft.relpaths[first]}"
        else:
            continue
        found.append(
            draft.loaded.problem(
                (*draft.path, "images"),
                f"duplicate image in the series: {what}",
                "remove one of them: each slice must be a distinct image",
                code="duplicate-image",
            )
        )
    return found


def _case_rel(draft: DraftSeries) -> str:
    return Path(draft.loaded.file).parent.as_posix()
