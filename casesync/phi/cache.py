"""Gate results cached by content hash, so an unchanged file is checked once per rule set."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from casesync.files.cachedb import open_cache
from casesync.phi.findings import RULESET_VERSION, Finding

CACHE_FILE = "phi.sqlite"  # under the project's .casesync/cache (validate and check-phi)
# sqlite limits the number of parameters per statement; stay well below it.
BATCH = 500


def _finding(item: dict[str, str]) -> Finding:
    return Finding(**item)  # type: ignore[arg-type]


class PhiCache:
    """A sqlite file mapping (sha256, rule-set version, burned-in opt-in) to findings.

    Rows from other rule-set versions are dropped on open: they can never match again.
    """

    def __init__(self, path: Path, ruleset: str | None = None) -> None:
        self.ruleset = ruleset or RULESET_VERSION
        self.db = open_cache(
            path,
            [
                (
                    "CREATE TABLE IF NOT EXISTS phi (sha256 TEXT, ruleset TEXT, reviewed INTEGER,"
                    " findings TEXT, PRIMARY KEY (sha256, ruleset, reviewed))",
                    (),
                ),
                ("DELETE FROM phi WHERE ruleset != ?", (self.ruleset,)),
                # whole series known to have no finding at all: one row instead of one per slice
                (
                    "CREATE TABLE IF NOT EXISTS clean_series (content_id TEXT, ruleset TEXT,"
                    " reviewed INTEGER, PRIMARY KEY (content_id, ruleset, reviewed))",
                    (),
                ),
                ("DELETE FROM clean_series WHERE ruleset != ?", (self.ruleset,)),
            ],
            threads=True,
        )

    def get_many(self, hashes: Sequence[str], reviewed: bool) -> dict[str, tuple[Finding, ...]]:
        """The cached findings of every hash that has them."""
        found: dict[str, tuple[Finding, ...]] = {}
        unique = list(dict.fromkeys(hashes))
        for start in range(0, len(unique), BATCH):
            batch = unique[start : start + BATCH]
            marks = ",".join("?" * len(batch))
            rows = self.db.execute(
                f"SELECT sha256, findings FROM phi WHERE ruleset = ? AND reviewed = ?"
                f" AND sha256 IN ({marks})",
                (self.ruleset, int(reviewed), *batch),
            )
            for sha256, text in rows:  # most files are clean: skip parsing "[]"
                found[sha256] = () if text == "[]" else tuple(map(_finding, json.loads(text)))
        return found

    def put_many(self, entries: Sequence[tuple[str, tuple[Finding, ...]]], reviewed: bool) -> None:
        rows = [
            (sha256, self.ruleset, int(reviewed), json.dumps([vars(f) for f in findings]))
            for sha256, findings in entries
        ]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO phi VALUES (?, ?, ?, ?)", rows)

    def clean_series(self, reviewed: bool) -> set[str]:
        """Content ids of series whose every file had no finding under this rule set."""
        rows = self.db.execute(
            "SELECT content_id FROM clean_series WHERE ruleset = ? AND reviewed = ?",
            (self.ruleset, int(reviewed)),
        )
        return {content_id for (content_id,) in rows}

    def mark_clean_series(self, content_ids: Sequence[str], reviewed: bool) -> None:
        rows = [(content_id, self.ruleset, int(reviewed)) for content_id in content_ids]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO clean_series VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> PhiCache:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
