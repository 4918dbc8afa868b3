from dataclasses import replace
from pathlib import Path

from casesync.api.models import CaseFields
from casesync.project.manifest import (
    CaseSpec,
    ImageFile,
    Location,
    Manifest,
    Project,
    SeriesNote,
    SeriesSpec,
    StudySpec,
)
from casesync.sync.lockfile import (
    Lock,
    LockedCase,
    LockedFile,
    LockedSeries,
    LockedStudy,
    fingerprints,
)
from casesync.sync.plan import (
    CreateCase,
    CreateSeries,
    CreateStudy,
    MarkUploadFinished,
    make_plan,
    match_studies,
)

API = "https://radiopaedia.org"
HERE = Location("cases/a/case.yaml", 1, 1)


def series(*hashes: str, key: str | None = None, perspective: str = "Axial") -> SeriesSpec:
    files = tuple(ImageFile(f"cases/a/{h}.png", h * 64, 100) for h in hashes)
    return SeriesSpec(files, "image/png", len(files) // 2, perspective, None, key, False, HERE)


def study(
    modality: str, *series_specs: SeriesSpec, caption: str | None = None, key: str | None = None
) -> StudySpec:
    return StudySpec(modality, caption, None, tuple(series_specs), key, HERE)


def case(key: str, *studies: StudySpec, title: str = "Case") -> CaseSpec:
    return CaseSpec(key, CaseFields(title=title, system_id=4), tuple(studies), HERE)


def manifest(*cases: CaseSpec) -> Manifest:
    return Manifest(Project(Path("/repo"), None, (), {}), tuple(cases))


def locked(spec: CaseSpec, case_id: int = 10, finished: bool = True) -> LockedCase:
    """The lock entry apply would have written for ``spec``."""
    studies = []
    for index, st in enumerate(spec.studies):
        series_list = [
            LockedSeries(
                content_id=s.content_id,
                key=s.key,
                job_id=f"job-{index}-{r}",
                fields=fingerprints(s.sent_fields()),
                files=[
                    LockedFile(f.path, f.size, f.sha256, upload_id=1000 + n)
                    for n, f in enumerate(s.files)
                ],
            )
            for r, s in enumerate(st.series)
        ]
        studies.append(
            LockedStudy(100 + index, 2 + index, st.key, fingerprints(st.sent_fields()), series_list)
        )
    return LockedCase(case_id, "", fingerprints(spec.sent_fields()), finished, studies)


def kinds(plan_case: object) -> list[str]:
    return [type(a).__name__ for a in plan_case.actions]  # type: ignore[attr-defined]


def test_fresh_case_creates_everything_in_order() -> None:
    spec = case("a", study("CT", series("1", "2")), study("X-ray", series("3")))
    plan = make_plan(manifest(spec), Lock(API), API)
    [cp] = plan.cases
    assert kinds(cp) == [
        "CreateCase",
        "CreateStudy",
        "CreateSeries",
        "CreateStudy",
        "CreateSeries",
        "MarkUploadFinished",
    ]
    positions = [a.position for a in cp.actions if isinstance(a, CreateStudy)]
    assert positions == [2, 3]
    assert plan.upload_files == 3 and plan.upload_bytes == 300
    assert plan.has_changes


def test_applied_case_is_a_no_op() -> None:
    spec = case("a", study("CT", series("1", "2")))
    plan = make_plan(manifest(spec), Lock(API, {"a": locked(spec)}), API)
    assert not plan.has_changes
    assert plan.warning_count == 0
    assert plan.cases[0].case_id == 10


def test_unfinished_case_only_marks_upload_finished() -> None:
    spec = case("a", study("CT", series("1")))
    plan = make_plan(manifest(spec), Lock(API, {"a": locked(spec, finished=False)}), API)
    assert kinds(plan.cases[0]) == ["MarkUploadFinished"]


def test_new_study_in_the_middle_creates_only_that_study() -> None:
    old = case("a", study("CT", series("1")), study("X-ray", series("3")))
    new = case(
        "a", study("CT", series("1")), study("MRI", series("2")), study("X-ray", series("3"))
    )
    plan = make_plan(manifest(new), Lock(API, {"a": locked(old)}), API)
    actions = plan.cases[0].actions
    assert [type(a) for a in actions] == [CreateStudy, CreateSeries, MarkUploadFinished]
    assert isinstance(actions[0], CreateStudy) and actions[0].modality == "MRI"
    assert isinstance(actions[1], CreateSeries) and actions[1].study_id is None
    assert {w.code for w in plan.cases[0].warnings} == {"study-order"}


def test_reordered_studies_are_still_the_same_studies() -> None:
    first, second = study("CT", series("1")), study("X-ray", series("2"))
    plan = make_plan(
        manifest(case("a", second, first)), Lock(API, {"a": locked(case("a", first, second))}), API
    )
    assert not plan.has_changes


def test_study_caption_change_is_matched_by_its_series_and_reported() -> None:
    old = case("a", study("CT", series("1"), caption="old"))
    new = case("a", study("CT", series("1"), caption="new"))
    plan = make_plan(manifest(new), Lock(API, {"a": locked(old)}), API)
    assert not plan.has_changes
    [warning] = plan.cases[0].warnings
    assert warning.code == "study-changed" and warning.fields == ("caption",)


def test_explicit_study_key_survives_any_change() -> None:
    old = case("a", study("CT", series("1"), caption="old", key="ct"))
    new = case("a", study("CT", series("2"), caption="new", key="ct"))
    plan = make_plan(manifest(new), Lock(API, {"a": locked(old)}), API)
    [create] = plan.cases[0].actions[:1]
    assert isinstance(create, CreateSeries) and create.study_id == 100
    assert {w.code for w in plan.cases[0].warnings} == {"study-changed", "series-removed"}


def test_case_metadata_change_is_a_warning_with_fields() -> None:
    old = case("a", study("CT", series("1")), title="Old title")
    new = case("a", study("CT", series("1")), title="New title")
    plan = make_plan(manifest(new), Lock(API, {"a": locked(old)}), API)
    assert not plan.has_changes
    [warning] = plan.cases[0].warnings
    assert warning.code == "case-changed" and warning.fields == ("title",)


def test_adding_a_file_to_a_series_creates_a_new_series_uploading_one_file() -> None:
    old = case("a", study("CT", series("1", "2")))
    new = case("a", study("CT", series("1", "2", "3")))
    plan = make_plan(manifest(new), Lock(API, {"a": locked(old)}), API)
    [create, finish] = plan.cases[0].actions
    assert isinstance(create, CreateSeries) and isinstance(finish, MarkUploadFinished)
    assert (create.upload_files, create.image_count, create.study_id) == (1, 3, 100)
    assert [w.code for w in plan.cases[0].warnings] == ["series-removed"]


def test_keyed_series_with_new_images_is_reported_as_replaced() -> None:
    old = case("a", study("CT", series("1", key="ax")))
    new = case("a", study("CT", series("2", key="ax")))
    plan = make_plan(manifest(new), Lock(API, {"a": locked(old)}), API)
    assert [w.code for w in plan.cases[0].warnings] == ["series-replaced"]
    assert plan.count(CreateSeries) == 1


def test_series_metadata_change_is_a_warning() -> None:
    old = case("a", study("CT", series("1", perspective="Axial")))
    new = case("a", study("CT", series("1", perspective="Coronal")))
    plan = make_plan(manifest(new), Lock(API, {"a": locked(old)}), API)
    assert not plan.has_changes
    assert plan.cases[0].warnings[0].fields == ("perspective",)


def test_a_file_shared_by_two_new_series_is_uploaded_once() -> None:
    spec = case("a", study("CT", series("1", "2"), series("2", "3")))
    plan = make_plan(manifest(spec), Lock(API), API)
    assert plan.upload_files == 3


def test_files_already_on_the_server_are_not_uploaded_again() -> None:
    other = case("b", study("CT", series("1")))
    spec = case("a", study("CT", series("1", "2")))
    plan = make_plan(manifest(other, spec), Lock(API, {"b": locked(other)}), API)
    [create] = [a for a in plan.cases[1].actions if isinstance(a, CreateSeries)]
    assert create.upload_files == 1


def test_removed_case_is_a_warning_never_a_delete() -> None:
    gone = case("gone", study("CT", series("1")))
    plan = make_plan(manifest(), Lock(API, {"gone": locked(gone)}), API)
    assert not plan.has_changes
    assert [w.code for w in plan.warnings] == ["case-removed"]


def test_inputs_digest_tracks_manifest_and_lock() -> None:
    spec = case("a", study("CT", series("1")))
    base = make_plan(manifest(spec), Lock(API), API).inputs_digest
    assert make_plan(manifest(spec), Lock(API), API).inputs_digest == base
    changed = replace(spec, fields=replace(spec.fields, title="Other"))
    assert make_plan(manifest(changed), Lock(API), API).inputs_digest != base
    assert make_plan(manifest(spec), Lock(API, {"a": locked(spec)}), API).inputs_digest != base
    assert make_plan(manifest(spec), Lock(API), "http://127.0.0.1:1").inputs_digest != base


def test_identical_studies_match_in_order() -> None:
    studies = (study("X-ray", series("1")), study("X-ray", series("1")))
    lock_studies = locked(case("a", *studies)).studies
    matches = match_studies(studies, lock_studies)
    assert [matches[0].study_id, matches[1].study_id] == [100, 101]


def test_plan_order_is_the_manifest_order() -> None:
    specs = [case(k, study("CT", series(k))) for k in ("b", "a", "c")]
    plan = make_plan(manifest(*specs), Lock(API), API)
    assert [c.key for c in plan.cases] == ["b", "a", "c"]
    assert all(isinstance(c.actions[0], CreateCase) for c in plan.cases)


def test_phi_warnings_of_a_series_to_create_are_plan_warnings() -> None:
    note = SeriesNote("phi-lo-value", "PHI gate [lo-value] X (0008,0080): check it", ("X",))
    noted = replace(series("1", "2"), notes=(note,))
    spec = case("a", study("CT", series("9")), study("CT", noted))
    plan = make_plan(manifest(spec), Lock(API, {}), API)
    [warning] = plan.cases[0].warnings
    assert warning.code == "phi-lo-value"
    assert warning.message == "study 2 series 1: PHI gate [lo-value] X (0008,0080): check it"
    assert warning.fields == ("X",)
    assert plan.warning_count == 1


def test_phi_warnings_of_a_series_already_sent_are_not_repeated() -> None:
    note = SeriesNote("phi-lo-value", "PHI gate [lo-value] X (0008,0080): check it", ("X",))
    spec = case("a", study("CT", replace(series("1"), notes=(note,))))
    plan = make_plan(manifest(spec), Lock(API, {"a": locked(spec)}), API)
    assert not plan.has_changes and plan.warning_count == 0
    assert replace(series("1"), notes=(note,)) == series("1")  # notes are not identity
