"""``casesync anonymise``: a de-identified, deterministic copy of a folder tree.

Every DICOM file written is a fixed point of Radiopaedia's policy (so the server accepts it)
and passes the gate. UIDs are replaced by keyed hashes: the same source UID gives the same
output UID across runs and folders, and nobody without the per-repository key can link the
output to the source. Pixel data is copied byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import secrets
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pydicom
from pydicom import config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import UID, ExplicitVRLittleEndian
from pydicom.valuerep import format_number_as_ds

from casesync.errors import ConfigError, Refused
from casesync.files.formats import DICOM, JPEG, PNG, sniff_file
from casesync.fsutil import (
    atomic_write,
    ensure_dir,
    find_symlink,
    open_nofollow,
    read_regular,
)
from casesync.phi.gate import check_file
from casesync.phi.images import strip_metadata
from casesync.phi.parallel import FilePool
from casesync.phi.policy import (
    BINARY_VRS,
    DEFLATED_SYNTAXES,
    REMOVE,
    SERVER_READABLE_SYNTAXES,
    SERVER_READABLE_VRS,
    SLICE_LOCATION,
    SLICE_LOCATION_MAX,
    SOP_INSTANCE_UID,
    SOP_INSTANCE_UID_IN_DATASET,
    changes,
    element_text,
    load_policy,
    sop_class_of,
)
from casesync.phi.report import expand_paths

KEY_BYTES = 32
MAX_KEY_FILE_BYTES = 4096  # 65 bytes are used; anything far bigger is the wrong file
KEPT_VRS = SERVER_READABLE_VRS - {"SQ", "PN", "AS"}
SERIES_DESCRIPTION = 0x0008103E
INSTANCE_NUMBER = 0x00200013
NUMBER_OF_FRAMES = 0x00280008
# 13 bytes of HMAC give at most 32 digits: prefix (31) + 32 stays within the 64-char UID limit.
UID_DIGEST_BYTES = 13
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass(frozen=True)
class AnonymiseReport:
    """What happened to each source file: written, already there (identical) or skipped."""

    written: int
    unchanged: int
    non_dicom: int  # PNG/JPEG among written + unchanged, with metadata stripped
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True)
class Options:
    key: bytes
    keep_series_description: bool
    split_frames: bool


def load_or_create_key(path: Path) -> bytes:
    """The per-repository secret; created once (mode 0600) and then never changed.

    Changing it changes every output UID, so files anonymised before and after no longer share
    studies or series. A symlink, a FIFO or a device there is refused, never followed or read.
    """
    if not os.path.lexists(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = open_nofollow(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path)
        with os.fdopen(fd, "w") as handle:
            os.fchmod(fd, 0o600)
            handle.write(secrets.token_hex(KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(fd)
    try:
        key = bytes.fromhex(read_regular(path, MAX_KEY_FILE_BYTES, follow=False).decode().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"cannot use the anonymise key {path}: {exc}", hint="restore it from a backup"
        ) from None
    if len(key) < KEY_BYTES:
        raise ConfigError(f"the anonymise key {path} is shorter than {KEY_BYTES} bytes")
    return key


# Our own, fixed implementation identity: pydicom's changes with every pydicom release, which
# would change every output byte, every hash in casesync.lock, and so upload everything again.
IMPLEMENTATION_CLASS_UID = "2.25.169012336810003512526851719535830283263"  # uuid5(casesync/1)
IMPLEMENTATION_VERSION_NAME = "CASESYNC_1"


def keyed_uid(key: bytes, uid: str) -> str:
    """A UID inside Radiopaedia's namespace that only the key holder can link to ``uid``."""
    digest = hmac.new(key, uid.encode("ascii", "replace"), hashlib.sha256).digest()
    return load_policy().uid_prefix + str(int.from_bytes(digest[:UID_DIGEST_BYTES], "big"))


