"""Case text inline or from a Markdown file: what validate builds, refuses, and apply sends."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from repofactory import SIMPLE_CASE, png_bytes, write_case, write_project
from test_e2e_apply import cli

from casesync.project.validate import validate_project

DISCUSSION_MD = """\
# Discussion

Appendicitis is *common*; see [the article](https://radiopaedia.org/articles/appendicitis).

- dilated appendix
- CRP 10<sup>2</sup> mg/L

<script>alert("x")</script>
"""

DISCUSSION_HTML = (
    "<p><strong>Discussion</strong></p>\n"
    '<p>Appendicitis is <em>common</em>; see <a href="https://radiopaedia.org/articles/appendicitis"'
    ' rel="noopener noreferrer">the article</a>.</p>\n'
    "<ul>\n<li>dilated appendix</li>\n<li>CRP 10<sup>2</sup> mg/L</li>\n</ul>"
)


def repo(tmp_path: Path, case_yaml: str, files: dict[str, str] | None = None) -> Path:
    write_project(tmp_path)
    case_dir = write_case(tmp_path, "a", case_yaml)
    (case_dir / "xr").mkdir()
    (case_dir / "xr/1.png").write_bytes(png_bytes(1))
    for name, text in (files or {}).items():
        (case_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (case_dir / name).write_text(text)
    return tmp_path


def errors(root: Path) -> list[str]:
    return [str(p) for p in validate_project(root).errors]


def test_body_file_is_rendered_and_sanitised(tmp_path: Path) -> None:
    text = SIMPLE_CASE.replace("body: <p>Discussion</p>", "body_file: discussion.md")
    result = validate_project(repo(tmp_path, text, {"discussion.md": DISCUSSION_MD}))
    assert result.manifest is not None, [str(p) for p in result.problems]
    assert result.manifest.cases[0].fields.body == DISCUSSION_HTML


def test_inline_formats_per_field_and_per_case(tmp_path: Path) -> None:
    text = SIMPLE_CASE.replace(
        "body: <p>Discussion</p>",
        "text_format: markdown\npresentation: Pain for **2** days\n"
        "body: <b>kept</b> as *HTML*\nbody_format: html",
    ).replace("caption: Frontal", "caption: Frontal\n    findings: Free *gas*")
    result = validate_project(repo(tmp_path, text))
    assert result.manifest is not None, [str(p) for p in result.problems]
    case = result.manifest.cases[0]
    assert case.fields.presentation == "<p>Pain for <strong>2</strong> days</p>"
    assert case.fields.body == "<b>kept</b> as *HTML*"
    assert case.studies[0].findings == "<p>Free <em>gas</em></p>"


def test_findings_file_next_to_the_manifest(tmp_path: Path) -> None:
    text = SIMPLE_CASE.replace(
        "caption: Frontal", "caption: Frontal\n    findings_file: text/xr.md"
    )
    result = validate_project(repo(tmp_path, text, {"text/xr.md": "Coin at *C6*."}))
    assert result.manifest is not None
    assert result.manifest.cases[0].studies[0].findings == "<p>Coin at <em>C6</em>.</p>"


def test_without_a_format_inline_html_is_sent_as_written(tmp_path: Path) -> None:
    result = validate_project(
        repo(tmp_path, SIMPLE_CASE.replace("<p>Discussion</p>", "<p>a *b*</p>"))
    )
    assert result.manifest is not None
    assert result.manifest.cases[0].fields.body == "<p>a *b*</p>"


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        (
            "body_file: ../../../outside.md",
            "cases/a/case.yaml:6:12: error: '../../../outside.md' resolves outside the project root (keep files inside the repository (no '..' or symlinks pointing out))",
        ),
        (
            "body_file: missing.md",
            "cases/a/case.yaml:6:12: error: 'missing.md' does not exist (fix the path or add the file)",
        ),
        (
            "body_file: xr",
            "cases/a/case.yaml:6:12: error: 'xr' is not a regular file (point at a file, not a folder)",
        ),
        (
            "body_file: latin1.md",
            "cases/a/case.yaml:6:12: error: 'latin1.md' is not UTF-8 text (byte 1) (save it as UTF-8)",
        ),
        (
            "body: <p onclick='steal()'>x</p>",
            "cases/a/case.yaml:6:7: error: body carries an event attribute (onclick) on <p>, which Radiopaedia must never receive (remove it, or write the text in Markdown (body_format: markdown), which is cleaned)",
        ),
        (
            "body: x\nbody_file: d.md",
            "cases/a/case.yaml:7:1: error: give either body or body_file, not both",
        ),
        (
            "body: x\nbody_format: md",
            "cases/a/case.yaml:7:14: error: body_format: 'md' is not one of html, markdown",
        ),
    ],
)
def test_bad_text_fields_are_located_errors(
    tmp_path: Path, replacement: str, expected: str
) -> None:
    root = repo(tmp_path / "repo", SIMPLE_CASE.replace("body: <p>Discussion</p>", replacement))
    (tmp_path / "outside.md").write_text("outside")
    (root / "cases/a/latin1.md").write_bytes(b"x\xe9")
    (root / "cases/a/d.md").write_text("d")
    assert errors(root) == [expected]


def test_a_symlink_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.md").write_text("secret")
    root = repo(
        tmp_path / "repo", SIMPLE_CASE.replace("body: <p>Discussion</p>", "body_file: d.md")
    )
    os.symlink(tmp_path / "secret.md", root / "cases/a/d.md")
    [message] = errors(root)
    assert "'d.md' resolves outside the project root" in message


def test_apply_sends_the_rendered_markdown_and_plan_sees_an_edit(
    tmp_path: Path, emulator_thread: Any
) -> None:
    text = SIMPLE_CASE.replace("body: <p>Discussion</p>", "body_file: discussion.md").replace(
        "caption: Frontal",
        "caption: Frontal\n    findings: Coin at *C6*\n    findings_format: markdown",
    )
    root = repo(tmp_path / "repo", text, {"discussion.md": DISCUSSION_MD})
    result = cli(root, emulator_thread, "apply", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    [case] = emulator_thread.snapshot()["cases"]
    assert case["body"] == DISCUSSION_HTML
    assert case["studies"][0]["findings"] == "<p>Coin at <em>C6</em></p>"
    assert "No changes" in cli(root, emulator_thread, "plan").stdout

    (root / "cases/a/discussion.md").write_text(DISCUSSION_MD.replace("*common*", "**common**"))
    plan = cli(root, emulator_thread, "plan")
    assert "changed after creation: body (" in plan.stdout, plan.stdout
