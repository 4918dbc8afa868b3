from pathlib import Path

import pytest

from casesync.errors import LockfileError
from casesync.sync.journal import Ledger, journal_path
from casesync.sync.lockfile import Lock, load_lock

API = "http://127.0.0.1:1"


def ledger(root: Path) -> Ledger:
    lock_path = root / "casesync.lock"
    return Ledger(root, lock_path, load_lock(lock_path, API))


CASE_RECORD = {"title": "Acute appendicitis", "fields": {"title": "sha256:1"}}


def series_record(case_id: int, study_id: int) -> dict[str, object]:
    return {
        "case_id": case_id,
        "study_id": study_id,
        "content_id": "sha256:c",
        "key": None,
        "fields": {},
        "files": [{"path": "cases/a/1.png", "size": 3, "sha256": "aa", "upload_id": 9}],
    }


def test_results_reach_the_lock_as_they_happen(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    case = book.begin("case", "a", "case", CASE_RECORD)
    book.finish(case, {"case_id": 7, "created_at": "2026-01-01T00:00:00.000Z"})
    study_record = {"case_id": 7, "position": 2, "key": None, "fields": {}}
    study = book.begin("study", "a", "study 1", study_record)
    book.finish(study, {"study_id": 70})
    series = book.begin("series", "a", "study 1 series 1", series_record(7, 70))
    book.finish(series, {"job_id": "j1"})

    saved = load_lock(tmp_path / "casesync.lock", API)
    assert saved.cases["a"].case_id == 7
    assert saved.cases["a"].studies[0].study_id == 70
    assert saved.cases["a"].studies[0].series[0].job_id == "j1"
    assert saved.cases["a"].studies[0].series[0].files[0].upload_id == 9


def test_a_result_journaled_but_not_in_the_lock_is_folded_on_recovery(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    intent = book.begin("case", "a", "case", CASE_RECORD)
    # the process dies between the journal's done line and the lock write
    book.journal.append({"t": "done", "ref": intent.ref, "remote": {"case_id": 7}})

    again = ledger(tmp_path)
    assert again.recover() == []
    assert load_lock(tmp_path / "casesync.lock", API).cases["a"].case_id == 7


def test_an_intent_without_result_stays_open_across_runs(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.finish(book.begin("case", "a", "case", CASE_RECORD), {"case_id": 7})
    book.begin("study", "a", "study 2", {"case_id": 7, "position": 3, "key": None, "fields": {}})

    open_intents = ledger(tmp_path).recover()
    assert [(i.kind, i.case, i.label) for i in open_intents] == [("study", "a", "study 2")]
    text = open_intents[0].describe()
    assert text.startswith("case a, study 2: a create was sent at ")
    assert "casesync resolve a --study-id N" in open_intents[0].way_out()


def test_not_created_closes_the_intent(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.not_created(book.begin("case", "a", "case", CASE_RECORD), "422 title missing")
    assert ledger(tmp_path).recover() == []
    assert not (tmp_path / "casesync.lock").exists()


def test_compaction_keeps_only_unsettled_intents(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.finish(book.begin("case", "a", "case", CASE_RECORD), {"case_id": 7})
    pending = book.begin("case", "b", "case", {**CASE_RECORD, "title": "B"})
    book.compact()
    assert len(journal_path(tmp_path).read_text().splitlines()) == 1
    assert [i.ref for i in ledger(tmp_path).recover()] == [pending.ref]

    book.not_created(pending, "not in the listing")
    book.compact()
    assert not journal_path(tmp_path).exists()


def test_a_torn_last_line_is_ignored_but_a_torn_middle_line_is_refused(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    book.begin("case", "a", "case", CASE_RECORD)
    with journal_path(tmp_path).open("a") as handle:
        handle.write('{"t": "done", "ref"')
    again = ledger(tmp_path)
    assert len(again.recover()) == 1
    again.begin("case", "b", "case", {**CASE_RECORD, "title": "B"})  # after the torn line
    assert len(ledger(tmp_path).recover()) == 2

    with journal_path(tmp_path).open("a") as handle:
        handle.write("\n{}\n")
    with pytest.raises(LockfileError, match="corrupt"):
        ledger(tmp_path).recover()


def test_folding_twice_changes_nothing(tmp_path: Path) -> None:
    book = ledger(tmp_path)
    intent = book.begin("case", "a", "case", CASE_RECORD)
    book.finish(intent, {"case_id": 7})
    before = (tmp_path / "casesync.lock").read_text()
    book.journal.append({"t": "intent", **_raw(intent)})
    book.journal.append({"t": "done", "ref": intent.ref, "remote": {"case_id": 7}})
    ledger(tmp_path).recover()
    assert (tmp_path / "casesync.lock").read_text() == before


def test_a_study_of_a_case_the_lock_lacks_is_refused(tmp_path: Path) -> None:
    book = Ledger(tmp_path, tmp_path / "casesync.lock", Lock(API))
    intent = book.begin("study", "a", "study 1", {"case_id": 7, "position": 2, "key": None})
    with pytest.raises(LockfileError, match="does not hold"):
        book.finish(intent, {"study_id": 70})


def _raw(intent: object) -> dict[str, object]:
    names = ("ref", "kind", "case", "label", "at", "record")
    return {name: getattr(intent, name) for name in names}


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
