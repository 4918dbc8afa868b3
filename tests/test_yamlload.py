from pathlib import Path

import pytest

from casesync.project.yamlload import MAX_DOCUMENT_BYTES, YamlError, load_yaml_file, load_yaml_text


def test_positions_of_values_and_keys_are_one_based() -> None:
    loaded = load_yaml_text("title: X\nstudies:\n  - modality: CT\n", "case.yaml")
    assert loaded.data == {"title": "X", "studies": [{"modality": "CT"}]}
    assert loaded.where(("title",)) == (1, 8)
    assert loaded.where(("studies", 0, "modality")) == (3, 15)
    assert loaded.where_key(("studies",)) == (2, 1)


def test_where_falls_back_to_the_nearest_ancestor() -> None:
    loaded = load_yaml_text("studies:\n  - modality: CT\n", "case.yaml")
    assert loaded.where(("studies", 0, "series")) == (2, 5)


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    loaded = load_yaml_text("title: A\nsystem: Chest\ntitle: B\n", "case.yaml")
    assert loaded.data["title"] == "A"
    [problem] = loaded.problems
    assert str(problem) == (
        "case.yaml:3:1: error: duplicate key 'title' (first at line 1) (remove one of them)"
    )


def test_syntax_errors_carry_their_position() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml_text("title: [unclosed\n", "case.yaml")
    assert caught.value.problem.file == "case.yaml"
    assert caught.value.problem.line == 2
    assert "YAML syntax" in caught.value.problem.message


def test_alias_bombs_are_refused() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, prev in zip("bcdef", "abcde", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    with pytest.raises(YamlError) as caught:
        load_yaml_text("\n".join(lines) + "\n", "bomb.yaml")
    assert "expands to over" in caught.value.problem.message


def test_python_tags_are_not_constructed() -> None:
    with pytest.raises(YamlError) as caught:
        load_yaml_text("title: !!python/object/apply:os.system ['true']\n", "case.yaml")
    assert caught.value.problem.line == 1
    assert "unsupported value" in caught.value.problem.message


def test_dates_stay_text_so_validation_can_see_them() -> None:
    loaded = load_yaml_text("age: 1990-01-02\n", "case.yaml")
    assert loaded.data == {"age": "1990-01-02"}


def test_oversized_documents_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "case.yaml"
    big.write_text("body: '" + "x" * MAX_DOCUMENT_BYTES + "'\n")
    with pytest.raises(YamlError) as caught:
        load_yaml_file(big, "case.yaml")
    assert "limit" in caught.value.problem.message


def test_non_utf8_is_refused_with_a_hint(tmp_path: Path) -> None:
    bad = tmp_path / "case.yaml"
    bad.write_bytes(b"title: \xff\xfe\n")
    with pytest.raises(YamlError) as caught:
        load_yaml_file(bad, "case.yaml")
    assert caught.value.problem.hint == "save it as UTF-8"


def test_merge_keys_are_refused() -> None:
    with pytest.raises(YamlError):
        load_yaml_text("base: &b {a: 1}\nother:\n  <<: *b\n", "case.yaml")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("v: true", True),
        ("v: False", False),
        ("v: TRUE", True),
        ("v: yes", "yes"),
        ("v: No", "No"),
        ("v: on", "on"),
        ("v: OFF", "OFF"),
        ("v: 'true'", "true"),
    ],
)
def test_booleans_are_yaml_1_2(text: str, value: object) -> None:
    assert load_yaml_text(text, "x.yaml").data == {"v": value}
