import dataclasses
import errno
import json
import os
import re
from pathlib import Path

import pytest

import casesync.sync.journal
from casesync.errors import LockfileError, StateWriteError
from casesync.sync.journal import (
    CaseMade,
    CaseRecord,
    Ledger,
    SeriesMade,
    SeriesRecord,
    StudyMade,
    StudyRecord,
    journal_path,
)
from casesync.sync.lockfile import Lock, LockedFile, load_lock, save_lock

API = "http://127.0.0.1:1"


def ledger(root: Path) -> Ledger:
    lock_path = root / "casesync.lock"
    return Ledger(root, lock_path, load_lock(lock_path, API))


CASE_JSON = {"title": "Acute appendicitis", "fields": {"title": "sha256:1"}}
CASE_RECORD = CaseRecord.from_json(CASE_JSON)


def series_record(case_id: int, study_id: int) -> SeriesRecord:
    files = (LockedFile("cases/a/1.png", 3, "aa", 9),)
    return SeriesRecord(case_id, study_id, "sha256:c", None, {}, files)


def test_results_reach_the_lock_as_they_happen(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    case = book.begin("a", "case", CASE_RECORD)
    book.finish(case, CaseMade(7, "2026-01-01T00:00:00.000Z"))
    study_record = StudyRecord(7, 2, None, {})
    study = book.begin("a", "study 1", study_record)
    book.finish(study, StudyMade(70))
    series = book.begin("a", "study 1 series 1", series_record(7, 70))
    book.finish(series, SeriesMade("j1"))

    saved = load_lock(tmp_path / "casesync.lock", API)
    assert saved.cases["a"].case_id == 7
    assert saved.cases["a"].studies[0].study_id == 70
    assert saved.cases["a"].studies[0].series[0].job_id == "j1"
    assert saved.cases["a"].studies[0].series[0].files[0].upload_id == 9


def test_a_result_journaled_but_not_in_the_lock_is_folded_on_recovery(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    intent = book.begin("a", "case", CASE_RECORD)
    # the process dies between the journal's done line and the lock write
    book.journal.append({"t": "done", "ref": intent.ref, "remote": {"case_id": 7}})

    again = ledger(tmp_path)
    assert again.recover() == []
    assert load_lock(tmp_path / "casesync.lock", API).cases["a"].case_id == 7


def test_an_intent_without_result_stays_open_across_runs(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.finish(book.begin("a", "case", CASE_RECORD), CaseMade(7))
    book.begin("a", "study 2", StudyRecord(7, 3, None, {}))

    open_intents = ledger(tmp_path).recover()
    assert [(i.kind, i.case, i.label) for i in open_intents] == [("study", "a", "study 2")]
    text = open_intents[0].describe()
    assert text.startswith("case a, study 2: a create was sent at ")
    assert "casesync resolve a --study-id N" in open_intents[0].way_out()


def test_not_created_closes_the_intent(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.not_created(book.begin("a", "case", CASE_RECORD), "422 title missing")
    assert ledger(tmp_path).recover() == []
    assert not (tmp_path / "casesync.lock").exists()


def test_compaction_keeps_only_unsettled_intents(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.finish(book.begin("a", "case", CASE_RECORD), CaseMade(7))
    pending = book.begin("b", "case", dataclasses.replace(CASE_RECORD, title="B"))
    book.compact()
    assert len(journal_path(tmp_path).read_text().splitlines()) == 1
    assert [i.ref for i in ledger(tmp_path).recover()] == [pending.ref]

    book.not_created(pending, "not in the listing")
    book.compact()
    assert not journal_path(tmp_path).exists()


def test_a_torn_last_line_is_ignored_but_a_torn_middle_line_is_refused(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.begin("a", "case", CASE_RECORD)
    with journal_path(tmp_path).open("a") as handle:
        handle.write('{"t": "done", "ref"')
    again = ledger(tmp_path)
    assert len(again.recover()) == 1
    again.begin("b", "case", dataclasses.replace(CASE_RECORD, title="B"))  # after the torn line
    assert len(ledger(tmp_path).recover()) == 2

    with journal_path(tmp_path).open("a") as handle:
        handle.write("\n{}\n")
    with pytest.raises(LockfileError, match="corrupt"):
        ledger(tmp_path).recover()


def test_folding_twice_changes_nothing(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    intent = book.begin("a", "case", CASE_RECORD)
    book.finish(intent, CaseMade(7))
    before = (tmp_path / "casesync.lock").read_text()
    book.journal.append(intent.to_json())
    book.journal.append({"t": "done", "ref": intent.ref, "remote": {"case_id": 7}})
    ledger(tmp_path).recover()
    assert (tmp_path / "casesync.lock").read_text() == before


def test_a_study_of_a_case_the_lock_lacks_is_refused(tmp_path: Path) -> None:
    book = Ledger(tmp_path, tmp_path / "casesync.lock", Lock(API))
    intent = book.begin("a", "study 1", StudyRecord(7, 2, None, {}))
    with pytest.raises(LockfileError, match="does not hold"):
        book.finish(intent, StudyMade(70))


def test_recovery_removes_temp_files_a_killed_lock_write_left(tmp_path: Path) -> None:
    from casesync.sync.journal import Ledger
    from casesync.sync.lockfile import Lock

    lock_path = tmp_path / "casesync.lock"
    leftover = tmp_path / ".casesync.lock.abc123.tmp"
    leftover.write_text("{half a lock")
    other = tmp_path / ".other.tmp"
    other.write_text("not ours")
    Ledger(tmp_path, lock_path, Lock("https://radiopaedia.org")).recover()
    assert not leftover.exists() and other.exists()


INTENT = {
    "t": "intent",
    "ref": "r1",
    "kind": "case",
    "case": "a",
    "label": "case",
    "at": "2026-01-01T00:00:00.000+00:00",
    "record": CASE_JSON,
}


def _line(**changes: object) -> bytes:
    return (json.dumps({**INTENT, **changes}) + "\n").encode()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (b"[1, 2]\n", "line 1 is corrupt: the line is [1, 2], not an object"),
        (b"{}\n", 'line 1 is corrupt: "t" is None'),
        (b"\xff\xfe{}\n" + _line(), "line 1 is corrupt: it is not UTF-8 text"),
        (b"\n" + _line(), "line 1 is corrupt: it is not a JSON line"),
        (_line(kind="tumour"), "kind is 'tumour'"),
        (_line(at="yesterday"), "at is 'yesterday', not a time"),
        (_line(record={"title": 3, "fields": {}}), "record.title is 3, not a string"),
        (_line(ref=""), "ref is empty"),
        (_line() + b'{"t": "done", "ref": "r1", "remote": 7}\n', "line 2 is corrupt: remote is 7"),
        (_line() + b'{"t": "done", "ref": "r1", "remote": {}}\n', "remote.case_id is null"),
        (
            _line() + b'{"t": "done", "ref": "r1", "remote": {"case_id": "x"}}\n',
            'line 2 is corrupt: remote.case_id is "x", not an integer',
        ),
        (
            _line(
                kind="study", record={"case_id": 7, "position": 1e400, "key": None, "fields": {}}
            ),
            "record.position is inf",
        ),
    ],
)
def test_hostile_journal_lines_are_refused_and_left_alone(
    tmp_path: Path, lines: bytes, message: str
) -> None:
    path = journal_path(tmp_path)
    path.parent.mkdir()
    path.write_bytes(lines)
    with pytest.raises(LockfileError, match=re.escape(message)) as refused:
        ledger(tmp_path).recover()
    assert str(path) in str(refused.value)
    assert "never delete the journal" in str(refused.value.hint)
    assert path.read_bytes() == lines
    assert not (tmp_path / "casesync.lock").exists()


def test_a_torn_last_line_cut_inside_a_character_is_ignored(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.begin("a", "case", dataclasses.replace(CASE_RECORD, title="Ödem"))
    with journal_path(tmp_path).open("ab") as handle:
        handle.write(_line(ref="r2", record={**CASE_JSON, "title": "Ödem"})[:-30] + b"\xc3")
    assert [i.record.title for i in ledger(tmp_path).recover()] == ["Ödem"]


class FailingSaves:
    """``save_lock`` for the ledger: fails while ``full`` is set."""

    def __init__(self) -> None:
        self.full = True

    def __call__(self, path: Path, lock: Lock) -> None:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        save_lock(path, lock)


def test_a_result_stays_journaled_until_a_saved_lock_holds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves = FailingSaves()
    monkeypatch.setattr(casesync.sync.journal, "save_lock", saves)
    book = ledger(tmp_path)
    with pytest.raises(StateWriteError, match="No space left on device") as failed:
        book.finish(book.begin("a", "case", CASE_RECORD), CaseMade(7))
    assert book.write_error is failed.value
    assert "run 'casesync apply' again" in str(failed.value.hint)
    assert (book.open_intents, book.unsaved) == ([], 1)
    book.compact()  # the end of the run: the result must survive it
    assert not (tmp_path / "casesync.lock").exists()

    saves.full = False
    assert ledger(tmp_path).recover() == []  # the next run folds it
    assert load_lock(tmp_path / "casesync.lock", API).cases["a"].case_id == 7
    assert not journal_path(tmp_path).exists()


def test_a_result_the_journal_missed_is_kept_by_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = ledger(tmp_path)
    intent = book.begin("a", "case", CASE_RECORD)
    real_fsync = os.fsync
    calls: list[int] = []

    def journal_full(fd: int) -> None:  # the first fsync is the done line's; the lock's work
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", journal_full)
    book.finish(intent, CaseMade(7))
    monkeypatch.undo()
    assert book.write_error is not None
    assert len(journal_path(tmp_path).read_text().splitlines()) == 1  # no torn done line left
    assert ledger(tmp_path).recover() == []  # the intent is settled: the lock holds its case
    assert load_lock(tmp_path / "casesync.lock", API).cases["a"].case_id == 7


def test_a_failed_intent_write_sends_nothing_and_leaves_no_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = ledger(tmp_path)
    book.begin("a", "case", CASE_RECORD)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StateWriteError, match=r"journal\.jsonl"):
        book.begin("b", "case", dataclasses.replace(CASE_RECORD, title="B"))
    monkeypatch.undo()
    assert [i.case for i in book.open_intents] == ["a"]
    assert [i.case for i in ledger(tmp_path).recover()] == ["a"]


def test_adopting_an_id_another_key_holds_is_refused_before_writing(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.finish(book.begin("a", "case", CASE_RECORD), CaseMade(7))
    other = book.begin("b", "case", CASE_RECORD)
    before = journal_path(tmp_path).read_bytes()
    with pytest.raises(LockfileError, match="case id 7 is already recorded for a"):
        book.finish(other, CaseMade(7))
    assert journal_path(tmp_path).read_bytes() == before
