"""Every validation rule, each with a bad manifest and the exact file:line:col it reports."""

import json
import os
from pathlib import Path

import pytest
from repofactory import SIMPLE_CASE, png_bytes, simple_repo, write_case, write_pngs, write_project

from casesync.project.validate import validate_project


def messages(root: Path) -> list[str]:
    result = validate_project(root)
    return [str(p) for p in result.errors]


def one_case(tmp_path: Path, yaml_text: str, images: dict[str, bytes] | None = None) -> Path:
    write_project(tmp_path)
    case_dir = write_case(tmp_path, "a", yaml_text)
    for name, data in (images if images is not None else {"xr/1.png": png_bytes(1)}).items():
        (case_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (case_dir / name).write_bytes(data)
    return tmp_path


def test_valid_repo_builds_a_manifest(tmp_path: Path) -> None:
    result = validate_project(simple_repo(tmp_path, cases=2, images=3))
    assert result.errors == []
    assert result.manifest is not None
    first = result.manifest.cases[0]
    assert len(result.manifest.cases) == 2
    assert first.key == "cases/case-00"
    assert first.fields.system_id == 6 and first.fields.diagnostic_certainty_id == 4
    series = first.studies[0].series[0]
    assert [f.path for f in series.files] == [f"cases/case-00/xr/img{n}.png" for n in (1, 2, 3)]
    assert series.root_index == 1 and series.image_format == "image/png"


def test_project_defaults_merge_under_cases(tmp_path: Path) -> None:
    simple_repo(tmp_path)
    (tmp_path / "casesync.yaml").write_text("version: 1\ndefaults: {suitable_for_quiz: true}\n")
    result = validate_project(tmp_path)
    assert result.manifest is not None
    assert result.manifest.cases[0].fields.suitable_for_quiz is True


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            SIMPLE_CASE.replace("Gastrointestinal", "Gastro intestinal"),
            "cases/a/case.yaml:2:9: error: unknown system 'Gastro intestinal' (did you mean 'Gastrointestinal'?)",
        ),
        (
            SIMPLE_CASE.replace("Certain", "Sure"),
            "cases/a/case.yaml:3:23: error: unknown diagnostic certainty 'Sure'",
        ),
        (
            SIMPLE_CASE.replace("X-ray", "xray"),
            "cases/a/case.yaml:8:15: error: unknown modality 'xray' (matched literally) (did you mean 'X-ray'?)",
        ),
        (
            SIMPLE_CASE.replace("X-ray", "MR"),
            "cases/a/case.yaml:8:15: error: unknown modality 'MR' (matched literally) (did you mean 'MRI'?)",
        ),
        (
            SIMPLE_CASE.replace("Female", "female"),
            "cases/a/case.yaml:5:9: error: gender: 'female' is not one of Male, Female",
        ),
        (
            SIMPLE_CASE.replace("34 years", "1990-04-01"),
            "cases/a/case.yaml:4:6: error: age looks like a date",
        ),
        (
            SIMPLE_CASE.replace("34 years", "01/04/1990"),
            "cases/a/case.yaml:4:6: error: age looks like a date",
        ),
        (
            SIMPLE_CASE.replace("Acute appendicitis", "x" * 121),
            "cases/a/case.yaml:1:8: error: title: is 121 characters, over the limit of 120",
        ),
        (
            SIMPLE_CASE.replace(
                "    caption: Frontal\n", "    caption: Frontal\n    colour: red\n"
            ),
            "cases/a/case.yaml:10:5: error: unknown field 'colour' in studies.0",
        ),
        (
            SIMPLE_CASE.replace("title: Acute appendicitis\n", ""),
            "cases/a/case.yaml:1:1: error: (document): 'title' is required (add the field)",
        ),
        (
            SIMPLE_CASE + "title: again\n",
            "cases/a/case.yaml:12:1: error: duplicate key 'title' (first at line 1)",
        ),
        (
            SIMPLE_CASE.replace("images: xr", "images: missing"),
            "cases/a/case.yaml:11:17: error: 'missing' does not exist (fix the path or add the file)",
        ),
        (
            SIMPLE_CASE.replace("images: xr", "images: [xr/1.png, 'xr/*.jpg']"),
            "cases/a/case.yaml:11:17: error: 'xr/*.jpg' matches no file (check the pattern)",
        ),
        (
            SIMPLE_CASE.replace("images: xr", "images: xr\n        root: 5"),
            "cases/a/case.yaml:12:15: error: root index 5 is out of range: the series has 1 images",
        ),
        (
            SIMPLE_CASE.replace("images: xr", "images: xr\n        root: other.png"),
            "cases/a/case.yaml:12:15: error: root 'other.png' is not one of the series' files",
        ),
    ],
)
def test_rule_reports_file_line_and_col(tmp_path: Path, yaml_text: str, expected: str) -> None:
    found = messages(one_case(tmp_path, yaml_text))
    assert any(m.startswith(expected) for m in found), found


