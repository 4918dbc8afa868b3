"""Confined, bounded file access: the one place casesync opens files it writes or parses.

A repository is untrusted input: a committed symlink must never redirect a write (``.casesync``
or ``apply.lock`` pointing at a file outside the repository), and a FIFO or ``/dev/zero`` named
as a manifest must never hang a CI job or fill its memory. So every write goes through
``atomic_write`` or ``open_nofollow`` (a symlink is refused, never followed), folders casesync
creates are checked component by component (``ensure_dir``), and every file casesync parses is
opened without blocking, checked to be a regular file, and read up to a limit (``read_regular``).
Globs are expanded without ``**`` walking into symlinked folders (``recursive_glob``), so a
symlink loop cannot hang casesync.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

from casesync.errors import ConfigError
from casesync.settings import STATE_DIR

RACY_NS = 2_000_000_000  # a stat this recent may hide a later write (FAT keeps 2 s times)


class UnsafePath(ConfigError):
    """A symlink where casesync writes (or reads its own state): refused, never followed."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"{path} is a symlink; casesync never writes through one",
            hint=f"remove it (rm '{path}'); casesync creates the real file or folder itself",
        )


class NotRegularFile(ConfigError):
    """A FIFO, device, socket or folder where a file to read was expected."""

    def __init__(self, display: str, kind: str) -> None:
        super().__init__(
            f"{display} is not a regular file ({kind})", hint="point at a regular file"
        )
        self.kind = kind


class TooLarge(ConfigError):
    """A file over the size limit for its kind (read no further than the limit)."""

    def __init__(self, display: str, limit: int) -> None:
        super().__init__(
            f"{display} is over the {limit}-byte ({limit / 1024 / 1024:g} MB) limit",
            hint="is it the right file? manifests are short text",
        )


def kind_of(mode: int) -> str:
    """A file type in words, for messages."""
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISLNK, "a symlink"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def refuse_symlink(path: Path) -> None:
    """Raise ``UnsafePath`` when ``path`` itself is a symlink (absent is fine)."""
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise UnsafePath(path)
    except FileNotFoundError:
        pass


def find_symlink(base: Path, path: Path) -> Path | None:
    """The first existing component of ``path`` below ``base`` that is a symlink, if any."""
    current = base
    for part in path.relative_to(base).parts:
        current = current / part
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return current
        except FileNotFoundError:
            return None
    return None


def ensure_dir(base: Path, folder: Path) -> Path:
    """Create ``folder`` (at or below ``base``) if needed; refuse any symlink below ``base``."""
    current = base
    for part in folder.relative_to(base).parts:
        current = current / part
        try:
            os.mkdir(current)
        except FileExistsError:
            mode = os.lstat(current).st_mode
            if stat.S_ISLNK(mode):
                raise UnsafePath(current) from None
            if not stat.S_ISDIR(mode):
                raise ConfigError(
                    f"{current} is not a folder", hint="move it away; casesync keeps state there"
                ) from None
    return folder