def anonymise_dataset(ds: Dataset, options: Options) -> str:
    """Apply the file's effective policy in place; return the original SOP instance UID.

    Elements the policy empties are left out (absent is a fixed point, and so is a kept
    element dropped whole), so the result holds only kept values, the policy's exact
    replacement values, keyed UIDs and the stamp.
    """
    policy = load_policy()
    meta = ds.file_meta
    original = element_text(ds.get_item(SOP_INSTANCE_UID) or DataElement(0, "UI", ""))
    original = original.strip() or str(meta.get("MediaStorageSOPInstanceUID", ""))
    rules = policy.rules_for(sop_class_of(ds))
    for tag in list(ds.keys()):
        element = ds[tag]
        rule = rules.get(tag, REMOVE)
        if tag == SERIES_DESCRIPTION and not options.keep_series_description:
            del ds[tag]
        elif rule.action == "keep" and element.VR in KEPT_VRS:
            # left out: sequences (their items may hold anything), names and ages (refused),
            # and VRs the server's parser cannot read
            if tag == SLICE_LOCATION:
                element.value = _clip_slice_location(element_text(element))
        elif rule.action == "replace" and rule.value:
            vr = element.VR if element.VR not in BINARY_VRS else dictionary_VR(tag)
            ds[tag] = DataElement(tag, vr, "\\".join(rule.value))
        elif rule.action == "regenerate" and tag != SOP_INSTANCE_UID and element_text(element):
            ds[tag] = DataElement(tag, "UI", keyed_uid(options.key, element_text(element).strip()))
        elif tag == SOP_INSTANCE_UID and SOP_INSTANCE_UID_IN_DATASET:
            ds[tag] = DataElement(tag, "UI", keyed_uid(options.key, original))
        else:
            del ds[tag]
    for stamp, value in policy.stamped.items():
        # the anonymiser's own stamp is 69 characters, over LO's 64: written as it is
        vr = dictionary_VR(stamp)
        ds[stamp] = DataElement(stamp, vr, value, validation_mode=config.IGNORE)
    new_meta = FileMetaDataset()
    new_meta.MediaStorageSOPClassUID = meta.get("MediaStorageSOPClassUID") or ds.SOPClassUID
    new_meta.MediaStorageSOPInstanceUID = UID(keyed_uid(options.key, original))
    syntax = meta.TransferSyntaxUID
    new_meta.TransferSyntaxUID = ExplicitVRLittleEndian if syntax in DEFLATED_SYNTAXES else syntax
    new_meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    new_meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = new_meta
    ds.preamble = b"\x00" * 128
    return original


def _clip_slice_location(text: str) -> str:
    """What the anonymiser would leave of a SliceLocation over 16 characters: the same number."""
    parts = []
    for part in text.split("\\"):
        if len(part) > SLICE_LOCATION_MAX:
            part = format_number_as_ds(float(part)) if "e" in part.lower() else part[:16]
        parts.append(part.strip())
    return "\\".join(parts)


def render_dicom(path: Path, options: Options) -> list[tuple[str, bytes]]:
    """The anonymised file(s) for one DICOM source: (output name, bytes)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)
        syntax = ds.file_meta.get("TransferSyntaxUID", "")
        if syntax not in SERVER_READABLE_SYNTAXES | DEFLATED_SYNTAXES:
            raise ValueError(f"the server cannot read transfer syntax {syntax}; convert it first")
        original = anonymise_dataset(ds, options)
        left = changes(ds)
        if left:  # a policy this code does not understand yet: never write a rejected file
            raise ValueError(f"not a fixed point of the policy at {left[0].tag:08X}")
        frames = int(str(ds.get(NUMBER_OF_FRAMES, DataElement(0, "IS", 1)).value or 1))
        if not (options.split_frames and frames > 1):
            return [(path.name, _encode(ds))]
        outputs = []
        for index, pixels in enumerate(_frames(ds, frames)):
            ds.PixelData = pixels
            ds[NUMBER_OF_FRAMES] = DataElement(NUMBER_OF_FRAMES, "IS", "1")
            ds[INSTANCE_NUMBER] = DataElement(INSTANCE_NUMBER, "IS", str(index + 1))
            uid = keyed_uid(options.key, f"{original}#frame{index + 1}")
            ds.file_meta.MediaStorageSOPInstanceUID = UID(uid)
            outputs.append((f"{path.stem}-f{index + 1:04d}{path.suffix}", _encode(ds)))
        return outputs


def _frames(ds: Dataset, count: int) -> Iterator[bytes]:
    """Each frame's pixel bytes exactly as stored (re-encapsulated when compressed)."""
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        for frame in generate_frames(ds.PixelData, number_of_frames=count):
            yield encapsulate([frame])
        return
    data = bytes(ds.PixelData)
    size = len(data) // count
    for index in range(count):
        frame = data[index * size : (index + 1) * size]
        yield frame + b"\x00" * (len(frame) % 2)


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def render_file(path: Path, options: Options) -> list[tuple[str, bytes]] | str:
    """Outputs for any source file, or why it is skipped."""
    kind = sniff_file(path)
    if kind in (PNG, JPEG):
        return [(path.name, strip_metadata(path.read_bytes()))]
    if kind != DICOM:
        return "neither DICOM nor PNG/JPEG: not copied"
    for finding in check_file(path).findings:
        if finding.rule in ("unsupported-object", "recognizable-features"):
            return finding.reason
    try:
        return render_dicom(path, options)
    except Exception as exc:  # pydicom raises many types on odd input
        return f"could not be anonymised ({type(exc).__name__}: {exc})"