def test_every_problem_is_reported_in_one_run_sorted(tmp_path: Path) -> None:
    bad = (
        SIMPLE_CASE.replace("Gastrointestinal", "Nope")
        .replace("X-ray", "MR")
        .replace("images: xr", "images: gone")
    )
    found = messages(one_case(tmp_path, bad))
    assert [m.split(": error")[0] for m in found] == [
        "cases/a/case.yaml:2:9",
        "cases/a/case.yaml:8:15",
        "cases/a/case.yaml:11:17",
    ]


def test_dotdot_escaping_the_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.png").write_bytes(png_bytes(9))
    text = SIMPLE_CASE.replace("images: xr", "images: ../../../outside.png")
    [message] = messages(one_case(tmp_path / "repo", text))
    assert message.startswith(
        "cases/a/case.yaml:11:17: error: '../../../outside.png' resolves outside the project root"
    )


def test_symlink_escaping_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes(9))
    root = one_case(tmp_path / "repo", SIMPLE_CASE)
    os.symlink(outside, root / "cases/a/xr/2.png")
    [message] = messages(root)
    assert "'2.png' resolves outside the project root" in message


def test_symlink_inside_the_root_is_fine(tmp_path: Path) -> None:
    root = one_case(tmp_path, SIMPLE_CASE)
    (root / "shared").mkdir()
    (root / "shared/other.png").write_bytes(png_bytes(2))
    os.symlink(root / "shared/other.png", root / "cases/a/xr/2.png")
    assert messages(root) == []


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = one_case(tmp_path, SIMPLE_CASE)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, m: not str(p).endswith("1.png") and real_access(p, m)
    )
    [message] = messages(root)
    assert "1.png is not readable" in message


def test_empty_folder_is_an_empty_series(tmp_path: Path) -> None:
    root = one_case(tmp_path, SIMPLE_CASE, images={})
    (root / "cases/a/xr").mkdir()
    [message] = messages(root)
    assert message.startswith("cases/a/case.yaml:11:17: error: folder 'xr' holds no image files")


def test_format_comes_from_the_bytes_not_the_extension(tmp_path: Path) -> None:
    jpeg_named_png = b"\xff\xd8\xff\xe0" + b"\x00" * 200
    root = one_case(tmp_path, SIMPLE_CASE, images={"xr/1.png": jpeg_named_png})
    result = validate_project(root)
    assert result.manifest is not None
    assert result.manifest.cases[0].studies[0].series[0].image_format == "image/jpeg"


def test_unknown_bytes_are_refused(tmp_path: Path) -> None:
    root = one_case(tmp_path, SIMPLE_CASE, images={"xr/1.dcm": b"not a dicom file at all"})
    [message] = messages(root)
    assert "cases/a/xr/1.dcm is not a supported image" in message


def test_mixed_formats_in_one_series_are_refused(tmp_path: Path) -> None:
    root = one_case(
        tmp_path,
        SIMPLE_CASE,
        images={"xr/1.png": png_bytes(1), "xr/2.jpg": b"\xff\xd8\xff\xe0" + b"\0" * 64},
    )
    [message] = messages(root)
    assert "series mixes formats (image/jpeg, image/png)" in message


def test_case_keys_must_be_unique(tmp_path: Path) -> None:
    write_project(tmp_path)
    for folder in ("a", "b"):
        case_dir = write_case(tmp_path, folder, "key: same\n" + SIMPLE_CASE)
        write_pngs(case_dir / "xr", ["1.png"], seed=ord(folder))
    found = messages(tmp_path)
    assert any(
        m.startswith(
            "cases/b/case.yaml:1:1: error: case key 'same' is also used by cases/a/case.yaml"
        )
        for m in found
    ), found


