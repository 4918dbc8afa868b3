"""The PHI gate on real files no one here wrote, and on files built to hit one rule each."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from phifactory import (
    OPTIONS,
    SECONDARY_CAPTURE,
    bundled,
    bundled_files,
    clean_ct,
    jpeg_with_exif_artist,
    png_with_text,
    write,
)
from policyref import would_change
from pydicom.datadict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from casesync.emulator.anonymiser_check import first_violation
from casesync.phi import gate
from casesync.phi.anonymise import anonymise_dataset, anonymise_tree
from casesync.phi.gate import PhiCache, check_file, check_files, summarize
from casesync.phi.policy import load_policy
from casesync.phi.report import render_json, render_text

DEFLATED = "1.2.840.10008.1.2.1.99"


def errors(path: Path, **kwargs: bool) -> set[tuple[str, str | None]]:
    return {(f.rule, f.tag) for f in check_file(path, **kwargs).findings if f.severity == "error"}


def rules(path: Path, **kwargs: bool) -> set[str]:
    return {finding.rule for finding in check_file(path, **kwargs).findings}


# --- real files ---


def test_ct_small_fails_with_the_specific_rules() -> None:
    found = errors(bundled("CT_small.dcm"))
    expected = {
        ("person-name", "PatientName (0010,0010)"),
        ("not-fixed-point", "PatientID (0010,0020)"),
        ("not-fixed-point", "StudyDate (0008,0020)"),
        ("not-fixed-point", "InstitutionName (0008,0080)"),
        ("not-fixed-point", "Private tags (0009,xxxx)"),
        ("not-fixed-point", "StudyInstanceUID (0020,000D)"),
        ("not-fixed-point", "SeriesInstanceUID (0020,000E)"),
        ("meta-uid", "MediaStorageSOPInstanceUID (0002,0003)"),
        ("identity-not-removed", "PatientIdentityRemoved (0012,0062)"),
        ("preamble", None),  # CT_small is a TIFF/DICOM dual-format file
        ("age-string", "PatientAge (0010,1010)"),
    }
    assert expected <= found


def test_reasons_never_carry_the_values() -> None:
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    secrets = [str(ds.PatientName), str(ds.PatientID), str(ds.InstitutionName), ds.StudyDate]
    text = repr(check_file(bundled("CT_small.dcm")).findings)
    assert not [secret for secret in secrets if secret and secret in text]


def test_every_bundled_file_is_checked_and_none_passes() -> None:
    reports = check_files(bundled_files())
    assert len(reports) > 150
    assert [report.path for report in reports if report.passed] == []


@pytest.mark.parametrize(
    "name",
    ["rtplan.dcm", "rtdose.dcm", "test-SR.dcm", "waveform_ecg.dcm", "dicomdirtests/DICOMDIR",
     "MR_truncated.dcm", "no_meta.dcm", "README.txt", "liver_1frame.dcm"],
)  # fmt: skip
def test_non_images_and_broken_files_are_unsupported(name: str) -> None:
    assert rules(bundled(name)) == {"unsupported-object"}


def test_multi_frame_ultrasound_warns() -> None:
    found = rules(bundled("examples_ybr_color.dcm"))
    assert {"multi-frame", "burned-in-unknown", "source-ae-title"} <= found


# --- one rule at a time ---


@pytest.fixture
def clean(tmp_path: Path) -> Dataset:
    ds = clean_ct()
    assert check_file(write(ds, tmp_path / "clean.dcm")).passed
    return ds


def test_clean_file_has_no_errors(clean: Dataset, tmp_path: Path) -> None:
    assert errors(write(clean, tmp_path / "x.dcm")) == set()


def test_identifier_two_sequence_levels_deep(clean: Dataset, tmp_path: Path) -> None:
    inner = Dataset()
    inner.PatientName = "Doe^Jane"
    middle = Dataset()
    middle.ReferencedSeriesSequence = Sequence([inner])
    clean.ReferencedStudySequence = Sequence([middle])
    report = check_file(write(clean, tmp_path / "x.dcm"))
    assert {(f.rule, f.tag) for f in report.findings if f.severity == "error"} == {
        ("not-fixed-point", "ReferencedStudySequence (0008,1110)"),
        ("person-name", "PatientName (0010,0010)"),
    }
    nested = next(f for f in report.findings if f.rule == "person-name")
    assert "inside ReferencedStudySequence (0008,1110) > ReferencedSeriesSequence" in nested.reason
    assert "Doe" not in nested.reason


def test_private_tag(clean: Dataset, tmp_path: Path) -> None:
    block = clean.private_block(0x0009, "ACME", create=True)
    block.add_new(0x01, "LO", "something private")
    assert errors(write(clean, tmp_path / "x.dcm")) == {
        ("not-fixed-point", "Private tags (0009,xxxx)")
    }


def test_overlay_group(clean: Dataset, tmp_path: Path) -> None:
    clean.add_new(0x60000010, "US", 8)
    clean.add_new(0x60000011, "US", 8)
    assert errors(write(clean, tmp_path / "x.dcm")) == {("not-fixed-point", "Overlay (6000,xxxx)")}


def test_patient_age(clean: Dataset, tmp_path: Path) -> None:
    clean.PatientAge = "042Y"
    assert errors(write(clean, tmp_path / "x.dcm")) == {("age-string", "PatientAge (0010,1010)")}


def test_uid_outside_the_namespace(clean: Dataset, tmp_path: Path) -> None:
    clean.SeriesInstanceUID = "2.25.123456789"
    assert errors(write(clean, tmp_path / "x.dcm")) == {
        ("not-fixed-point", "SeriesInstanceUID (0020,000E)")
    }


def test_sop_instance_uid_in_the_dataset(clean: Dataset, tmp_path: Path) -> None:
    clean.SOPInstanceUID = clean.file_meta.MediaStorageSOPInstanceUID
    assert errors(write(clean, tmp_path / "x.dcm")) == {
        ("not-fixed-point", "SOPInstanceUID (0008,0018)")
    }


def test_original_uid_left_in_the_meta_header(clean: Dataset, tmp_path: Path) -> None:
    clean.file_meta.MediaStorageSOPInstanceUID = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    assert errors(write(clean, tmp_path / "x.dcm")) == {
        ("meta-uid", "MediaStorageSOPInstanceUID (0002,0003)")
    }


def test_burned_in_annotation_needs_the_opt_in(clean: Dataset, tmp_path: Path) -> None:
    clean.BurnedInAnnotation = "YES"
    path = write(clean, tmp_path / "x.dcm")
    assert errors(path) == {("burned-in-annotation", "BurnedInAnnotation (0028,0301)")}
    assert check_file(path, burned_in_reviewed=True).passed


def test_nonzero_preamble(clean: Dataset, tmp_path: Path) -> None:
    clean.preamble = b"II*\x00" + b"\x00" * 124
    assert errors(write(clean, tmp_path / "x.dcm")) == {("preamble", None)}


def test_private_meta_fails_and_ae_title_warns(clean: Dataset, tmp_path: Path) -> None:
    clean.file_meta.SourceApplicationEntityTitle = "HOSPITAL_CT1"
    path = write(clean, tmp_path / "a.dcm")
    assert "source-ae-title" in rules(path) and check_file(path).passed
    clean.file_meta.PrivateInformationCreatorUID = "1.2.3"
    clean.file_meta.PrivateInformation = b"xy"
    assert ("private-meta", "PrivateInformationCreatorUID (0002,0100)") in errors(
        write(clean, tmp_path / "b.dcm")
    )


def test_identity_flags(clean: Dataset, tmp_path: Path) -> None:
    clean.PatientIdentityRemoved = "NO"
    clean.RecognizableVisualFeatures = "YES"
    found = {rule for rule, _ in errors(write(clean, tmp_path / "x.dcm"))}
    assert {"identity-not-removed", "recognizable-features"} <= found


def test_replace_accepts_exactly_the_policys_values(clean: Dataset, tmp_path: Path) -> None:
    clean.SeriesDate, clean.ContentTime, clean.StudyDate = "19700101", "0000", ""
    assert errors(write(clean, tmp_path / "a.dcm")) == set()
    clean.SeriesDate, clean.StudyDate = "20240115", "19700101"
    assert errors(write(clean, tmp_path / "b.dcm")) == {
        ("not-fixed-point", "SeriesDate (0008,0021)"),
        ("not-fixed-point", "StudyDate (0008,0020)"),
    }


def test_warnings_do_not_block(clean: Dataset, tmp_path: Path) -> None:
    clean.SeriesDescription = "CT 20240115 head"
    clean.SOPClassUID = SECONDARY_CAPTURE  # a screen capture, with no BurnedInAnnotation
    path = write(clean, tmp_path / "x.dcm")
    assert {"series-description", "burned-in-unknown", "lo-value"} <= rules(path)
    assert check_file(path).passed


def test_truncated_and_fake_dicom(clean: Dataset, tmp_path: Path) -> None:
    data = write(clean, tmp_path / "x.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) - 100])
    (tmp_path / "fake.dcm").write_bytes(b"not dicom at all")
    clean.NumberOfFrames = 3  # more frames than the pixel data holds
    write(clean, tmp_path / "frames.dcm")
    assert rules(tmp_path / "frames.dcm") == {"unsupported-object"}
    assert rules(tmp_path / "cut.dcm") == {"unsupported-object"}
    assert rules(tmp_path / "fake.dcm") == {"unsupported-object"}


def test_image_metadata_warns(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(png_with_text("Author", "Dr Jane Doe"))
    (tmp_path / "b.jpg").write_bytes(jpeg_with_exif_artist("Jane Doe"))
    png, jpeg = check_file(tmp_path / "a.png"), check_file(tmp_path / "b.jpg")
    assert png.passed and [f.tag for f in png.findings] == ["PNG tEXt Author"]
    assert jpeg.passed and {f.tag for f in jpeg.findings} == {"EXIF Artist", "JPEG comment"}
    assert "Jane" not in repr(png.findings) + repr(jpeg.findings)


# --- many files: parallel, cache, summaries ---


def test_parallel_results_match_serial_and_keep_order() -> None:
    paths = [path for path in bundled_files() if path.suffix == ".dcm"][:80]
    paths = paths[::-1]
    parallel = check_files(paths, workers=2)
    assert [report.path for report in parallel] == paths
    assert parallel == [check_file(path) for path in paths]


def test_cache_hits_and_invalidation(
    clean: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(clean, tmp_path / "x.dcm")
    with PhiCache(tmp_path / "phi.sqlite") as cache:
        first = check_files([path], cache=cache)
        monkeypatch.setattr(gate, "check_file", _must_not_run)
        assert check_files([path], cache=cache) == first  # hit: the gate did not run
        with pytest.raises(AssertionError):  # the opt-in is part of the key
            check_files([path], cache=cache, burned_in_reviewed=True)
        clean.PatientAge = "042Y"
        write(clean, path)
        with pytest.raises(AssertionError):  # new content, new hash: checked again
            check_files([path], cache=cache)
    with PhiCache(tmp_path / "phi.sqlite", ruleset="gate-2") as other:
        assert other.get_many([gate._sha256(path)], False) == {}


def _must_not_run(path: Path, *, burned_in_reviewed: bool = False) -> gate.FileReport:
    raise AssertionError(f"gate ran on {path}")


def test_summaries_and_rendering_count_files_and_hide_values(tmp_path: Path) -> None:
    paths = [bundled("MR_small.dcm"), bundled("MR_small_implicit.dcm")]
    reports = check_files(paths)
    summary = next(s for s in summarize(reports) if s.rule == "person-name")
    assert (summary.count, summary.example) == (2, paths[0])
    text = render_text(reports)
    assert "[person-name] PatientName (0010,0010), " in text  # then the other names
    assert ": 2 file(s), e.g. MR_small.dcm: " in text
    name = str(pydicom.dcmread(paths[0]).PatientName)
    assert name not in text and name not in render_json(reports)


# --- false negatives the format-1 gate had: each fails the gate and the server's check ---


def clean_jpeg2000() -> Dataset:
    ds = pydicom.dcmread(bundled("JPEG2000.dcm"))
    anonymise_dataset(ds, OPTIONS)
    return ds


def signature_with_a_name(ds: Dataset) -> None:
    item = Dataset()
    item.add_new(0x00100010, "PN", "Doe^Jane")
    ds.add_new(0xFFFAFFFA, "SQ", Sequence([item]))  # DigitalSignaturesSequence, after pixels


def private_after_pixels(ds: Dataset) -> None:
    ds.private_block(0x7FE1, "ACME", create=True).add_new(0x01, "LO", "Doe^John")


def removed_tag(vr: str) -> int:
    """A public tag of this VR that the policy does not list (so it removes it)."""
    listed = load_policy().catch_all
    return next(
        tag
        for tag, entry in sorted(DicomDictionary.items())
        if entry[0] == vr and tag not in listed and 0x0008 <= tag >> 16 < 0x7FE0
    )


FALSE_NEGATIVES = {
    "private-after-pixels": private_after_pixels,
    "signature-after-pixels": signature_with_a_name,
    "us-zero": lambda ds: ds.add_new(removed_tag("US"), "US", 0),
    "fd-zero": lambda ds: ds.add_new(removed_tag("FD"), "FD", 0.0),
    "ss-0x2020": lambda ds: ds.add_new(removed_tag("SS"), "SS", 0x2020),
    "ul-92": lambda ds: ds.add_new(removed_tag("UL"), "UL", 92),
    "pn-carets": lambda ds: ds.add_new(0x00080090, "PN", "^^^^"),  # ReferringPhysicianName
    "patient-name-carets": lambda ds: ds.add_new(0x00100010, "PN", "^^^^"),
    "empty-frame-of-reference": lambda ds: setattr(ds, "FrameOfReferenceUID", ""),
    "series-date-empty": lambda ds: setattr(ds, "SeriesDate", ""),
    "stamp-other": lambda ds: setattr(ds, "DeidentificationMethod", "casesync"),
    "deflated": lambda ds: setattr(ds.file_meta, "TransferSyntaxUID", DEFLATED),
}


@pytest.mark.parametrize("base", ["ct", "jpeg2000"])
@pytest.mark.parametrize("name", FALSE_NEGATIVES)
def test_each_false_negative_fails_gate_and_server(base: str, name: str, tmp_path: Path) -> None:
    ds = clean_ct() if base == "ct" else clean_jpeg2000()
    assert check_file(write(ds, tmp_path / "clean.dcm")).passed
    FALSE_NEGATIVES[name](ds)
    path = write(ds, tmp_path / f"{name}.dcm")
    assert not check_file(path).passed
    assert first_violation(path.read_bytes()) is not None
    assert would_change(pydicom.dcmread(path)) != []


def test_deflated_input_is_named_and_anonymise_inflates_it(clean: Dataset, tmp_path: Path) -> None:
    clean.file_meta.TransferSyntaxUID = DEFLATED
    (tmp_path / "src").mkdir()
    path = write(clean, tmp_path / "src" / "deflated.dcm")
    [finding] = [f for f in check_file(path).findings if f.severity == "error"]
    assert finding.tag == "TransferSyntaxUID (0002,0010)"
    assert "the server cannot read deflated DICOM" in finding.reason
    out = tmp_path / "out"
    anonymise_tree(path, out, OPTIONS.key)
    assert check_file(out / "deflated.dcm").passed
    inflated = pydicom.dcmread(out / "deflated.dcm")
    assert inflated.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert inflated.PixelData == clean.PixelData


def test_elements_after_pixel_data_are_read_and_named(tmp_path: Path) -> None:
    for ds in (clean_ct(), clean_jpeg2000()):
        signature_with_a_name(ds)
        found = errors(write(ds, tmp_path / "signed.dcm"))
        assert ("person-name", "PatientName (0010,0010)") in found
        assert ("not-fixed-point", "DigitalSignaturesSequence (FFFA,FFFA)") in found


def test_values_the_anonymiser_writes_itself_pass(clean: Dataset, tmp_path: Path) -> None:
    clean.SOPClassUID = SECONDARY_CAPTURE  # the catch-all alone
    clean.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    clean.Manufacturer = clean.ManufacturerModelName = "REMOVED"
    clean.SeriesDate, clean.SeriesTime = "19700101", "0000"
    assert errors(write(clean, tmp_path / "sc.dcm")) == set()


def test_a_syntax_the_servers_parser_cannot_read_fails_and_is_not_anonymised(
    tmp_path: Path,
) -> None:
    ds = clean_jpeg2000()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"  # HTJ2K: not in its parser
    (tmp_path / "src").mkdir()
    path = write(ds, tmp_path / "src" / "htj2k.dcm")
    assert errors(path) == {("transfer-syntax", "TransferSyntaxUID (0002,0010)")}
    assert first_violation(path.read_bytes()) is not None
    report = anonymise_tree(tmp_path / "src", tmp_path / "out", OPTIONS.key)
    assert report.written == 0
    assert "the server cannot read transfer syntax" in report.skipped[0].reason
