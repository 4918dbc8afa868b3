"""The manifest cache: an unchanged document is neither parsed nor checked again."""

from __future__ import annotations

from pathlib import Path

from casesync.problems import Problem
from casesync.project.doccache import DocumentCache, load_checked
from casesync.project.yamlload import LoadedYaml

CASE = "title: T\nstudies:\n  - modality: CT\n    bogus: 1\ntitle: again\n"


class CountingCheck:
    """A schema stand-in that says how often it ran."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, loaded: LoadedYaml) -> list[Problem]:
        self.calls += 1
        return [
            loaded.problem(
                ("studies", 0, "bogus"), "unknown field 'bogus'", "remove it", code="unknown-field"
            )
        ]


def load(
    root: Path, check: CountingCheck, defaults: dict[str, object] | None = None
) -> tuple[LoadedYaml, list[Problem]]:
    cache = DocumentCache(root / "cache" / "manifests.sqlite")
    try:
        return load_checked(
            root / "case.yaml", "cases/x/case.yaml", "case", defaults or {}, check, cache
        )
    finally:
        cache.close()


def test_an_unchanged_document_comes_back_whole_without_a_second_check(tmp_path: Path) -> None:
    (tmp_path / "case.yaml").write_text(CASE)
    check = CountingCheck()
    first = load(tmp_path, check, {"suitable_for_quiz": False})
    second = load(tmp_path, check, {"suitable_for_quiz": False})
    assert check.calls == 1
    assert second == first
    loaded, found = second
    assert loaded.data == {
        "suitable_for_quiz": False,
        "title": "T",
        "studies": [{"modality": "CT", "bogus": 1}],
    }
    assert loaded.where(("studies", 0, "bogus")) == (4, 12)
    assert loaded.where_key(("studies", 0, "bogus")) == (4, 5)
    assert loaded.where_key(("title",)) == (1, 1)
    assert [p.message for p in loaded.problems] == ["duplicate key 'title' (first at line 1)"]
    assert [str(p) for p in found] == [
        "cases/x/case.yaml:4:12: error: unknown field 'bogus' (remove it)"
    ]
    assert [p.code for p in [*loaded.problems, *found]] == ["duplicate-key", "unknown-field"]


def test_an_edit_or_other_defaults_check_again(tmp_path: Path) -> None:
    (tmp_path / "case.yaml").write_text(CASE)
    check = CountingCheck()
    load(tmp_path, check)
    (tmp_path / "case.yaml").write_text(CASE.replace("T\n", "Other\n", 1))
    assert load(tmp_path, check)[0].data["title"] == "Other"
    assert check.calls == 2
    load(tmp_path, check, {"suitable_for_quiz": True})
    assert check.calls == 3


def test_a_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / "case.yaml").write_text(CASE)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "manifests.sqlite").write_bytes(b"not a database" * 100)
    check = CountingCheck()
    first = load(tmp_path, check)
    assert load(tmp_path, check) == first
    assert check.calls == 1


def test_a_damaged_entry_is_computed_again(tmp_path: Path) -> None:
    (tmp_path / "case.yaml").write_text(CASE)
    check = CountingCheck()
    first = load(tmp_path, check)
    cache = DocumentCache(tmp_path / "cache" / "manifests.sqlite")
    with cache.connection:
        cache.connection.execute("UPDATE documents SET entry = ?", (b"\x00garbage",))
    cache.close()
    assert load(tmp_path, check) == first
    assert check.calls == 2
