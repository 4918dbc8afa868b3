"""The project commands through the real entry point: output, exit codes, no tracebacks."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from repofactory import SIMPLE_CASE, simple_repo, write_case


def casesync(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "casesync", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **(env or {})},
    )


def test_init_then_validate_then_plan(tmp_path: Path) -> None:
    init = casesync("init", cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    assert "wrote casesync.yaml" in init.stdout
    assert (tmp_path / ".gitignore").read_text().endswith(".casesync/\n")
    header = (tmp_path / "cases/example-case/case.yaml").read_text().splitlines()[0]
    assert header == "# yaml-language-server: $schema=../../.casesync-schemas/case.schema.json"
    assert (tmp_path / ".casesync-schemas/case.schema.json").is_file()
    assert "wrote .casesync-schemas/" in init.stdout
    again = casesync("init", cwd=tmp_path)
    assert "nothing to do" in again.stdout
    validate = casesync("validate", cwd=tmp_path)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "OK: 1 case and 1 file are valid." in validate.stdout
    plan = casesync("plan", "--detailed-exitcode", cwd=tmp_path)
    assert plan.returncode == 2, plan.stderr
    assert "Plan: 1 case, 1 study, 1 series to create" in plan.stdout


def test_the_init_sample_is_flagged_by_validate_and_refused_by_apply(tmp_path: Path) -> None:
    casesync("init", cwd=tmp_path)
    validate = casesync("validate", cwd=tmp_path)
    assert validate.returncode == 0
    assert (
        "cases/example-case/case.yaml:2:1: warning: this is casesync init's sample case: "
        "apply refuses it (the API cannot delete a case once created); make it your own case "
        "and remove 'sample: true', or delete the folder  [sample-case]\n"
    ) in validate.stdout  # the code last, as mypy shows it
    # a closed loopback port: should the refusal fail, nothing can leave the machine
    offline = {"CASESYNC_API_URL": "http://127.0.0.1:9", "CASESYNC_ACCESS_TOKEN": "x"}
    apply = casesync("apply", "--yes", cwd=tmp_path, env=offline)
    assert apply.returncode == 5, apply.stdout + apply.stderr
    assert "refusing to apply casesync init's sample case: cases/example-case" in apply.stderr
    assert "remove the line 'sample: true'" in apply.stderr
    case_file = tmp_path / "cases/example-case/case.yaml"
    case_file.write_text(case_file.read_text().replace("sample: true", "# edited"))
    validate = casesync("validate", cwd=tmp_path)
    assert "warning" not in validate.stdout, validate.stdout


def test_commands_find_the_root_from_a_subfolder_and_with_dash_c(tmp_path: Path) -> None:
    simple_repo(tmp_path)
    assert casesync("validate", cwd=tmp_path / "cases" / "case-00").returncode == 0
    elsewhere = tmp_path.parent
    assert casesync("-C", str(tmp_path), "validate", cwd=elsewhere).returncode == 0


def test_outside_a_project_is_a_clear_error(tmp_path: Path) -> None:
    result = casesync("plan", cwd=tmp_path)
    assert result.returncode == 1
    assert "no casesync.yaml found" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_project_exits_3_with_located_errors(tmp_path: Path) -> None:
    simple_repo(tmp_path)
    write_case(tmp_path, "broken", SIMPLE_CASE.replace("X-ray", "Xray"))
    for command in ("validate", "plan"):
        result = casesync(command, cwd=tmp_path)
        assert result.returncode == 3
        assert "cases/broken/case.yaml:8:15: error: unknown modality 'Xray'" in result.stdout
        assert "nothing was sent to the server" in result.stderr
        assert "Traceback" not in result.stderr


def test_validate_json_lists_problems(tmp_path: Path) -> None:
    simple_repo(tmp_path)
    write_case(tmp_path, "broken", SIMPLE_CASE.replace("Female", "F"))
    result = casesync("validate", "--format", "json", cwd=tmp_path)
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert document["problems"][0]["file"] == "cases/broken/case.yaml"
    assert document["problems"][0]["line"] == 5


def test_every_problem_has_a_rule_code_in_json_and_github_annotations(tmp_path: Path) -> None:
    simple_repo(tmp_path)
    write_case(tmp_path, "gender", SIMPLE_CASE.replace("Female", "F"))
    write_case(tmp_path, "modality", SIMPLE_CASE.replace("X-ray", "Xray"))
    write_case(tmp_path, "syntax", SIMPLE_CASE.replace("  - modality", "  modality", 1) + "x")
    write_case(tmp_path, "extra", SIMPLE_CASE + "colour: red\n")
    document = json.loads(casesync("validate", "-f", "json", cwd=tmp_path).stdout)
    codes = {(p["file"].split("/")[1], p["code"]) for p in document["problems"]}
    assert codes >= {
        ("gender", "schema-enum"),
        ("modality", "unknown-modality"),
        ("syntax", "yaml-syntax"),
        ("extra", "unknown-field"),
        ("extra", "images-path"),  # no xr/ folder beside these manifests
    }
    assert all(code and code != "invalid" for _, code in codes)
    result = casesync("validate", "--format", "github", cwd=tmp_path)
    assert result.returncode == 3
    lines = result.stdout.splitlines()
    assert len(lines) == len(document["problems"])
    assert all(line.startswith("::error file=cases/") for line in lines)
    assert ",line=8,col=15,title=unknown-modality::unknown modality 'Xray'" in result.stdout


def test_yaml_syntax_errors_show_the_line_in_words(tmp_path: Path) -> None:
    simple_repo(tmp_path)
    write_case(tmp_path, "broken", SIMPLE_CASE.replace("  - modality", "  modality", 1) + "x")
    result = casesync("validate", cwd=tmp_path)
    assert "YAML syntax error:" in result.stdout and "line " in result.stdout
    assert "did not find expected" not in result.stdout + result.stderr


def test_plan_formats_and_out_file(tmp_path: Path) -> None:
    simple_repo(tmp_path, cases=2)
    markdown = casesync("plan", "--format", "markdown", cwd=tmp_path)
    assert markdown.stdout.startswith("<!-- casesync-plan -->")
    out = tmp_path / "plan.json"
    result = casesync("plan", "--format", "json", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout) == json.loads(out.read_text())
    assert json.loads(out.read_text())["summary"]["cases_to_create"] == 2


def test_plan_refuses_plain_http_to_a_remote_host(tmp_path: Path) -> None:
    simple_repo(tmp_path)
    result = casesync("plan", "--api-url", "http://example.org", cwd=tmp_path)
    assert result.returncode == 1
    assert "plain http" in result.stderr


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(
    "url", ["https://user:PASSWORD@radiopaedia.org", "https://radiopaedia.org?a=b", "http://[::1"]
)
def test_plan_refuses_an_api_url_with_credentials_query_or_bad_syntax(
    tmp_path: Path, url: str, fmt: str
) -> None:
    simple_repo(tmp_path)
    result = casesync("plan", "--format", fmt, "--api-url", url, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert "API URL" in result.stderr and "Traceback" not in result.stderr
    assert "PASSWORD" not in result.stderr


@pytest.mark.parametrize("name", ["case", "project", "lock"])
def test_schema_prints_each_shipped_schema(tmp_path: Path, name: str) -> None:
    result = casesync("schema", name, cwd=tmp_path)
    assert result.returncode == 0
    document = json.loads(result.stdout)
    assert document["$schema"].endswith("2020-12/schema")
    shipped = Path(__file__).parent.parent / "schemas" / f"{name}.schema.json"
    assert document == json.loads(shipped.read_text())


def test_every_schema_property_has_title_and_description() -> None:
    for path in (Path(__file__).parent.parent / "schemas").glob("*.schema.json"):
        missing = list(_undocumented(json.loads(path.read_text()), path.name))
        assert missing == []


def _undocumented(node: object, where: str) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for name, child in node.get("properties", {}).items():
            if not {"title", "description"} <= set(child) and "$ref" not in child:
                found.append(f"{where}.{name}")
        for key, child in node.items():
            found += _undocumented(child, f"{where}.{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _undocumented(child, f"{where}[{index}]")
    return found


def test_version(tmp_path: Path) -> None:
    result = casesync("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("casesync ")


def test_unknown_option_is_exit_1_not_2(tmp_path: Path) -> None:
    result = casesync("plan", "--bogus", cwd=tmp_path)
    assert result.returncode == 1


def test_messages_have_plurals_flag_names_and_no_doubled_parentheses(tmp_path: Path) -> None:
    simple_repo(tmp_path)
    write_case(tmp_path, "long", SIMPLE_CASE.replace("Acute appendicitis", "x" * 130))
    result = casesync("validate", cwd=tmp_path)
    assert "title: is 130 characters, over the limit of 120" in result.stdout
    assert ").)" not in result.stdout and "))" not in result.stdout
    rate = casesync("emulator", "--fail-rate", "2", "--port", "0", cwd=tmp_path)
    assert rate.returncode == 1 and "--fail-rate must be between 0 and 1" in rate.stderr
    mode = casesync("emulator", "--anonymiser-check", "loose", cwd=tmp_path)
    assert "anonymiser_check" not in mode.stderr and "--anonymiser-check" in mode.stderr


def dicom_with_phi_warnings(root: Path) -> Path:
    """A valid project whose one CT series passes the PHI gate with lo-value warnings."""
    from phifactory import clean_ct, write

    case_dir = write_case(root, "ct-01", SIMPLE_CASE.replace("X-ray", "CT"))
    (case_dir / "xr").mkdir()
    write(clean_ct(), case_dir / "xr" / "1.dcm")
    (root / "casesync.yaml").write_text("version: 1\n")
    return root


def test_phi_warnings_reach_every_plan_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from casesync.__main__ import main

    root = dicom_with_phi_warnings(tmp_path)
    outputs = {}
    for fmt in ("text", "json", "markdown"):
        with pytest.raises(SystemExit) as done:
            main(["-C", str(root), "plan", "--format", fmt])
        assert done.value.code == 0
        outputs[fmt] = capsys.readouterr().out
    text = outputs["text"]
    assert text.count("[lo-value]") == 1  # in the plan, not printed a second time above it
    assert "    ! study 1 series 1: PHI gate [lo-value] " in text
    assert text.rstrip().endswith(", 1 warning.")
    document = json.loads(outputs["json"])
    assert document["summary"]["warnings"] == 1
    assert [w["code"] for w in document["cases"][0]["warnings"]] == ["phi-lo-value"]
    assert "(new case: 4 to do, 1 warning)" in outputs["markdown"]
    assert "| ⚠️ | study 1 series 1: PHI gate [lo-value] " in outputs["markdown"]
