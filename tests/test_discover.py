"""Case discovery: globs confined to the root, unreadable folders reported, not skipped."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

from casesync.problems import Problem
from casesync.project.discover import find_case_manifests


def test_finds_each_manifest_once_in_order(tmp_path: Path) -> None:
    for name in ("b", "a"):
        (tmp_path / "cases" / name).mkdir(parents=True)
        (tmp_path / "cases" / name / "case.yaml").write_text("")
    problems: list[Problem] = []
    found = find_case_manifests(tmp_path, ("cases/**/case.yaml", "cases/a/case.yaml"), problems)
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "cases/a/case.yaml",
        "cases/b/case.yaml",
    ]
    assert problems == []


def test_a_pattern_reaching_outside_is_not_globbed(tmp_path: Path) -> None:
    problems: list[Problem] = []
    with mock.patch("casesync.project.discover.recursive_glob") as listed:
        found = find_case_manifests(tmp_path / "repo", ("/etc/*", "../*/case.yaml"), problems)
    listed.assert_not_called()
    assert found == []
    assert [p.message for p in problems] == [
        "cases pattern '/etc/*' reaches outside the project root",
        "cases pattern '../*/case.yaml' reaches outside the project root",
        "no case manifests found",
    ]


def test_a_folder_that_cannot_be_listed_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "cases" / "locked").mkdir(parents=True)
    (tmp_path / "cases" / "open").mkdir()
    (tmp_path / "cases" / "open" / "case.yaml").write_text("")
    real_scandir = __import__("os").scandir

    def scandir(path: str) -> object:
        if path.rstrip("/").endswith("locked"):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    problems: list[Problem] = []
    with mock.patch("os.scandir", scandir):
        found = find_case_manifests(tmp_path, ("cases/**/case.yaml",), problems)
    assert [p.name for p in found] == ["case.yaml"]
    assert [(p.file, p.message) for p in problems] == [
        ("cases/locked", "folder cannot be read, so case manifests in it would be missed")
    ]


def test_symlink_loops_below_the_cases_are_not_walked(tmp_path: Path) -> None:
    case = tmp_path / "cases" / "a"
    case.mkdir(parents=True)
    (case / "case.yaml").write_text("")
    for name in ("loop", "loop2"):
        (case / name).symlink_to("..")
    problems: list[Problem] = []
    found = find_case_manifests(tmp_path, ("cases/**/case.yaml",), problems)
    assert found == [case / "case.yaml"]
    assert problems == []


def test_a_manifest_reached_twice_through_a_symlinked_folder_is_one_case_and_a_problem(
    tmp_path: Path,
) -> None:
    case = tmp_path / "cases" / "a"
    case.mkdir(parents=True)
    (case / "case.yaml").write_text("")
    (tmp_path / "cases" / "b").symlink_to("a")
    problems: list[Problem] = []
    found = find_case_manifests(tmp_path, ("cases/*/case.yaml",), problems)
    assert found == [case / "case.yaml"]
    assert [(p.file, p.code) for p in problems] == [("cases/b/case.yaml", "duplicate-manifest")]
    assert "is cases/a/case.yaml again, reached through a symlink" in problems[0].message
