"""Writing the preview folder without following symlinks, and only when bytes change.

A local stand-in for the safe writers of ``casesync/fsutil.py`` (another branch): swap
``write_if_changed`` and ``ensure_dir`` for those when it lands. A repository could hold a
symlink at ``.casesync/preview`` (or inside it) that points elsewhere; writing through it would
overwrite files outside the folder, so a symlink anywhere on the way is refused.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from casesync.errors import ConfigError


def ensure_dir(path: Path, base: Path) -> None:
    """Create ``path`` (inside ``base``) folder by folder, refusing any symlink on the way."""
    relative = path.relative_to(base)
    current = base
    _check_not_symlink(current)
    for part in relative.parts:
        current = current / part
        _check_not_symlink(current)
        if not current.exists():
            current.mkdir()


def _check_not_symlink(path: Path) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISLNK(mode):
        raise ConfigError(
            f"{path} is a symlink; the preview does not write through symlinks",
            hint="remove it or pass --out with a plain folder",
        )
    if not stat.S_ISDIR(mode):
        raise ConfigError(f"{path} is not a folder", hint="remove it or pass another --out")


def write_if_changed(path: Path, data: bytes) -> bool:
    """Replace ``path`` atomically unless it already holds ``data``; True when written.

    ``os.replace`` swaps a symlink at ``path`` itself for the new file, never writing through it.
    """
    try:
        if not path.is_symlink() and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return True


def exists_regular(path: Path) -> bool:
    """A cached image counts only as a regular file, never as a symlink."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False
