"""casesync preview: the site's structure for the examples, caching, selection, errors, safety."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pydicom
import pytest
from htmltree import Node, parse
from phifactory import OPTIONS, bundled, write
from repofactory import write_case, write_pngs, write_project

from casesync.errors import ConfigError
from casesync.phi.anonymise import anonymise_dataset
from casesync.preview.build import build_preview
from casesync.project.validate import validate_project
from casesync.sync.workflow import InvalidProject, prepare_plan

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PRESETS = ["file", "soft", "lung", "bone", "brain"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples' preview, built once for the structure tests."""
    root = tmp_path_factory.mktemp("site") / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".casesync"))
    build_preview(root)
    return root / ".casesync" / "preview"


def page(path: Path) -> Node:
    return parse(path.read_text(encoding="utf-8"))


def stack_urls(stack: Node) -> dict[str, list[str]]:
    urls: dict[str, list[str]] = json.loads(stack.find("script", "slices").text())
    return urls


def test_index_lists_every_case_with_its_title(site: Path) -> None:
    links = page(site / "index.html").find("ul", "cases").find_all("a")
    assert {a.text(): a.attrs["href"] for a in links} == {
        "Ingested coin in the upper oesophagus": "coin-ingestion/index.html",
        "Vertebral haemangioma": "vertebral-haemangioma/index.html",
        "Vestibular schwannoma": "vestibular-schwannoma/index.html",
    }


def test_ct_case_page_shows_text_study_and_a_stack_with_presets(site: Path) -> None:
    doc = page(site / "vertebral-haemangioma" / "index.html")
    assert doc.find("h1", "title").text() == "Vertebral haemangioma"
    meta = doc.find("p", "meta").text()
    assert "System: Spine" in meta and "Diagnostic certainty: Almost Certain" in meta
    assert "chronic back pain" in doc.find("section", "presentation").text()
    discussion = doc.find("section", "discussion")
    assert discussion.find("strong").text() == "Vertebral haemangiomas"
    study = doc.find("section", "study")
    assert study.find("h2").text() == "CT: CT thoracic spine"
    assert "polka-dot sign" in study.find("div", "findings").text()
    stack = study.find("div", "stack")
    assert (stack.attrs["data-count"], stack.attrs["data-index"]) == ("20", "10")  # root: middle
    urls = stack_urls(stack)
    assert list(urls) == PRESETS and all(len(v) == 20 for v in urls.values())
    assert len({u for v in urls.values() for u in v}) == 100  # every rendering is its own file
    assert all((site / "vertebral-haemangioma" / u).is_file() for v in urls.values() for u in v)
    assert stack.find("img", "slice").attrs["src"] == urls["file"][10]  # root image first
    assert [b.attrs["data-preset"] for b in stack.find_all("button")] == PRESETS
    assert stack.find("input").attrs["max"] == "19"
    assert stack.find("a", "review-link").attrs["href"] == "review-1-1.html"


def test_mri_case_has_one_stack_per_series_and_no_ct_presets(site: Path) -> None:
    doc = page(site / "vestibular-schwannoma" / "index.html")
    stacks = doc.find("section", "study").find_all("div", "stack")
    assert [s.find("div", "label").text() for s in stacks] == ["Axial, T2", "Axial, T1 C+"]
    assert [s.attrs["data-count"] for s in stacks] == ["12", "12"]
    assert all(list(stack_urls(s)) == ["file"] and not s.find_all("button") for s in stacks)


def test_png_slices_are_copied_as_they_are(site: Path) -> None:
    doc = page(site / "coin-ingestion" / "index.html")
    studies = doc.find_all("section", "study")
    assert [s.find("h2").text() for s in studies] == [
        "X-ray: Chest radiograph",
        "Photograph: Retrieved coin",
    ]
    src = studies[0].find("img", "slice").attrs["src"]
    source = EXAMPLES / "cases" / "coin-ingestion" / "xray" / "frontal.png"
    assert (site / "coin-ingestion" / src).read_bytes() == source.read_bytes()


