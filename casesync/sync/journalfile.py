"""The journal file: append-only JSON lines, each fsynced, each checked when read back.

What the lines mean (intents, results, the typed records they carry) is ``journal``'s; this
module only keeps the bytes safe: a write never leaves a torn line, a torn last line (a kill
mid-write) is dropped, and any other line casesync did not write is refused with its number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Literal

from casesync.errors import LockfileError
from casesync.fsutil import atomic_write, ensure_dir, open_nofollow, read_regular
from casesync.sync.lockfile import (
    BadField,
    parse_case,
    want,
    want_fields,
    want_id,
    want_optional,
)

Kind = Literal["case", "study", "series", "adopt", "forget"]
REMOTE_KINDS: tuple[Kind, ...] = ("case", "study", "series")  # a request to the server
LOCAL_KINDS: tuple[Kind, ...] = ("adopt", "forget")  # the user's word about the site: no request
KINDS = REMOTE_KINDS + LOCAL_KINDS
LINE_TYPES = ("intent", "done", "not-created")


class Journal:
    """Append-only lines, each fsynced before the call returns."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: dict[str, Any]) -> None:
        """Write and fsync one line; on failure cut the file back, so no torn line is left."""
        ensure_dir(self.path.parent.parent, self.path.parent)  # .casesync: not a symlink
        line = json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n"
        fd = open_nofollow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            start = os.fstat(fd).st_size
            try:
                left = memoryview(line.encode())
                while left:
                    left = left[os.write(fd, left) :]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)

    def entries(self) -> list[tuple[int, dict[str, Any]]]:
        """Every line with its number, checked; a torn last line (killed mid-write) is left out."""
        try:
            data = read_regular(self.path, None, str(self.path), follow=False)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise LockfileError(
                f"cannot read {self.path} ({exc.strerror})", hint="fix its permissions"
            ) from None
        lines = data.split(b"\n")
        torn = lines.pop()  # empty when the file ends with a newline, as every write does
        entries = [(number, self._line(number, line)) for number, line in enumerate(lines, 1)]
        if torn:
            with contextlib.suppress(LockfileError):
                entries.append((len(lines) + 1, self._line(len(lines) + 1, torn)))
        return entries

    def _line(self, number: int, line: bytes) -> dict[str, Any]:
        try:
            entry = json.loads(line.decode("utf-8"))
            _check_entry(entry)
        except UnicodeDecodeError:
            raise self.corrupt(number, "it is not UTF-8 text") from None
        except BadField as exc:
            raise self.corrupt(number, str(exc)) from None
        except (ValueError, RecursionError):
            raise self.corrupt(number, "it is not a JSON line") from None
        return dict(entry)

    def corrupt(self, number: int, problem: str) -> LockfileError:
        return LockfileError(
            f"{self.path} line {number} is corrupt: {problem}",
            hint="casesync did not write it: correct or remove that line, keeping every other; "
            "never delete the journal while creates are unsettled (it holds remote ids)",
        )

    def rewrite(self, entries: list[dict[str, Any]]) -> None:
        """Replace the journal atomically (compaction); no entries removes it."""
        if not entries:
            self.path.unlink(missing_ok=True)
            return
        text = "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in entries)
        atomic_write(self.path, text)


def _check_entry(entry: Any) -> None:
    """A journal line as casesync writes it, or ``BadField`` naming what is not."""
    entry = want(entry, "the line", dict)
    if entry.get("t") not in LINE_TYPES:
        raise BadField(f'"t" is {entry.get("t")!r}, not one of {", ".join(LINE_TYPES)}')
    if not want(entry.get("ref"), "ref", str):
        raise BadField("ref is empty")
    if entry["t"] == "done":
        want(entry.get("remote"), "remote", dict)
    if entry["t"] != "intent":
        return
    kind = entry.get("kind")
    if kind not in KINDS:
        raise BadField(f"kind is {kind!r}, not one of {', '.join(KINDS)}")
    if not want(entry.get("case"), "case", str):
        raise BadField("case is empty")
    want(entry.get("label"), "label", str)
    try:
        dt.datetime.fromisoformat(want(entry.get("at"), "at", str))
    except ValueError:
        raise BadField(f"at is {entry['at']!r}, not a time") from None
    _check_record(kind, want(entry.get("record"), "record", dict))


def _check_record(kind: str, record: dict[str, Any]) -> None:
    """The future lock entry: everything ``fold`` reads, with the types the lock needs."""
    if kind == "adopt":
        try:
            parse_case(record.get("entry"), "record.entry")
        except (BadField, LockfileError) as exc:
            raise BadField(str(exc)) from None
        return
    if kind == "forget":
        want_id(record.get("case_id"), "record.case_id")
        return
    want_fields(record.get("fields"), "record.fields")
    if kind == "case":
        want(record.get("title"), "record.title", str)
        return
    want_id(record.get("case_id"), "record.case_id")
    want_optional(record.get("key"), "record.key", str)
    if kind == "study":
        want(record.get("position"), "record.position", int)
        return
    want_id(record.get("study_id"), "record.study_id")
    want(record.get("content_id"), "record.content_id", str)
    for n, file in enumerate(want(record.get("files"), "record.files", list)):
        where = f"record.files[{n}]"
        want(want(file, where, dict).get("path"), f"{where}.path", str)
        want(file.get("size"), f"{where}.size", int)
        want(file.get("sha256"), f"{where}.sha256", str)
        if file.get("upload_id") is not None:
            want_id(file["upload_id"], f"{where}.upload_id")