def test_no_cases_found_is_an_error(tmp_path: Path) -> None:
    write_project(tmp_path)
    [message] = messages(tmp_path)
    assert message.startswith("casesync.yaml:1:1: error: no case manifests found")


def test_bad_project_file_is_located(tmp_path: Path) -> None:
    write_project(tmp_path, "version: 2\n")
    [message] = messages(tmp_path)
    assert message.startswith("casesync.yaml:1:10: error: version:")


def test_explicit_list_keeps_the_authors_order(tmp_path: Path) -> None:
    text = SIMPLE_CASE.replace("images: xr", "images: [xr/b10.png, xr/b2.png]")
    root = one_case(tmp_path, text, images={"xr/b2.png": png_bytes(2), "xr/b10.png": png_bytes(10)})
    result = validate_project(root)
    assert result.manifest is not None
    files = result.manifest.cases[0].studies[0].series[0].files
    assert [f.path.rsplit("/", 1)[1] for f in files] == ["b10.png", "b2.png"]


def test_folder_uses_natural_order_and_skips_hidden_files(tmp_path: Path) -> None:
    root = one_case(
        tmp_path,
        SIMPLE_CASE,
        images={
            "xr/img10.png": png_bytes(10),
            "xr/img2.png": png_bytes(2),
            "xr/.DS_Store": b"junk",
        },
    )
    result = validate_project(root)
    assert result.manifest is not None
    files = result.manifest.cases[0].studies[0].series[0].files
    assert [f.path.rsplit("/", 1)[1] for f in files] == ["img2.png", "img10.png"]


def dicom_case(tmp_path: Path, reviewed: bool = False) -> Path:
    import pydicom
    from pydicom.data import get_testdata_file

    text = SIMPLE_CASE.replace("X-ray", "CT")
    if reviewed:
        text = text.replace("images: xr", "images: xr\n        burned_in_annotation: reviewed")
    root = one_case(tmp_path, text, images={})
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    (root / "cases/a/xr").mkdir()
    original_uid = source.SOPInstanceUID
    for number in (1, 2):
        source.InstanceNumber = number
        source.SOPInstanceUID = f"{original_uid}.{number}"
        source.file_meta.MediaStorageSOPInstanceUID = source.SOPInstanceUID
        source.save_as(root / f"cases/a/xr/{number}.dcm")
    return root


def test_phi_gate_failures_block_validation_at_the_series(tmp_path: Path) -> None:
    result = validate_project(dicom_case(tmp_path))
    assert result.manifest is None
    phi = [str(p) for p in result.errors if "PHI gate" in p.message]
    assert phi, [str(p) for p in result.problems]
    assert all(m.startswith("cases/a/case.yaml:11:9: error: PHI gate [") for m in phi)
    assert any("PatientName (0010,0010)" in m and "2 of 2 files" in m for m in phi)
    assert any("PatientID (0010,0020)" in m for m in phi)
    assert all("CompressedSamples" not in m for m in phi)  # the value itself is never printed


def test_phi_results_are_cached_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from casesync.phi import gate

    root = dicom_case(tmp_path)
    first = [str(p) for p in validate_project(root).problems]
    monkeypatch.setattr(gate, "check_file", lambda *a, **k: pytest.fail("not cached"))
    monkeypatch.setattr(gate, "_check", lambda *a, **k: pytest.fail("not cached"))
    assert [str(p) for p in validate_project(root).problems] == first


def test_a_clean_series_is_known_clean_in_one_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casesync.phi import gate

    root = simple_repo(tmp_path, cases=2, images=3)
    assert validate_project(root).manifest is not None
    monkeypatch.setattr(gate.PhiCache, "get_many", lambda *a: pytest.fail("per-file lookup"))
    assert validate_project(root).manifest is not None
    # new content in one series: only that series is checked file by file again
    (root / "cases/case-01/xr/img1.png").write_bytes(png_bytes(4242))
    with pytest.raises(pytest.fail.Exception, match="per-file lookup"):
        validate_project(root)


