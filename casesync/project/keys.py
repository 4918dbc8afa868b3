"""The case keys of a project, read cheaply (for shell completion): no schema, no validation.

A manifest's key is its top-level ``key:`` when it has one, else its folder relative to the
project root (the same rule validate applies).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from casesync.fsutil import recursive_glob
from casesync.settings import PROJECT_FILE

DEFAULT_CASE_GLOBS = ("cases/**/case.yaml",)
_KEY_LINE = re.compile(r"^key:[ \t]*['\"]?([^'\"#\s]+)", re.MULTILINE)


def case_globs(root: Path) -> tuple[str, ...]:
    """casesync.yaml's ``cases`` patterns, or the default when it names none (or is broken)."""
    try:
        data = yaml.safe_load((root / PROJECT_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return DEFAULT_CASE_GLOBS
    patterns = data.get("cases") if isinstance(data, dict) else None
    if isinstance(patterns, list) and all(isinstance(p, str) for p in patterns):
        return tuple(patterns)
    return DEFAULT_CASE_GLOBS


def case_keys(root: Path) -> list[str]:
    """Every manifest's key, sorted, without duplicates."""
    keys: set[str] = set()
    for pattern in case_globs(root):
        for match in recursive_glob(str(root / pattern)):
            path = Path(match)
            try:
                found = _KEY_LINE.search(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
            keys.add(found.group(1) if found else path.parent.relative_to(root).as_posix())
    return sorted(keys)
