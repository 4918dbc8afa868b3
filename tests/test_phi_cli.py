"""``casesync check-phi``: the project's PHI cache, so unchanged files are checked once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from phifactory import bundled, clean_ct, write
from repofactory import SIMPLE_CASE, write_case, write_project

from casesync.__main__ import main
from casesync.phi import gate


def count_gate_runs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the gate really reads (not the ones answered from the cache)."""
    seen: list[Path] = []
    real = gate.check_file

    def counting(path: Path, *, burned_in_reviewed: bool = False) -> gate.FileReport:
        seen.append(path)
        return real(path, burned_in_reviewed=burned_in_reviewed)

    monkeypatch.setattr(gate, "check_file", counting)
    return seen


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return int(done.value.code or 0), capsys.readouterr().out


def scans(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(bundled("CT_small.dcm"), folder / "raw.dcm")
    write(clean_ct(), folder / "clean.dcm")
    return folder


def test_inside_a_project_a_second_run_reads_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    folder = scans(tmp_path / "scans")
    runs = count_gate_runs(monkeypatch)
    first = run(capsys, "-C", str(tmp_path), "check-phi", str(folder))
    assert first[0] == 3 and sorted(path.name for path in runs) == ["clean.dcm", "raw.dcm"]
    assert (tmp_path / ".casesync" / "cache" / "phi.sqlite").is_file()  # validate's cache
    runs.clear()
    assert run(capsys, "-C", str(tmp_path), "check-phi", str(folder)) == first
    assert runs == []
    shutil.copy(bundled("MR_small.dcm"), folder / "raw.dcm")  # new content: checked again
    run(capsys, "-C", str(tmp_path), "check-phi", str(folder))
    assert [path.name for path in runs] == ["raw.dcm"]


def test_validate_and_check_phi_share_one_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path)
    case_dir = write_case(tmp_path, "ct-01", SIMPLE_CASE.replace("X-ray", "CT"))
    (case_dir / "xr").mkdir()
    write(clean_ct(), case_dir / "xr" / "1.dcm")
    runs = count_gate_runs(monkeypatch)
    assert run(capsys, "-C", str(tmp_path), "check-phi", str(case_dir))[0] == 0
    assert len(runs) == 1
    assert run(capsys, "-C", str(tmp_path), "validate")[0] == 0
    assert len(runs) == 1  # validate found check-phi's result


def test_outside_a_project_nothing_is_cached_or_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = scans(tmp_path / "scans")
    runs = count_gate_runs(monkeypatch)
    for _ in range(2):
        run(capsys, "-C", str(tmp_path), "check-phi", str(folder))
    assert len(runs) == 4
    assert not (tmp_path / ".casesync").exists()
