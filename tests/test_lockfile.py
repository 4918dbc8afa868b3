import json
import os
import re
from pathlib import Path

import pytest

from casesync.errors import LockfileError, StateWriteError
from casesync.sync.lockfile import (
    Lock,
    LockedCase,
    LockedFile,
    LockedSeries,
    LockedStudy,
    check_api_url_matches,
    check_writable,
    fingerprint,
    load_lock,
    save_lock,
)

API = "https://radiopaedia.org"


def sample_lock() -> Lock:
    series = LockedSeries(
        content_id="sha256:abc",
        job_id="job-1",
        fields={"perspective": fingerprint("Axial")},
        files=[LockedFile("cases/a/ct/1.dcm", 10, "aa" * 32, upload_id=7)],
    )
    study = LockedStudy(study_id=5, position=2, series=[series])
    return Lock(
        api_url=API,
        cases={
            "b-case": LockedCase(case_id=2, studies=[]),
            "a-case": LockedCase(case_id=1, upload_finished=True, studies=[study]),
        },
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "casesync.lock"
    save_lock(path, sample_lock())
    assert load_lock(path, API) == sample_lock()


def test_output_is_deterministic_and_sorted(tmp_path: Path) -> None:
    text = sample_lock().to_json()
    assert text == sample_lock().to_json()
    assert text.index('"a-case"') < text.index('"b-case"')
    assert text.endswith("}\n")
    assert json.loads(text)["version"] == 1


def test_missing_lock_is_empty(tmp_path: Path) -> None:
    lock = load_lock(tmp_path / "casesync.lock", API)
    assert lock.cases == {} and lock.api_url == API


def test_uploaded_hashes_only_counts_attached_files() -> None:
    lock = sample_lock()
    lock.cases["a-case"].studies[0].series[0].files.append(LockedFile("x", 1, "bb" * 32))
    assert lock.uploaded_hashes() == {"aa" * 32}


def _lock(case_a: str, case_b: str | None = None) -> str:
    cases = f'"a": {case_a}' + (f', "b": {case_b}' if case_b else "")
    return f'{{"version": 1, "api_url": "x", "cases": {{{cases}}}}}'


def _study(study: str) -> str:
    return f'{{"case_id": 1, "studies": [{{"study_id": 2, {study}}}]}}'


def _files(files: str) -> str:
    series = f'{{"content_id": "c", "files": [{files}]}}'
    return _study(f'"position": 2, "series": [{series}]')


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "corrupt"),
        ('{"cases": {}}', "not a casesync lockfile"),
        ('{"version": 99, "api_url": "x", "cases": {}}', "newer than this casesync"),
        ('{"version": 1, "api_url": "x", "cases": {"a": {"studies": []}}}', "corrupt"),
        ('{"version": 0, "api_url": "x", "cases": {}}', "version is 0; casesync writes 1"),
        ('{"version": true, "api_url": "x", "cases": {}}', "version is true"),
        ('{"version": 1, "api_url": 5, "cases": {}}', "api_url is 5, not a string"),
        (_lock('{"case_id": "abc"}'), 'cases["a"].case_id is "abc", not an integer'),
        (_lock('{"case_id": 1e400}'), 'cases["a"].case_id is inf, not an integer'),
        (_lock('{"case_id": -3}'), "case_id is -3, not a positive integer"),
        (_lock(_study('"position": NaN')), "studies[0].position is nan, not an integer"),
        (_lock(_study('"study_id": 1e400, "position": 2')), "study_id is inf"),
        (_lock(_study('"position": 2, "key": ["k"]')), 'studies[0].key is ["k"], not a string'),
        (_lock(_files('["p", 1, ["aa"], 7]')), 'files[0] sha256 is ["aa"], not a string'),
        (_lock(_files('["p", 1, "aa"]')), "files[0] is"),
        (_lock(_files('["p", 1, "aa", 7], ["q", 1, "bb", 7]')), "upload id 7 is recorded for two"),
        (_lock('{"case_id": 1}', '{"case_id": 1}'), "case id 1 is recorded for both a and b"),
        (_lock('{"case_id": 1, "upload_finished": "yes"}'), "upload_finished is"),
        (
            '{"version": 1, "api_url": "x", "cases": {"a": {"case_id": ' + "9" * 5000 + "}}}",
            "unreadable or corrupt",
        ),
    ],
)
def test_bad_lockfiles_are_refused_and_left_alone(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "casesync.lock"
    path.write_text(content)
    with pytest.raises(LockfileError, match=re.escape(message)) as refused:
        load_lock(path, API)
    assert "casesync.lock" in str(refused.value)
    assert refused.value.hint
    assert path.read_text() == content


def test_the_same_upload_in_two_series_is_accepted(tmp_path: Path) -> None:
    """The server may hand out one upload id per content: only two contents are refused."""
    path = tmp_path / "casesync.lock"
    path.write_text(_lock(_files('["p", 1, "aa", 7], ["q", 1, "aa", 7]')))
    assert load_lock(path, API).uploaded_hashes() == {"aa"}


def test_a_lockfile_folder_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StateWriteError, match="nodir does not exist"):
        check_writable(tmp_path / "nodir" / "x.lock")
    check_writable(tmp_path / "casesync.lock")
    assert list(tmp_path.iterdir()) == []


def test_api_url_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LockfileError, match="belongs to"):
        check_api_url_matches(sample_lock(), "http://127.0.0.1:8787", tmp_path / "casesync.lock")
    check_api_url_matches(Lock(api_url=API), "http://127.0.0.1:8787", tmp_path / "casesync.lock")


def test_a_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "casesync.lock"
    save_lock(path, sample_lock())
    before = path.read_text()

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    changed = sample_lock()
    changed.cases["c-case"] = LockedCase(case_id=3)
    with pytest.raises(OSError, match="disk full"):
        save_lock(path, changed)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["casesync.lock"]


def test_fingerprint_is_stable_and_short() -> None:
    assert fingerprint({"b": 1, "a": 2}) == fingerprint({"a": 2, "b": 1})
    assert fingerprint("x") != fingerprint("y")
    assert len(fingerprint("x")) == len("sha256:") + 16


def test_each_file_is_one_line_so_diffs_stay_small(tmp_path: Path) -> None:
    text = sample_lock().to_json()
    line = next(line for line in text.splitlines() if "cases/a/ct/1.dcm" in line)
    assert json.loads(line.strip().rstrip(",")) == ["cases/a/ct/1.dcm", 10, "aa" * 32, 7]


def test_the_lock_matches_its_published_schema(tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator

    from casesync.project.schema import schema_text

    validator = Draft202012Validator(json.loads(schema_text("lock")))
    assert list(validator.iter_errors(json.loads(sample_lock().to_json()))) == []
