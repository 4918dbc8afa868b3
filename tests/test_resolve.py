from pathlib import Path

import pytest
from repofactory import write_project

from casesync.errors import ConfigError, LockfileError
from casesync.settings import DEFAULT_API_URL as API
from casesync.sync.journal import CaseMade, CaseRecord, Ledger, StudyRecord, journal_path
from casesync.sync.lockfile import load_lock
from casesync.sync.resolve import Answer, resolve


def pending_study(root: Path) -> Ledger:
    """Case ``a`` exists (id 7); the create of its study 2 got no answer."""
    write_project(root)
    lock_path = root / "casesync.lock"
    book = Ledger(root, lock_path, load_lock(lock_path, API))
    book.finish(book.begin("a", "case", CaseRecord("A", {})), CaseMade(7))
    record = StudyRecord(7, 3, None, {})
    book.begin("a", "study 2", record)
    return book


def test_adopting_the_study_found_on_the_site(tmp_path: Path) -> None:
    pending_study(tmp_path)
    said = resolve(tmp_path, "a", Answer(study_id=55), print)
    assert "recorded as study 55" in said
    study = load_lock(tmp_path / "casesync.lock", API).cases["a"].studies[0]
    assert (study.study_id, study.position) == (55, 3)
    assert not journal_path(tmp_path).exists()


def test_not_created_leaves_it_for_apply_to_create(tmp_path: Path) -> None:
    pending_study(tmp_path)
    said = resolve(tmp_path, "a", Answer(not_created=True), print)
    assert "apply will create it" in said
    assert load_lock(tmp_path / "casesync.lock", API).cases["a"].studies == []
    assert not journal_path(tmp_path).exists()


def test_the_answer_must_match_what_is_unknown(tmp_path: Path) -> None:
    pending_study(tmp_path)
    with pytest.raises(ConfigError, match="is a study") as wrong:
        resolve(tmp_path, "a", Answer(series_job="j1"), print)
    assert wrong.value.hint == "use --study-id or --not-created"
    assert (
        len(
            Ledger(
                tmp_path, tmp_path / "casesync.lock", load_lock(tmp_path / "casesync.lock", API)
            ).recover()
        )
        == 1
    )


def test_nothing_to_resolve_is_said(tmp_path: Path) -> None:
    pending_study(tmp_path)
    with pytest.raises(ConfigError, match="case b has no create with an unknown outcome"):
        resolve(tmp_path, "b", Answer(not_created=True), print)


def test_an_empty_job_id_is_refused_and_nothing_recorded(tmp_path: Path) -> None:
    pending_study(tmp_path)
    before = journal_path(tmp_path).read_bytes()
    with pytest.raises(ConfigError, match="--series-job is empty"):
        resolve(tmp_path, "a", Answer(series_job=" "), print)
    assert journal_path(tmp_path).read_bytes() == before


def test_an_id_another_case_holds_is_refused_and_nothing_recorded(tmp_path: Path) -> None:
    book = pending_study(tmp_path)
    book.begin("b", "case", CaseRecord("B", {}))
    with pytest.raises(LockfileError, match="case id 7 is already recorded for a"):
        resolve(tmp_path, "b", Answer(case_id=7), print)
    lock_path = tmp_path / "casesync.lock"
    lock = load_lock(lock_path, API)
    assert list(lock.cases) == ["a"]
    assert sorted(i.case for i in Ledger(tmp_path, lock_path, lock).recover()) == ["a", "b"]