def test_review_page_shows_every_slice_with_sop_class_and_flag(site: Path) -> None:
    doc = page(site / "vertebral-haemangioma" / "review-1-1.html")
    figures = doc.find_all("figure", "review-slice")
    assert len(figures) == 20
    first = {
        dt.text(): dd.text()
        for dt, dd in zip(figures[0].find_all("dt"), figures[0].find_all("dd"), strict=True)
    }
    assert first["SOP class"] == "CT Image Storage"
    assert first["BurnedInAnnotation"] == "absent"
    assert first["File"] == "cases/vertebral-haemangioma/ct/axial/IM-0001.dcm"
    assert "(root image)" in figures[10].text()
    stack = page(site / "vertebral-haemangioma" / "index.html").find("div", "stack")
    shown = [f.find("img").attrs["src"] for f in figures]
    assert shown == stack_urls(stack)["file"]  # slice order, as stored
    coin = page(site / "coin-ingestion" / "review-1-1.html").find("figure", "review-slice")
    assert "n/a (not DICOM)" in coin.text()


def test_second_run_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".casesync"))
    first = build_preview(root, ["vestibular-schwannoma"])
    out = root / ".casesync" / "preview"
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    second = build_preview(root, ["vestibular-schwannoma"])
    assert (first.images_written, first.pages_written) == (24, 4)
    assert (second.images_written, second.pages_written, second.images_reused) == (0, 0, 24)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_selected_keys_only_and_unknown_key_suggests(tmp_path: Path) -> None:
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".casesync"))
    result = build_preview(root, ["coin-ingestion"], out=tmp_path / "out")
    assert result.cases == 1
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["coin-ingestion", "img", "index.html"]
    with pytest.raises(ConfigError, match="did you mean 'coin-ingestion'"):
        build_preview(root, ["coin-ingestoin"], out=tmp_path / "out")


CASE = """
    title: {title}
    system: Chest
    body: {body}
    studies:
      - modality: X-ray
        findings: <p>Clear lungs</p>
        series:
          - images: xr
"""


def test_manifest_text_is_sanitised_on_the_page(tmp_path: Path) -> None:
    """Raw HTML cannot carry script (validate refuses it); Markdown's inline HTML is sanitised."""
    write_project(tmp_path)
    body = '"Fine\\n\\n<script>alert(1)</script><img src=x onerror=alert(2)>"'
    text = CASE.format(title="Script test", body=body).replace(
        "findings: <p>Clear lungs</p>",
        "findings: '<b onclick=\"steal()\">Clear</b> [lungs](javascript:alert(1))'",
    )
    case_dir = write_case(tmp_path, "c1", textwrap.dedent(text) + "text_format: markdown\n")
    write_pngs(case_dir / "xr", ["a.png"])
    build_preview(tmp_path)
    page = (tmp_path / ".casesync" / "preview" / "cases-c1" / "index.html").read_text()
    doc = parse(page)
    assert doc.find("section", "discussion").find("p").text() == "Fine"
    findings = doc.find("div", "findings")
    assert findings.find("b").attrs == {}  # the event attribute is gone
    assert all(not a.attrs.get("href", "").startswith("javascript") for a in doc.find_all("a"))
    assert "<script>alert" not in page and "onclick" not in page and "onerror" not in page
    scripts = doc.find_all("script")
    assert [s.attrs.get("type") for s in scripts] == ["application/json", None]


