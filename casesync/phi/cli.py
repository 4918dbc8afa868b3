"""The PHI commands behind ``casesync check-phi`` and ``casesync anonymise``, minus flag parsing.

Kept out of ``casesync/cli/app.py`` so that file stays wiring only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from casesync.errors import ConfigError, ValidationFailed
from casesync.fsutil import state_folder
from casesync.phi.anonymise import anonymise_tree, load_or_create_key
from casesync.phi.cache import CACHE_FILE, PhiCache
from casesync.phi.gate import check_files
from casesync.phi.report import expand_paths, render_json, render_text
from casesync.settings import find_project_root

KEY_FILE = "anonymise.key"
SHOW_SKIPPED = 20


def check_phi(paths: list[Path], fmt: str, cache_path: Path | None = None) -> str:
    """The report; raises ``ValidationFailed`` (exit 3) after it is printed if any file fails.

    With ``cache_path`` (the project's PHI cache, the one validate uses), a file whose content
    was already checked under the same rules is not read again.
    """
    files = expand_paths(paths)
    if cache_path is None:
        reports = check_files(files)
    else:
        with PhiCache(cache_path) as cache:
            reports = check_files(files, cache=cache)
    text = render_json(reports) if fmt == "json" else render_text(reports)
    failed = sum(not report.passed for report in reports)
    if failed:
        sys.stdout.write(text)
        raise ValidationFailed(
            f"{failed} of {len(reports)} file(s) failed the PHI gate",
            hint="see the lines above",
        )
    return text


def project_cache_path(start: Path) -> Path | None:
    """The PHI cache of the project around ``start``; None outside a project (no cache)."""
    try:
        root = find_project_root(start)
    except ConfigError:
        return None
    return state_folder(root, "cache") / CACHE_FILE  # no symlink on the way


def default_key_path(start: Path, dst: Path) -> Path:
    """``.casesync/anonymise.key`` in the project around ``start``, else beside DST (that
    ``.casesync`` folder is created if needed, and refused if it is a symlink)."""
    try:
        root = find_project_root(start)
    except ConfigError:
        root = dst.resolve().parent
        root.mkdir(parents=True, exist_ok=True)
    return state_folder(root) / KEY_FILE


@contextmanager
def progress_bar() -> Iterator[Callable[[int, int], None] | None]:
    """A file counter on stderr (TTY only)."""
    if not sys.stderr.isatty():
        yield None
        return
    columns = (TextColumn("anonymising"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("anonymising", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def anonymise(
    src: Path, dst: Path, key_path: Path, keep_series_description: bool, split_frames: bool
) -> str:
    """Run anonymise and describe the outcome (skipped files by name, never by content)."""
    key = load_or_create_key(key_path)
    with progress_bar() as progress:
        report = anonymise_tree(
            src,
            dst,
            key,
            keep_series_description=keep_series_description,
            split_frames=split_frames,
            progress=progress,
        )
    lines = [
        f"wrote {report.written} file(s) to {dst} ({report.unchanged} already up to date, "
        f"{report.non_dicom} PNG/JPEG with metadata stripped); key: {key_path}"
    ]
    lines += [f"skipped {item.path}: {item.reason}" for item in report.skipped[:SHOW_SKIPPED]]
    if len(report.skipped) > SHOW_SKIPPED:
        lines.append(f"... and {len(report.skipped) - SHOW_SKIPPED} more skipped")
    lines.append("next: point the manifest at the new files and run 'casesync validate'")
    return "\n".join(lines) + "\n"
