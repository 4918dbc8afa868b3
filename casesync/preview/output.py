"""Writing the preview folder only when bytes change, through ``casesync.fsutil``.

A repository could hold a symlink at ``.casesync/preview`` (or inside it) that points
elsewhere; ``fsutil`` refuses it rather than writing through it. The preview is regenerated
at will, so its files are not fsynced.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from casesync.fsutil import atomic_write, read_regular


def write_if_changed(path: Path, data: bytes) -> bool:
    """Replace ``path`` atomically unless it already holds ``data``; True when written."""
    try:
        if read_regular(path, None, follow=False) == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data, durable=False)
    return True


def exists_regular(path: Path) -> bool:
    """A cached image counts only as a regular file, never as a symlink."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False