def test_invalid_project_is_reported_as_plan_reports_it(tmp_path: Path) -> None:
    write_project(tmp_path)
    write_case(tmp_path, "c1", CASE.format(title="", body="x").replace("Chest", "Chset"))
    with pytest.raises(InvalidProject) as raised:
        build_preview(tmp_path)
    assert raised.value.result.problems == validate_project(tmp_path).problems
    assert not (tmp_path / ".casesync" / "preview").exists()
    run, plan = (
        subprocess.run(
            [sys.executable, "-m", "casesync", command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for command in ("preview", "plan")
    )
    assert run.returncode == plan.returncode == 3
    assert run.stdout == plan.stdout and "Chset" in run.stdout


def test_refuses_to_write_through_a_symlinked_output(tmp_path: Path) -> None:
    write_project(tmp_path / "repo")
    case_dir = write_case(tmp_path / "repo", "c1", CASE.format(title="T", body="x"))
    write_pngs(case_dir / "xr", ["a.png"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "repo" / ".casesync").mkdir()
    (tmp_path / "repo" / ".casesync" / "preview").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="symlink"):
        build_preview(tmp_path / "repo")
    assert list(elsewhere.iterdir()) == []


def test_undecodable_dicom_gets_a_placeholder_and_a_note(tmp_path: Path) -> None:
    write_project(tmp_path)
    case_dir = write_case(
        tmp_path,
        "c1",
        """
        title: JPEG-LS
        system: Chest
        studies:
          - modality: MRI
            series:
              - images: mr
        """,
    )
    (case_dir / "mr").mkdir()
    ds = pydicom.dcmread(bundled("MR_small_jpeg_ls_lossless.dcm"))
    anonymise_dataset(ds, OPTIONS)
    write(ds, case_dir / "mr" / "a.dcm")
    for run in (1, 2):  # the second run reuses the placeholder and still shows the note
        result = build_preview(tmp_path)
        assert result.images_written == (1 if run == 1 else 0) + (run == 1)  # png + its note
        doc = page(tmp_path / ".casesync" / "preview" / "cases-c1" / "index.html")
        assert "no pixel data handler" in doc.find("p", "note").text()
        assert "JPEG-LS Lossless" in doc.find("p", "note").text()


def test_a_series_flagged_for_burned_in_text_still_gets_its_review_page(tmp_path: Path) -> None:
    """The gate refuses it for plan and apply; the preview (local only) shows what to review."""
    write_project(tmp_path)
    case_dir = write_case(
        tmp_path,
        "c1",
        """
        title: Burned in
        system: Chest
        studies:
          - modality: CT
            series:
              - images: ct
        """,
    )
    (case_dir / "ct").mkdir()
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    anonymise_dataset(ds, OPTIONS)
    ds.BurnedInAnnotation = "YES"
    write(ds, case_dir / "ct" / "a.dcm")
    with pytest.raises(InvalidProject):  # nothing with this flag goes out
        prepare_plan(tmp_path)
    build_preview(tmp_path)
    review = page(tmp_path / ".casesync" / "preview" / "cases-c1" / "review-1-1.html")
    figure = review.find("figure", "review-slice")
    facts = {
        dt.text(): dd.text()
        for dt, dd in zip(figure.find_all("dt"), figure.find_all("dd"), strict=True)
    }
    assert facts["BurnedInAnnotation"] == "YES"
    shown = subprocess.run(
        [sys.executable, "-m", "casesync", "-C", str(tmp_path), "preview"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "BurnedInAnnotation" in shown.stdout + shown.stderr  # the finding is still shown


def test_command_reports_and_opens_the_index(tmp_path: Path) -> None:
    root = tmp_path / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns(".casesync"))
    marker = tmp_path / "opened"
    opener = f"import sys, pathlib; pathlib.Path({str(marker)!r}).write_text(sys.argv[1])"
    run = subprocess.run(
        [sys.executable, "-m", "casesync", "-C", str(root), "preview", "coin-ingestion", "--open"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "BROWSER": f'{sys.executable} -c "{opener}" %s',
        },
    )
    index = root / ".casesync" / "preview" / "index.html"
    assert run.returncode == 0, run.stderr
    assert run.stdout == (
        "Preview of 1 case (2 slices): 4 pages and 2 images written, 0 images reused.\n"
        f"Open {index.as_uri()}\n"
    )
    assert marker.read_text() == index.as_uri()
