"""``Problem``: one thing wrong with the input, as every layer reports it (file:line:col).

It lives on its own because YAML loading, schema checks, file selection, the PHI gate's
report lines and the renderers all make or show problems; none of them owns the idea.
"""

from __future__ import annotations

from dataclasses import dataclass

from casesync.wording import with_hint


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located and explained (never a traceback)."""

    file: str
    line: int
    col: int
    message: str
    hint: str | None = None
    severity: str = "error"
    order: int = 0  # among problems at one place (the PHI gate's lines: names and IDs first)
    code: str = "invalid"  # the rule's stable name (README, "Problem codes"); every site sets it

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}: {self.severity}"
        return f"{where}: {with_hint(self.message, self.hint)}"

    def sort_key(self) -> tuple[str, int, int, int, str]:
        return (self.file, self.line, self.col, self.order, self.message)
