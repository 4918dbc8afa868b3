"""``casesync init``'s files: committed editor schemas that stay current, and the sample marker."""

import subprocess
from pathlib import Path

from casesync.cli.scaffold import init_project, refresh_editor_schemas
from casesync.project.schema import EDITOR_SCHEMAS_DIR, schema_text


def test_refresh_updates_existing_copies_and_never_creates_the_folder(tmp_path: Path) -> None:
    refresh_editor_schemas(tmp_path)
    assert not (tmp_path / EDITOR_SCHEMAS_DIR).exists()
    init_project(tmp_path)
    stale = tmp_path / EDITOR_SCHEMAS_DIR / "case.schema.json"
    stale.write_text("{}")
    refresh_editor_schemas(tmp_path)
    assert stale.read_text() == schema_text("case")


def test_git_commits_the_schemas_and_ignores_the_local_state(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    init_project(tmp_path)
    (tmp_path / ".casesync").mkdir(exist_ok=True)

    def ignored(path: str) -> bool:
        check = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "-q", path])
        return check.returncode == 0

    assert not ignored(f"{EDITOR_SCHEMAS_DIR}/case.schema.json")
    assert ignored(".casesync/cache")


def test_the_sample_case_is_marked(tmp_path: Path) -> None:
    init_project(tmp_path)
    lines = (tmp_path / "cases/example-case/case.yaml").read_text().splitlines()
    assert lines[1].startswith("sample: true")
