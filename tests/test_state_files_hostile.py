"""Hostile casesync.lock and journal contents through the real entry point (``plan``, ``apply``).

Each must end in a clear message naming the file (and line), what is wrong and how to fix it,
exit 1, with the file left as it was and nothing sent: never a traceback or an internal error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from repofactory import simple_repo

from casesync.__main__ import main
from casesync.emulator import EmulatorConfig, EmulatorThread

KEY = "cases/case-00"
FILE = '["cases/case-00/xr/img1.png", 1, "aa", 7]'
INTENT = {
    "t": "intent",
    "ref": "r1",
    "kind": "case",
    "case": KEY,
    "label": "case",
    "at": "2026-01-01T00:00:00.000+00:00",
    "record": {"title": "T", "fields": {}},
}


def lock(case: str, *, version: str = "1", other: str = "") -> str:
    cases = f'"{KEY}": {case}' + (f', "cases/other": {other}' if other else "")
    return f'{{"version": {version}, "api_url": "{{api}}", "cases": {{{cases}}}}}'


def study(text: str) -> str:
    return f'{{"case_id": 1, "studies": [{{"study_id": 2, {text}}}]}}'


def files(text: str) -> str:
    return study(f'"position": 2, "series": [{{"content_id": "c", "files": [{text}]}}]')


LOCKS = {
    "case id not a number": (lock('{"case_id": "abc"}'), 'case_id is "abc", not an integer'),
    "study id 1e400": (lock(study('"study_id": 1e400, "position": 2')), "study_id is inf"),
    "position NaN": (lock(study('"position": NaN')), "position is nan, not an integer"),
    "sha256 a list": (lock(files('["p", 1, ["aa"], 7]')), 'sha256 is ["aa"], not a string'),
    "version 0": (lock('{"case_id": 1}', version="0"), "version is 0; casesync writes 1"),
    "version true": (lock('{"case_id": 1}', version="true"), "version is true"),
    "two keys one case": (
        lock('{"case_id": 1}', other='{"case_id": 1}'),
        f"case id 1 is recorded for both {KEY} and cases/other",
    ),
    "study key a list": (lock(study('"position": 2, "key": [1]')), "key is [1], not a string"),
    "one upload id for two contents": (
        lock(files(f'{FILE}, ["q", 1, "bb", 7]')),
        "upload id 7 is recorded for two different contents",
    ),
    "an id of 5000 digits": (lock('{"case_id": ' + "9" * 5000 + "}"), "unreadable or corrupt"),
}
JOURNALS = {
    "a list": (b"[1, 2]\n", "line 1 is corrupt: the line is [1, 2], not an object"),
    "an empty object": (b"{}\n", 'line 1 is corrupt: "t" is None'),
    "not UTF-8": (b"\xff\xfe\xfd\n", "line 1 is corrupt: it is not UTF-8 text"),
    "done with a bad remote": (
        (
            json.dumps(INTENT) + '\n{"t": "done", "ref": "r1", "remote": {"case_id": "x"}}\n'
        ).encode(),
        'line 2 is corrupt: remote.case_id is "x", not an integer',
    ),
    "done with a remote that is no object": (
        (json.dumps(INTENT) + '\n{"t": "done", "ref": "r1", "remote": [7]}\n').encode(),
        "line 2 is corrupt: remote is [7], not an object",
    ),
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread(EmulatorConfig()) as running:
        yield running


@pytest.fixture
def repo(
    tmp_path: Path, emulator: EmulatorThread, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    monkeypatch.setenv("CASESYNC_API_URL", emulator.base_url)
    monkeypatch.setenv("CASESYNC_ACCESS_TOKEN", emulator.issue_tokens()["access_token"])
    before = emulator.snapshot()["requests"]
    yield simple_repo(tmp_path / "repo")
    assert emulator.snapshot()["requests"] == before, "something was sent to the server"


def run(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ended:
        main(["-C", str(root), *args])
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert "Traceback" not in said and "internal error" not in said, said
    return int(str(ended.value.code)), captured.err


@pytest.mark.parametrize("case", LOCKS, ids=list(LOCKS))
def test_a_hostile_lockfile_is_a_clear_error(
    repo: Path, emulator: EmulatorThread, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    template, message = LOCKS[case]
    path = repo / "casesync.lock"
    path.write_text(template.replace("{api}", emulator.base_url))
    before = path.read_bytes()
    for command in (["plan"], ["apply", "--yes"]):
        status, err = run(repo, capsys, *command)
        assert status == 1, err
        assert "casesync.lock" in err and message in err, err
        assert "restore it from git" in err, err
        assert path.read_bytes() == before


@pytest.mark.parametrize("case", JOURNALS, ids=list(JOURNALS))
def test_a_hostile_journal_is_a_clear_error(
    repo: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    content, message = JOURNALS[case]
    path = repo / ".casesync" / "journal.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    status, err = run(repo, capsys, "apply", "--yes")
    assert status == 1, err
    assert f"{path} {message}" in err, err
    assert "correct or remove that line" in err, err
    assert path.read_bytes() == content
    assert not (repo / "casesync.lock").exists()
