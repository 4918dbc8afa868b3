import hashlib
import os
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from repofactory import png_bytes

from casesync.files import hashing
from casesync.files.formats import DICOM, PNG
from casesync.files.hashing import FactsCache, gather_facts
from casesync.fsutil import RACY_NS


def later() -> int:
    """A clock for hashing long after the files were written: their facts may be cached."""
    return time.time_ns() + 2 * RACY_NS


def make_files(root: Path, count: int) -> list[str]:
    names = []
    for index in range(count):
        (root / f"f{index}.png").write_bytes(png_bytes(index))
        names.append(f"f{index}.png")
    return names


def test_hashes_sizes_and_formats_are_right(tmp_path: Path) -> None:
    names = make_files(tmp_path, 20)
    facts = gather_facts(tmp_path, names, workers=4)
    for name in names:
        data = (tmp_path / name).read_bytes()
        assert facts[name].sha256 == hashlib.sha256(data).hexdigest()
        assert facts[name].size == len(data)
        assert facts[name].format == PNG


def test_large_file_is_hashed_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(hashing.CHUNK_BYTES * 3 + 17)
    (tmp_path / "big.bin").write_bytes(data)
    facts = gather_facts(tmp_path, ["big.bin"])
    assert facts["big.bin"].sha256 == hashlib.sha256(data).hexdigest()
    assert facts["big.bin"].format is None


def counting(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    seen: list[Path] = []
    real = hashing.compute_facts

    def spy(path: Path, progress: object = None) -> hashing.FileFacts:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(hashing, "compute_facts", spy)
    return seen


def test_unchanged_files_are_never_hashed_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = make_files(tmp_path, 5)
    seen = counting(monkeypatch)
    cache = FactsCache(tmp_path / "cache" / "files.sqlite")
    first = gather_facts(tmp_path, names, cache, clock_ns=later)
    assert len(seen) == 5
    cache.close()
    cache = FactsCache(tmp_path / "cache" / "files.sqlite")
    assert gather_facts(tmp_path, names, cache, clock_ns=later) == first
    assert len(seen) == 5


def test_changed_files_are_hashed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = make_files(tmp_path, 3)
    cache = FactsCache(tmp_path / "files.sqlite")
    gather_facts(tmp_path, names, cache, clock_ns=later)
    seen = counting(monkeypatch)
    (tmp_path / "f0.png").write_bytes(png_bytes(99))  # new content and size
    stat = os.stat(tmp_path / "f1.png")
    os.utime(tmp_path / "f1.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # touched
    facts = gather_facts(tmp_path, names, cache, clock_ns=later)
    assert sorted(p.name for p in seen) == ["f0.png", "f1.png"]
    assert facts["f0.png"].sha256 == hashlib.sha256(png_bytes(99)).hexdigest()


def test_replaced_file_with_same_size_and_mtime_but_new_inode_is_rehashed(tmp_path: Path) -> None:
    names = make_files(tmp_path, 1)
    cache = FactsCache(tmp_path / "files.sqlite")
    gather_facts(tmp_path, names, cache)
    original = os.stat(tmp_path / "f0.png")
    replacement = tmp_path / "tmp.png"
    replacement.write_bytes(png_bytes(0)[:-1] + b"\x00")
    os.utime(replacement, ns=(original.st_atime_ns, original.st_mtime_ns))
    os.replace(replacement, tmp_path / "f0.png")
    facts = gather_facts(tmp_path, names, cache)
    assert facts["f0.png"].sha256 == hashlib.sha256((tmp_path / "f0.png").read_bytes()).hexdigest()


def test_progress_reports_bytes(tmp_path: Path) -> None:
    names = make_files(tmp_path, 4)
    total: list[int] = []
    gather_facts(tmp_path, names, progress=total.append)
    assert sum(total) == sum((tmp_path / n).stat().st_size for n in names)


def test_dicom_slice_keys_come_from_the_header(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    dataset.InstanceNumber = 7
    dataset.save_as(tmp_path / "slice.dcm")
    facts = gather_facts(tmp_path, ["slice.dcm"])["slice.dcm"]
    assert facts.format == DICOM
    assert facts.instance_number == 7
    # CT_small is axial (orientation 1,0,0,0,1,0): the normal is z, so the key is the z position
    assert facts.slice_position == pytest.approx(float(dataset.ImagePositionPatient[2]))


def test_a_damaged_cache_is_rebuilt_not_fatal(tmp_path: Path) -> None:
    from casesync.phi.cache import PhiCache

    names = make_files(tmp_path, 2)
    for name in ("files.sqlite", "phi.sqlite"):
        (tmp_path / "cache" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "cache" / name).write_bytes(b"this is not a database" * 100)
    cache = FactsCache(tmp_path / "cache" / "files.sqlite")
    assert set(gather_facts(tmp_path, names, cache)) == set(names)
    cache.close()
    with PhiCache(tmp_path / "cache" / "phi.sqlite") as phi:
        assert phi.get_many(["aa"], reviewed=False) == {}


def test_a_file_that_cannot_be_read_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from casesync.errors import ConfigError

    names = make_files(tmp_path, 1)

    def refuse(path: Path, progress: object = None) -> hashing.FileFacts:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(hashing, "compute_facts", refuse)
    with pytest.raises(ConfigError, match=r"cannot read f0\.png: Permission denied"):
        gather_facts(tmp_path, names)


def test_a_new_ctime_means_the_file_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chmod and chown change only the ctime: the cached facts say nothing of access now."""
    names = make_files(tmp_path, 2)
    cache = FactsCache(tmp_path / "files.sqlite")
    gather_facts(tmp_path, names, cache, clock_ns=later)
    with cache.connection:  # as if f0.png's mode changed after it was hashed
        cache.connection.execute(
            f"UPDATE {hashing.FACTS_TABLE} SET ctime_ns = ctime_ns - 1 WHERE path = 'f0.png'"
        )
    seen = counting(monkeypatch)
    gather_facts(tmp_path, names, cache, clock_ns=later)
    assert [p.name for p in seen] == ["f0.png"]


def test_unreadable_files_are_set_aside_and_cached_ones_need_no_access_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = make_files(tmp_path, 3)
    cache = FactsCache(tmp_path / "files.sqlite")
    gather_facts(tmp_path, names[:2], cache, clock_ns=later)  # f0 and f1 cached, f2 new
    asked: list[str] = []

    def access(path: str, mode: int) -> bool:
        asked.append(os.path.basename(path))
        return False

    monkeypatch.setattr(os, "access", access)
    seen = counting(monkeypatch)
    unreadable: set[str] = set()
    facts = gather_facts(tmp_path, names, cache, unreadable=unreadable, clock_ns=later)
    assert unreadable == {"f2.png"}
    assert sorted(facts) == ["f0.png", "f1.png"]
    assert asked == ["f2.png"]
    assert seen == []


def test_a_file_hashed_in_the_tick_it_was_written_is_hashed_again_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewritten within its timestamp tick, its stat would not change: a cached hash (and the
    PHI verdict keyed by it) could then stand for content nobody checked."""
    names = make_files(tmp_path, 3)
    seen = counting(monkeypatch)
    cache = FactsCache(tmp_path / "files.sqlite")
    first = gather_facts(tmp_path, names, cache)  # now: the files are seconds old at most
    assert cache.lookup_all() == {}
    assert gather_facts(tmp_path, names, cache, clock_ns=later) == first
    assert len(seen) == 6  # read again, and only now cached
    assert set(cache.lookup_all()) == set(names)
    gather_facts(tmp_path, names, cache)
    assert len(seen) == 6
