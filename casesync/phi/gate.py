"""The PHI gate: no file leaves the machine unless Radiopaedia's anonymiser would leave it as is.

Rules 1-8 of ``phi-rules.md``. DICOM headers are read with ``stop_before_pixels``; reports name
the tag and the reason, never the value (it is PHI).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from casesync.files.formats import DICOM, JPEG, PNG, SNIFF_BYTES, sniff_format
from casesync.fsutil import NotRegularFile, open_regular
from casesync.phi.cache import PhiCache
from casesync.phi.elements import read_after_pixels
from casesync.phi.findings import RULESET_VERSION, FileReport, Finding, RuleSummary, summarize
from casesync.phi.images import metadata_fields
from casesync.phi.parallel import FilePool
from casesync.phi.policy import (
    DEFLATED_SYNTAXES,
    PATIENT_IDENTITY_REMOVED,
    REMOVE,
    SERVER_READABLE_SYNTAXES,
    changes,
    element_vr,
    is_empty,
    load_policy,
    sop_class_of,
)

__all__ = [
    "RULESET_VERSION",
    "FileReport",
    "Finding",
    "PhiCache",
    "RuleSummary",
    "check_file",
    "check_files",
    "summarize",
]

ANONYMISE_HINT = "run 'casesync anonymise SRC DST' and point the manifest at DST"
STORAGE = "1.2.840.10008.5.1.4.1.1."
DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
DIRECTORY_RECORD_SEQUENCE = 0x00041220
NON_IMAGE_CLASSES = {
    "88": "a structured report or key-object selection",
    "11": "a presentation state",
    "104": "an encapsulated document (PDF/CDA)",
    "481": "an RT object",
    "9": "a waveform",
    "66": "raw data, a registration or a segmentation",
}
# Secondary Capture, Ultrasound (single and multi-frame, also retired) and visible light.
HIGH_RISK_CLASSES = ("7", "6.1", "6.2", "3.1", "6", "3", "77.1")
META_PRIVATE = (0x00020100, 0x00020102)
META_AE_TITLES = (0x00020016, 0x00020017, 0x00020018)
MEDIA_STORAGE_SOP_CLASS_UID = 0x00020002
MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
SOP_CLASS_UID = 0x00080016
BURNED_IN_ANNOTATION = 0x00280301
RECOGNIZABLE_FEATURES = 0x00280302
NUMBER_OF_FRAMES = 0x00280008
ROWS = 0x00280010
SERIES_DESCRIPTION = 0x0008103E
TRANSFER_SYNTAX_UID = 0x00020010
NO_LO_WARNING = frozenset({SERIES_DESCRIPTION, *load_policy().stamped})
DATE_LIKE = re.compile(
    r"\d{6,}|(19|20)\d\d[-/.](0?[1-9]|1[0-2])[-/.]\d\d?|\d\d?[-/.]\d\d?[-/.](19|20)\d\d"
)


def label(tag: int) -> str:
    """``"PatientName (0010,0010)"``: how reports name a tag."""
    group, element = tag >> 16, tag & 0xFFFF
    name = keyword_for_tag(tag) or ("Private" if group % 2 else "Unknown")
    return f"{name} ({group:04X},{element:04X})"


def check_file(path: Path, *, burned_in_reviewed: bool = False) -> FileReport:
    """Run every rule on one file of any kind; unreadable files fail as unsupported objects."""
    try:
        with open_regular(path) as handle:
            kind = sniff_format(handle.read(SNIFF_BYTES))
            if kind == DICOM:
                findings = list(_check_dicom(handle, burned_in_reviewed))
            elif kind in (PNG, JPEG):
                handle.seek(0)
                findings = list(_check_image(handle.read()))
            elif kind is None:
                what = (
                    "no DICM marker, so not a DICOM file"
                    if path.suffix.lower() in (".dcm", ".dicom")
                    else "neither DICOM nor a supported image"
                )
                findings = [_unsupported(f"{what}; only DICOM images, PNG and JPEG are sent")]
            else:
                findings = []
    except OSError as exc:
        findings = [_unsupported(f"cannot be read ({exc.strerror or exc})")]
    except NotRegularFile as exc:
        findings = [_unsupported(f"not a regular file ({exc.kind})")]
    return FileReport(path, tuple(findings))


def _unsupported(why: str) -> Finding:
    return Finding("unsupported-object", "error", None, f"unsupported object: {why}")


def _check_image(data: bytes) -> Iterator[Finding]:
    for field in dict.fromkeys(metadata_fields(data)):
        yield Finding(
            "image-metadata",
            "warning",
            field,
            "image metadata can name people, places and times; 'casesync anonymise' strips it",
        )


def _check_dicom(handle: BinaryIO, reviewed: bool) -> Iterator[Finding]:
    handle.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(handle, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many types on corrupt input
        yield _unsupported(
            f"cannot be parsed as DICOM, truncated or corrupt ({type(exc).__name__})"
        )
        return
    syntax = _text(ds.file_meta, TRANSFER_SYNTAX_UID)
    unread: list[int] = []
    refusal = _refusal(ds)
    if refusal is None and syntax not in DEFLATED_SYNTAXES:
        refusal = read_after_pixels(handle, ds, unread, _native_image_bytes(ds))
    if refusal:
        yield _unsupported(refusal)
        return
    yield from _check_syntax(syntax)
    yield from _check_meta(ds)
    yield from _check_elements(ds, unread)
    yield from _check_flags(ds, reviewed)


def _check_syntax(syntax: str) -> Iterator[Finding]:
    """The server parses files itself, and cannot read deflate (nor unlisted syntaxes)."""
    if syntax in DEFLATED_SYNTAXES:
        why = "the server cannot read deflated DICOM"
    elif syntax not in SERVER_READABLE_SYNTAXES:
        why = "the server cannot read this transfer syntax"
    else:
        return
    yield Finding(
        "transfer-syntax",
        "error",
        label(TRANSFER_SYNTAX_UID),
        f"{why}; run 'casesync anonymise', which writes it uncompressed",
    )


def _refusal(ds: Dataset) -> str | None:
    """Why this object is not an image Radiopaedia can take, or None."""
    sop_class = _text(ds, SOP_CLASS_UID) or _text(ds.file_meta, MEDIA_STORAGE_SOP_CLASS_UID)
    if sop_class == DICOMDIR_SOP_CLASS or DIRECTORY_RECORD_SEQUENCE in ds:
        return "a DICOMDIR (an index of files that names patients), not an image"
    if not sop_class.startswith(STORAGE):
        return "not a standard image storage SOP class"
    for number, what in NON_IMAGE_CLASSES.items():
        if _in_class(sop_class, number):
            return f"{what}, not an image"
    if ROWS not in ds:
        return "no image pixel module"
    return None


def _in_class(sop_class: str, number: str) -> bool:
    full = STORAGE + number
    return sop_class == full or sop_class.startswith(full + ".")


def _native_image_bytes(ds: Dataset) -> int:
    """The bytes uncompressed pixel data needs, from the image pixel module.

    The same sum as pydicom's ``get_expected_length``, so nothing pydicom decodes is refused:
    1-bit data is packed (rounded up to whole bytes), and native 4:2:2 (YBR_FULL_422, and the
    retired YBR_PARTIAL_422) stores a pair of pixels as Y Y Cb Cr, two thirds of 3 samples.
    """
    try:
        frames = int(_text(ds, NUMBER_OF_FRAMES) or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.BitsAllocated)
        values = int(ds.Rows) * int(ds.Columns) * samples * frames
    except (AttributeError, TypeError, ValueError):
        return 0
    size = -(-values // 8) if bits == 1 else values * (bits // 8)
    if _text(ds, 0x00280004) in ("YBR_FULL_422", "YBR_PARTIAL_422"):  # PhotometricInterpretation
        size = size // 3 * 2
    return size


def _check_meta(ds: Dataset) -> Iterator[Finding]:
    preamble = ds.preamble or b""
    if preamble.strip(b"\x00"):
        yield Finding(
            "preamble",
            "error",
            None,
            "the 128-byte preamble is not zero (dual-format files can hide data there); "
            + ANONYMISE_HINT,
        )
    meta = ds.file_meta
    for tag in META_PRIVATE:
        if tag in meta:
            yield Finding(
                "private-meta",
                "error",
                label(tag),
                "private file meta information; " + ANONYMISE_HINT,
            )
    for tag in META_AE_TITLES:
        if tag in meta and not meta[tag].is_empty:
            yield Finding(
                "source-ae-title",
                "warning",
                label(tag),
                "an AE title can name the hospital or the device; anonymise drops it",
            )
    instance = _text(meta, MEDIA_STORAGE_SOP_INSTANCE_UID)
    if not instance.startswith(load_policy().uid_prefix):
        yield Finding(
            "meta-uid",
            "error",
            label(MEDIA_STORAGE_SOP_INSTANCE_UID),
            "the file meta header keeps an original instance UID (the server's anonymiser never "
            "looks there, so it would leak); " + ANONYMISE_HINT,
        )
    yield from _identity_values([meta], ())


def _check_elements(ds: Dataset, unread: Sequence[int]) -> Iterator[Finding]:
    """Rule 2 over the top-level elements and inside every sequence, then rule 1."""
    rules = load_policy().rules_for(sop_class_of(ds))
    named: set[int] = set()
    for element in list(ds.values()):  # raw elements: parsing each one is the slow part
        tag = int(element.tag)
        vr = element_vr(element)
        if is_empty(element, vr):
            continue
        if vr == "SQ":
            yield from _identity_values(ds[tag].value, (tag,), nested=True)
        identity = _identity_finding(tag, vr, ())
        if identity is not None:
            named.add(tag)
            yield identity
        elif vr == "LO" and tag not in NO_LO_WARNING and rules.get(tag, REMOVE).action == "keep":
            yield Finding(
                "lo-value",
                "warning",
                label(tag),
                "long strings may hold personal data (the anonymiser's own level-4 note); "
                "check what it says",
            )
    grouped: dict[str, int] = {}
    for change in changes(ds, unread=unread):
        tag = change.tag
        if tag in named or tag == PATIENT_IDENTITY_REMOVED:  # said above, or by rule 3
            continue
        group = tag >> 16
        kind = (
            "Private tags"
            if group % 2
            else {0x5000: "Curve", 0x6000: "Overlay"}.get(group & 0xFF00, "")
        )
        if change.kind == "removed" and kind:
            name = f"{kind} ({group:04X},xxxx)"
            grouped[name] = grouped.get(name, 0) + 1
        else:
            reason = f"{change.reason}; {ANONYMISE_HINT}"
            yield Finding("not-fixed-point", "error", label(tag), reason)
    for name, count in grouped.items():
        yield Finding(
            "not-fixed-point",
            "error",
            name,
            f"{count} element(s) the policy removes (private tags, overlays and curves are all "
            "dropped), so the server would reject the series; " + ANONYMISE_HINT,
        )


def _identity_values(
    items: Iterable[Dataset], path: tuple[int, ...], *, nested: bool = False
) -> Iterator[Finding]:
    """Rule 2 (non-empty PN or AS) at any depth; sequences are walked recursively."""
    for item in items:
        for element in list(item.elements()):
            tag = int(element.tag)
            vr = element_vr(element)
            if is_empty(element, vr):
                continue
            if vr == "SQ":
                yield from _identity_values(item[tag].value, (*path, tag), nested=True)
            elif nested or tag >> 16 == 2:
                found = _identity_finding(tag, vr, path)
                if found is not None:
                    yield found


def _identity_finding(tag: int, vr: str, path: tuple[int, ...]) -> Finding | None:
    where = f" inside {' > '.join(label(outer) for outer in path)}" if path else ""
    if vr == "PN":
        return Finding(
            "person-name",
            "error",
            label(tag),
            f"a person's name{where}; the server refuses any name; " + ANONYMISE_HINT,
        )
    if vr == "AS":
        return Finding(
            "age-string",
            "error",
            label(tag),
            f"an age{where}; the server refuses any age string (put the age in the case "
            "instead); " + ANONYMISE_HINT,
        )
    return None


def _check_flags(ds: Dataset, reviewed: bool) -> Iterator[Finding]:
    """Rules 3, 4 and 6, and the SeriesDescription warning."""
    if _text(ds, RECOGNIZABLE_FEATURES).upper() == "YES":
        yield Finding(
            "recognizable-features",
            "error",
            label(RECOGNIZABLE_FEATURES),
            "the image shows recognizable features (a face, say); it cannot be anonymised",
        )
    if _text(ds, PATIENT_IDENTITY_REMOVED) != "YES":
        yield Finding(
            "identity-not-removed",
            "error",
            label(PATIENT_IDENTITY_REMOVED),
            "PatientIdentityRemoved is not YES, so nothing says this file was de-identified; "
            + ANONYMISE_HINT,
        )
    burned_in = _text(ds, BURNED_IN_ANNOTATION).upper()
    if burned_in == "YES" and not reviewed:
        yield Finding(
            "burned-in-annotation",
            "error",
            label(BURNED_IN_ANNOTATION),
            "text is burned into the pixels; look at every slice, then set "
            "'burned_in_annotation: reviewed' on the series",
        )
    sop_class = _text(ds, SOP_CLASS_UID)
    if BURNED_IN_ANNOTATION not in ds and any(_in_class(sop_class, c) for c in HIGH_RISK_CLASSES):
        yield Finding(
            "burned-in-unknown",
            "warning",
            label(BURNED_IN_ANNOTATION),
            "screen captures and ultrasound often have names burned into the pixels and this "
            "file does not say; look at the images before uploading",
        )
    frames = _text(ds, NUMBER_OF_FRAMES)
    if frames.isdigit() and int(frames) > 1:
        yield Finding(
            "multi-frame",
            "warning",
            label(NUMBER_OF_FRAMES),
            "multi-frame object: the site shows only the first frame; "
            "'casesync anonymise --split-frames' writes one file per frame",
        )
    if DATE_LIKE.search(_text(ds, SERIES_DESCRIPTION)):
        yield Finding(
            "series-description",
            "warning",
            label(SERIES_DESCRIPTION),
            "contains a long number or a date, which may be an identifier; "
            "check it, or anonymise with --no-keep-series-description",
        )


def _text(ds: Dataset, tag: int) -> str:
    """An element's value as stripped text, from the raw bytes when pydicom has not parsed it.

    Parsing each element into a ``DataElement`` costs more than the rest of the gate.
    """
    element = ds.get_item(tag)
    if element is None:
        return ""
    if isinstance(element, RawDataElement) and element.VR != "SQ":
        return (element.value or b"").decode("latin-1").strip(" \x00")
    value = ds[tag].value
    return str(value).strip() if value is not None else ""


def check_files(
    paths: Sequence[Path],
    *,
    burned_in_reviewed: bool = False,
    cache: PhiCache | None = None,
    hashes: Mapping[Path, str] | None = None,
    workers: int | None = None,
) -> list[FileReport]:
    """``check_file`` over many files, in parallel processes, reusing cached results.

    With a cache, files are keyed by SHA-256 (from ``hashes`` when given, else computed here)
    and the rule-set version; results come back in the order of ``paths``.
    """
    known: dict[Path, str | None] = dict(hashes or {})
    workers = workers or os.cpu_count() or 1
    cached: dict[str, tuple[Finding, ...]] = {}
    if cache is not None:
        missing = [path for path in paths if path not in known]
        with FilePool(workers, len(missing)) as pool:
            known.update(zip(missing, pool.map(_sha256, missing), strict=True))
        hashed = [digest for path in paths if (digest := known[path]) is not None]
        cached = cache.get_many(hashed, burned_in_reviewed)
    todo = [path for path in paths if known.get(path) not in cached]
    with FilePool(workers, len(todo)) as pool:  # no worker processes when all is cached
        check = _check_reviewed if burned_in_reviewed else _check
        fresh = dict(zip(todo, pool.map(check, todo), strict=True))
    if cache is not None:
        results = [(known[path], report.findings) for path, report in fresh.items()]
        cache.put_many(
            [(digest, findings) for digest, findings in results if digest is not None],
            burned_in_reviewed,
        )
    return [
        fresh[path] if path in fresh else FileReport(path, cached[str(known[path])])
        for path in paths
    ]


def _check(path: Path) -> FileReport:
    return check_file(path)


def _check_reviewed(path: Path) -> FileReport:
    return check_file(path, burned_in_reviewed=True)


def _sha256(path: Path) -> str | None:
    """The cache key; None for what cannot be read as a regular file (``check_file`` says why,
    and such a result is not cached)."""
    digest = hashlib.sha256()
    try:
        with open_regular(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except (OSError, NotRegularFile):
        return None
    return digest.hexdigest()