def state_folder(root: Path, *parts: str) -> Path:
    """``root/.casesync[/parts...]``, created if needed, none of it a symlink."""
    return ensure_dir(root, root.joinpath(STATE_DIR, *parts))


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symlink as the last component instead of following it."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(path) from None
        raise


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    """Temp file in the same folder, fsync, rename over ``path``, fsync the folder.

    A crash leaves the old file or the new one, never a torn one. ``path`` being a symlink is
    refused (rename would replace the link, silently dropping what it pointed at). ``mode``
    0o600 for secrets: the temp file has it before any byte is written. ``durable=False``
    skips both fsyncs, for output that is regenerated at will (the preview).
    """
    refuse_symlink(path)
    folder = path.parent
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    if not durable:
        return
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def open_regular(path: Path, display: str | None = None, *, follow: bool = True) -> BinaryIO:
    """Open for reading without blocking (a FIFO would), and only if it is a regular file."""
    flags = os.O_RDONLY | os.O_NONBLOCK
    fd = os.open(path, flags | os.O_CLOEXEC) if follow else open_nofollow(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(display or str(path), kind_of(mode))
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular(
    path: Path, limit: int | None, display: str | None = None, *, follow: bool = True
) -> bytes:
    """The whole file, refused when not regular or over ``limit`` bytes (never read past it)."""
    with open_regular(path, display, follow=follow) as handle:
        if limit is None:
            return handle.read()
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(display or str(path), limit)
    return data


def resolves_inside(root: Path, path: Path) -> bool:
    """True when ``path``, after following every symlink, is ``root`` or below it."""
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(f"{root}{os.sep}")


def recursive_glob(pattern: str) -> list[str]:
    """``sorted(glob.glob(pattern, recursive=True))``, except that ``**`` walks real folders only.

    A repository is untrusted, and glob's ``**`` follows symlinked folders: two links to a parent
    folder make its walk exponential. Here a symlinked folder that ``**`` meets is never walked;
    the next component looks into it only when it leads elsewhere, outside the folder ``**``
    walks (so ``cases/**/case.yaml`` still finds a case folder linked from outside, for
    confinement to report), never when it leads into that folder or above it (a repeat, or a
    loop). A literal or ``*`` component still follows a symlink, one step each, so the pattern's
    length bounds the walk. ``missing/**`` matches nothing (as from Python 3.13).
    """
    if not glob.has_magic(pattern):
        folder, name = os.path.split(pattern)
        return [pattern] if _component_matches(folder, name, folders_only=False) else []
    head = pattern  # ends as the folders before the first wildcard, kept as written
    parts: list[str] = []
    while glob.has_magic(head):
        head, part = os.path.split(head)
        parts.insert(0, part)
    paths = [head]
    for index, part in enumerate(parts):
        folders_only = index < len(parts) - 1
        paths = [
            os.path.join(path, name)
            for path in paths
            for name in _component_matches(path, part, folders_only)
        ]
    return sorted(path for path in paths if path)  # '': a leading '**' matching no folder


def _component_matches(folder: str, part: str, folders_only: bool) -> list[str]:
    """What one pattern component matches in ``folder`` (paths below it, for ``**``)."""
    if part == "**":
        here = [""] if not folder or os.path.isdir(folder) else []
        return here + _below(folder, folders_only)
    if not glob.has_magic(part):
        found = os.path.lexists(os.path.join(folder, part)) if part else os.path.isdir(folder)
        return [part] if found else []  # part "": a trailing separator, folders only
    hidden_too = part.startswith(".")
    return [
        entry.name
        for entry in _entries(folder)
        if (hidden_too or not entry.name.startswith("."))
        and fnmatch.fnmatchcase(entry.name, part)
        and (not folders_only or _is_folder(entry))
    ]


def _below(folder: str, folders_only: bool) -> list[str]:
    """The visible paths below ``folder``, walking real folders only; with ``folders_only``, a
    symlinked folder only when it leads elsewhere (``_leads_elsewhere``)."""
    found: list[str] = []
    pending = [""]
    while pending:
        relative = pending.pop()
        for entry in _entries(os.path.join(folder, relative)):
            if entry.name.startswith("."):
                continue
            path = os.path.join(relative, entry.name)
            if _is_folder(entry, follow_symlinks=False):
                pending.append(path)
                found.append(path)
            elif not folders_only or (_is_folder(entry) and _leads_elsewhere(entry.path, folder)):
                found.append(path)
    return found


def _leads_elsewhere(link: str, folder: str) -> bool:
    """True unless ``link`` leads into ``folder`` or to a folder above it (a repeat, a loop)."""
    target, walked = os.path.realpath(link), os.path.realpath(folder)
    return os.path.commonpath([target, walked]) not in (target, walked)


def _entries(folder: str) -> list[os.DirEntry[str]]:
    """A folder's entries; none when it cannot be listed (as with glob, not an error here)."""
    try:
        with os.scandir(folder or os.curdir) as entries:
            return list(entries)
    except OSError:
        return []


def _is_folder(entry: os.DirEntry[str], *, follow_symlinks: bool = True) -> bool:
    """False rather than an error for a link that cannot be followed (a loop, a locked folder)."""
    try:
        return entry.is_dir(follow_symlinks=follow_symlinks)
    except OSError:
        return False
