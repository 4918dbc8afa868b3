"""anonymise over real-world files no one here wrote, held against the policy's own reading.

The corpus: pydicom's bundled test files, the pydicom-data wheel and deid-data (test extras):
CT, MR, US, CR, DX, NM, SC, multi-frame, every common transfer syntax, deflate included.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pydicom
import pytest
from phifactory import KEY, corpus_roots
from policyref import fixed_point, would_change
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from casesync.emulator.anonymiser_check import first_violation
from casesync.phi.anonymise import anonymise_tree
from casesync.phi.gate import check_file, check_files
from casesync.phi.policy import DEFLATED_SYNTAXES


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def read(path: Path, **kwargs: bool) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, **kwargs)


@pytest.fixture(scope="module")
def corpus_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where anonymise wrote the whole corpus (one folder per source)."""
    out = tmp_path_factory.mktemp("corpus")
    for name, root in corpus_roots().items():
        anonymise_tree(root, out / name, KEY)
    return out


@pytest.fixture(scope="module")
def anonymised(corpus_out: Path) -> dict[Path, Path]:
    """output -> source, for every file anonymise wrote from the corpus."""
    roots = corpus_roots()
    return {
        path: roots[path.relative_to(corpus_out).parts[0]].joinpath(
            *path.relative_to(corpus_out).parts[1:]
        )
        for path in files_under(corpus_out)
    }


def digests(root: Path) -> dict[Path, str]:
    return {
        p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in files_under(root)
    }


def test_the_corpus_is_large_and_varied(anonymised: dict[Path, Path]) -> None:
    classes = {str(read(path, stop_before_pixels=True).SOPClassUID) for path in anonymised}
    syntaxes = {str(read(path).file_meta.TransferSyntaxUID) for path in anonymised.values()}
    assert len(anonymised) >= 150 and len(classes) >= 8 and len(syntaxes) >= 10
    assert DEFLATED_SYNTAXES & syntaxes  # and what anonymise wrote for it is checked below


def test_every_output_passes_the_gate_and_the_server(anonymised: dict[Path, Path]) -> None:
    reports = check_files(list(anonymised), burned_in_reviewed=True)
    assert [report.path for report in reports if not report.passed] == []
    assert {str(p): first_violation(p.read_bytes()) for p in anonymised} == dict.fromkeys(
        map(str, anonymised)
    )
    assert {str(p): would_change(read(p)) for p in anonymised} == {str(p): [] for p in anonymised}


def test_outputs_keep_the_pixels_and_leave_deflate(anonymised: dict[Path, Path]) -> None:
    for output, source in anonymised.items():
        before, after = read(source), read(output)
        assert after.PixelData == before.PixelData, output
        syntax = before.file_meta.TransferSyntaxUID
        expected = ExplicitVRLittleEndian if syntax in DEFLATED_SYNTAXES else syntax
        assert after.file_meta.TransferSyntaxUID == expected


def test_outputs_are_deterministic(corpus_out: Path, tmp_path: Path) -> None:
    for name, root in corpus_roots().items():
        anonymise_tree(root, tmp_path / name, KEY)
    assert digests(tmp_path) == digests(corpus_out)


def test_what_the_real_anonymiser_would_write_passes(
    anonymised: dict[Path, Path], tmp_path: Path
) -> None:
    """The policy applied to each source (tests/policyref.py), written out: gate and server pass."""
    checked = 0
    for source in anonymised.values():
        ds = fixed_point(read(source))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        syntax = ds.file_meta.TransferSyntaxUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian if syntax in DEFLATED_SYNTAXES else syntax
        ds.file_meta = meta
        path = tmp_path / f"{checked:04d}.dcm"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(path, enforce_file_format=True)
        report = check_file(path, burned_in_reviewed=True)
        assert report.passed, (source, [f for f in report.findings if f.severity == "error"])
        assert first_violation(path.read_bytes()) is None, source
        checked += 1
    assert checked == len(anonymised)
