"""DICOM, PNG and JPEG files for the PHI tests, built from pydicom's bundled test data."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from casesync.phi.anonymise import Options, anonymise_dataset
from casesync.phi.policy import UID_PREFIX

KEY = b"k" * 32
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
OPTIONS = Options(KEY, keep_series_description=True, split_frames=False)


def pydicom_data_dir() -> Path:
    """pydicom's bundled files (never get_testdata_files(pattern): it hangs offline)."""
    path = get_testdata_file("CT_small.dcm", download=False)
    assert path is not None
    return Path(os.path.dirname(path))


def corpus_roots() -> dict[str, Path]:
    """Real-world files no one here wrote: pydicom's own, pydicom-data's and deid-data's."""
    import data_store  # the pydicom-data wheel
    import deid_data

    return {
        "pydicom": pydicom_data_dir(),
        "pydicom-data": Path(data_store.__file__).parent / "data",
        "deid-data": Path(deid_data.__file__).parent / "data",
    }


def bundled(name: str) -> Path:
    return pydicom_data_dir() / name


def bundled_files() -> list[Path]:
    root = pydicom_data_dir()
    return sorted(path for path in root.rglob("*") if path.is_file())


def clean_ct() -> Dataset:
    """CT_small.dcm after anonymise: passes the gate (with LO warnings only)."""
    ds = pydicom.dcmread(bundled("CT_small.dcm"))
    anonymise_dataset(ds, OPTIONS)
    return ds


def write(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def png_with_text(keyword: str, text: str) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", keyword.encode() + b"\x00" + text.encode())
        + chunk(b"IDAT", zlib.compress(b"\x00\x01\x02\x00\x03\x04"))
        + chunk(b"IEND", b"")
    )


def jpeg_with_exif_artist(artist: str) -> bytes:
    """A JPEG-shaped file: SOI, APP1 EXIF (IFD0 with Artist), a COM, then 'scan' bytes."""
    value = artist.encode() + b"\x00"
    ifd = struct.pack("<H", 1) + struct.pack("<HHII", 0x013B, 2, len(value), 26) + b"\x00" * 4
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + value
    app1 = b"Exif\x00\x00" + tiff
    com = b"made by Dr Who"
    return (
        b"\xff\xd8"
        + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
        + b"\xff\xfe" + struct.pack(">H", len(com) + 2) + com
        + b"\xff\xda\x00\x02SCANDATA\xff\xd9"
    )  # fmt: skip


def rule_hitting_files(folder: Path) -> list[Path]:
    """One file per gate rule, each built from the clean CT with a single change."""
    from pydicom.sequence import Sequence

    def nested(ds: Dataset) -> None:
        inner = Dataset()
        inner.PatientName = "Doe^Jane"
        middle = Dataset()
        middle.ReferencedSeriesSequence = Sequence([inner])
        ds.ReferencedStudySequence = Sequence([middle])

    def private(ds: Dataset) -> None:
        ds.private_block(0x0009, "ACME", create=True).add_new(0x01, "LO", "private")

    def set_meta(**values: object) -> Callable[[Dataset], None]:
        return lambda ds: [setattr(ds.file_meta, k, v) for k, v in values.items()] and None

    def set_values(**values: object) -> Callable[[Dataset], None]:
        return lambda ds: [setattr(ds, k, v) for k, v in values.items()] and None

    changes: dict[str, Callable[[Dataset], None]] = {
        "clean": lambda ds: None,
        "nested-name": nested,
        "private-tag": private,
        "overlay": lambda ds: ds.add_new(0x60000010, "US", 8) and None,
        "patient-age": set_values(PatientAge="042Y"),
        "uid-2-25": set_values(SeriesInstanceUID="2.25.123456789"),
        "sop-instance-in-dataset": set_values(SOPInstanceUID=UID_PREFIX + "1"),
        "meta-uid": set_meta(MediaStorageSOPInstanceUID="1.3.6.1.4.1.5962.1.1.1"),
        "burned-in": set_values(BurnedInAnnotation="YES"),
        "preamble": lambda ds: setattr(ds, "preamble", b"\x01" * 128),
        "private-meta": set_meta(PrivateInformationCreatorUID="1.2.3", PrivateInformation=b"xy"),
        "recognizable": set_values(RecognizableVisualFeatures="YES"),
        "identity-no": set_values(PatientIdentityRemoved="NO"),
        "identity-absent": lambda ds: delattr(ds, "PatientIdentityRemoved"),
        "study-date": set_values(StudyDate="20240115"),
        "institution": set_values(InstitutionName="General Hospital"),
        "warnings-only": set_values(SeriesDescription="CT 20240115", SOPClassUID=SECONDARY_CAPTURE),
        "frames-missing": set_values(NumberOfFrames=3),
    }
    paths = []
    for name, change in changes.items():
        ds = clean_ct()
        change(ds)
        paths.append(write(ds, folder / f"{name}.dcm"))
    return paths