def _process(job: tuple[Path, Path], options: Options, write: bool, dst: Path) -> tuple[str, str]:
    """Render one source; compare with (or write) its outputs. Returns (status, detail)."""
    source, target_dir = job
    rendered = render_file(source, options)
    if isinstance(rendered, str):
        return "skipped", rendered
    status = "unchanged"
    for name, data in rendered:
        target = target_dir / name
        if target.exists():
            if target.read_bytes() != data:
                return "conflict", str(target)
        elif write:
            atomic_write(ensure_dir(dst, target_dir) / name, data)  # no symlink below DST
            status = "written"
        else:
            status = "new"
    return status, "image" if sniff_file(source) in (PNG, JPEG) else "dicom"


def anonymise_tree(
    src: Path,
    dst: Path,
    key: bytes,
    *,
    keep_series_description: bool = True,
    split_frames: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
) -> AnonymiseReport:
    """Write a de-identified mirror of ``src`` under ``dst``; never modifies ``src``.

    Refuses before writing anything when ``dst`` overlaps ``src`` or an existing file in
    ``dst`` differs from what would be written; identical existing files are fine, so a
    rerun is a no-op.
    """
    src, dst = src.resolve(), dst.resolve()
    if not src.exists():
        raise ConfigError(f"{src} does not exist")
    if not (src.is_file() or src.is_dir()):
        raise ConfigError(f"{src} is neither a folder nor a regular file", hint="give a folder")
    base = src.parent if src.is_file() else src
    if dst == base or dst.is_relative_to(base) or base.is_relative_to(dst):
        raise Refused(
            f"will not write into the source tree ({dst} overlaps {base})",
            hint="choose a DST outside SRC",
        )
    options = Options(key, keep_series_description, split_frames)
    files = expand_paths([src])
    jobs = [(path, dst / path.parent.relative_to(base)) for path in files]
    _refuse_symlinks(dst, jobs)
    existing = [job for job in jobs if (job[1] / job[0].name).exists()]
    with FilePool(workers or os.cpu_count() or 1, len(files)) as pool:
        conflicts = [
            detail
            for status, detail in pool.map(
                partial(_process, options=options, write=False, dst=dst), existing
            )
            if status == "conflict"
        ]
        if conflicts:
            raise Refused(
                f"{len(conflicts)} file(s) in {dst} differ from what anonymise would write, "
                f"e.g. {conflicts[0]}",
                hint="choose an empty DST, or remove the old output first",
            )
        dst.mkdir(parents=True, exist_ok=True)
        results = []
        for done, result in enumerate(
            pool.imap(partial(_process, options=options, write=True, dst=dst), jobs), 1
        ):
            results.append(result)
            if progress is not None:
                progress(done, len(jobs))
    return _report(files, results)


def _refuse_symlinks(dst: Path, jobs: list[tuple[Path, Path]]) -> None:
    """Before writing anything: a symlink below DST (a subfolder linked into SRC, say) would
    redirect writes, so it is refused, never followed."""
    for target in dict.fromkeys(
        path for source, folder in jobs for path in (folder, folder / source.name)
    ):
        link = find_symlink(dst, target)
        if link is not None:
            raise Refused(
                f"{link} is a symlink; anonymise never writes through one",
                hint="remove it, or choose another DST",
            )


def _report(files: list[Path], results: list[tuple[str, str]]) -> AnonymiseReport:
    skipped = tuple(
        Skipped(path, detail)
        for path, (status, detail) in zip(files, results, strict=True)
        if status == "skipped"
    )
    conflicts = [detail for status, detail in results if status == "conflict"]
    if conflicts:  # a file appeared in DST while we were writing
        raise Refused(
            f"{len(conflicts)} file(s) in DST changed during the run, e.g. {conflicts[0]}"
        )
    return AnonymiseReport(
        written=sum(status == "written" for status, _ in results),
        unchanged=sum(status == "unchanged" for status, _ in results),
        non_dicom=sum(detail == "image" for status, detail in results if status != "skipped"),
        skipped=skipped,
    )