def test_a_series_reports_every_problem_at_once(tmp_path: Path) -> None:
    text = SIMPLE_CASE.replace("images: xr", "images: xr\n        root: 7")
    root = one_case(
        tmp_path,
        text,
        images={
            "xr/1.png": png_bytes(1),
            "xr/2.png": png_bytes(1),
            "xr/3.gif": b"GIF89a" + bytes(20),
        },
    )
    assert messages(root) == [
        "cases/a/case.yaml:11:17: error: duplicate image in the series: cases/a/xr/2.png has the same content as cases/a/xr/1.png (remove one of them: each slice must be a distinct image)",
        "cases/a/case.yaml:11:17: error: series mixes formats (image/gif, image/png) (put each format in its own series)",
        "cases/a/case.yaml:12:15: error: root index 7 is out of range: the series has 3 images",
    ]


def test_a_file_listed_twice_is_a_duplicate(tmp_path: Path) -> None:
    root = one_case(tmp_path, SIMPLE_CASE.replace("images: xr", "images: [xr/1.png, xr/1.png]"))
    assert messages(root) == [
        "cases/a/case.yaml:11:17: error: duplicate image in the series: cases/a/xr/1.png is listed twice (remove one of them: each slice must be a distinct image)"
    ]


def test_two_files_of_one_sop_instance_are_named(tmp_path: Path) -> None:
    import pydicom
    from pydicom.data import get_testdata_file

    root = one_case(tmp_path, SIMPLE_CASE.replace("X-ray", "CT"), images={})
    source = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    (root / "cases/a/xr").mkdir()
    for number, uid in ((1, "1.2.3.1"), (2, "1.2.3.2"), (3, "1.2.3.1")):
        source.InstanceNumber = number  # different bytes; 1 and 3 are the same instance
        source.file_meta.MediaStorageSOPInstanceUID = uid
        source.save_as(root / f"cases/a/xr/{number}.dcm")
    duplicates = [m for m in messages(root) if "duplicate" in m]
    assert duplicates == [
        "cases/a/case.yaml:11:17: error: duplicate image in the series: cases/a/xr/3.dcm has the same SOPInstanceUID as cases/a/xr/1.dcm (remove one of them: each slice must be a distinct image)"
    ]
    phi = [m for m in messages(root) if "PHI gate" in m]
    assert phi  # the gate still ran on the series in the same run


def test_phi_lines_are_one_per_rule_names_first_and_the_advice_comes_once(tmp_path: Path) -> None:
    from casesync.cli.render import render_problems_json, render_problems_text

    result = validate_project(dicom_case(tmp_path))
    phi = [p for p in result.problems if "PHI gate" in p.message]
    rules = [p.message.split("]")[0] for p in phi]
    assert len(rules) == len(set(rules)) >= 5
    assert phi[0].message.startswith("PHI gate [person-name] PatientName (0010,0010)")
    assert phi[1].message.startswith("PHI gate [age-string] PatientAge (0010,1010)")
    assert phi[2].message.startswith("PHI gate [not-fixed-point] PatientID (0010,0020), ")
    assert all(p.hint is None and "casesync anonymise" not in p.message for p in phi)
    advice = (
        "to fix the errors above: run 'casesync anonymise SRC DST' and point the manifest at DST"
    )
    assert result.advice == [advice]
    text = render_problems_text(result.problems, result.advice)
    assert text.count("casesync anonymise") == 1 and text.splitlines()[-2] == advice
    assert json.loads(render_problems_json(result.problems, result.advice))["advice"] == [advice]


def test_phi_warnings_are_attached_to_their_series_for_the_plan(tmp_path: Path) -> None:
    from phifactory import clean_ct, write

    root = one_case(tmp_path, SIMPLE_CASE.replace("X-ray", "CT"), images={})
    (root / "cases/a/xr").mkdir()
    write(clean_ct(), root / "cases/a/xr/1.dcm")
    result = validate_project(root)
    assert result.manifest is not None and result.advice == []
    [series] = result.manifest.cases[0].studies[0].series
    [note] = series.notes
    assert note.code == "phi-lo-value"
    assert note.tags and all(tag in note.message for tag in note.tags)
    assert [str(p) for p in result.warnings] == [f"cases/a/case.yaml:11:9: warning: {note.message}"]
