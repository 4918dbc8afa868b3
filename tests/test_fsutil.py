"""fsutil: atomic writes that never follow a symlink, bounded reads of regular files only, and
globs whose ``**`` never walks into a symlinked folder."""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path
from unittest import mock

import pytest

from casesync import fsutil
from casesync.errors import ConfigError
from casesync.fsutil import (
    NotRegularFile,
    TooLarge,
    UnsafePath,
    atomic_write,
    ensure_dir,
    find_symlink,
    open_nofollow,
    read_regular,
    recursive_glob,
    state_folder,
)


def test_atomic_write_replaces_the_file_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "secret.json"
    target.write_text("old")
    atomic_write(target, "new", mode=0o600)
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.json"]


def test_atomic_write_fsyncs_the_file_and_then_its_folder(tmp_path: Path) -> None:
    synced: list[bool] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    with mock.patch("casesync.fsutil.os.fsync", fsync):
        atomic_write(tmp_path / "lock", "x")
    assert synced == [False, True]


def test_atomic_write_refuses_a_symlink_and_leaves_its_target_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "link").symlink_to(victim)
    with pytest.raises(UnsafePath) as refused:
        atomic_write(tmp_path / "link", "overwrite")
    assert str(tmp_path / "link") in refused.value.message and "rm " in str(refused.value.hint)
    assert victim.read_text() == "keep me" and (tmp_path / "link").is_symlink()


def test_a_failed_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    full = OSError(28, "No space left")
    with mock.patch("casesync.fsutil.os.replace", side_effect=full), pytest.raises(OSError):
        atomic_write(tmp_path / "lock", "x")
    assert list(tmp_path.iterdir()) == []


def test_open_nofollow_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UnsafePath):
        open_nofollow(tmp_path / "link", os.O_RDWR)
    os.close(open_nofollow(tmp_path / "real", os.O_RDWR))


def test_ensure_dir_creates_each_level_and_refuses_a_symlinked_one(tmp_path: Path) -> None:
    assert ensure_dir(tmp_path, tmp_path / "a" / "b").is_dir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "a" / "c").symlink_to(elsewhere)
    with pytest.raises(UnsafePath):
        ensure_dir(tmp_path, tmp_path / "a" / "c" / "d")
    assert list(elsewhere.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is not a folder"):
        ensure_dir(tmp_path, tmp_path / "file" / "x")


def test_state_folder_refuses_a_symlinked_casesync_folder(tmp_path: Path) -> None:
    (tmp_path / ".casesync").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match=r"\.casesync is a symlink"):
        state_folder(tmp_path, "cache")


def test_find_symlink_names_the_first_link_below_the_base(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").symlink_to(tmp_path)
    assert find_symlink(tmp_path, tmp_path / "a" / "b" / "c") == tmp_path / "a" / "b"
    assert find_symlink(tmp_path, tmp_path / "a" / "new" / "c") is None


def test_read_regular_refuses_fifos_and_devices_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(NotRegularFile, match=r"fifo is not a regular file \(a FIFO\)"):
        read_regular(tmp_path / "fifo", 100)
    with pytest.raises(NotRegularFile, match="a character device"):
        read_regular(Path("/dev/zero"), 100, "zero")


def test_read_regular_never_reads_past_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"x" * 5000)
    assert read_regular(big, 5000) == b"x" * 5000
    reads: list[int] = []
    real_open = fsutil.open_regular

    def spying_open(*args: object, **kwargs: object) -> object:
        handle = real_open(*args, **kwargs)  # type: ignore[arg-type]
        original = handle.read

        def read(size: int = -1) -> bytes:
            reads.append(size)
            return original(size)

        handle.read = read  # type: ignore[method-assign]
        return handle

    too_large = pytest.raises(TooLarge, match=r"big\.yaml is over the 1000-byte")
    with mock.patch.object(fsutil, "open_regular", spying_open), too_large:
        read_regular(big, 1000, "big.yaml")
    assert reads == [1001]


def test_read_regular_without_following_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_regular(tmp_path / "link", 10) == b"x"
    with pytest.raises(UnsafePath):
        read_regular(tmp_path / "link", 10, follow=False)


GLOB_TREE = (
    "cases/case-1/case.yaml",
    "cases/case-10/case.yaml",
    "cases/case-2/notes/case.yaml",
    "cases/nested/deeper/case-3/case.yaml",
    "cases/.draft/case.yaml",  # a hidden folder: '**' and '*' skip it
    "cases/odd/case.yaml/readme",  # a folder named like a file
    "a/x",
    "a/.x",
    "a/one/b/x",  # a folder b ...
    "a/two/b",  # ... and a file b
    "a/one/c/x",
    "a/.h/b/x",
    "scans/img1.dcm",
    "scans/img10.dcm",
    "scans/img2.dcm",
    "scans/.DS_Store",
    "scans/sub/img3.dcm",
    ".hidden/one",
    ".hidden/.two",
    "top.png",
    ".top.png",
)
GLOB_PATTERNS = (
    "cases/**/case.yaml",
    "cases/*/case.yaml",
    "cases/case-?/*",
    "**",
    "**/",
    "**/*.dcm",
    "**/img1*",
    "scans/img[0-9].dcm",
    "scans/**",
    "scans/.*",
    "a/*/b",
    "a/*/b/",
    "a/**/",
    "a/**/b/x",
    "a/**/**/x",  # glob names some paths more than once: so does recursive_glob
    "a//*",
    "a/.*/b",
    "*.png",
    ".*",
    "*/",
    ".hidden/*",
    "**/.hidden",
    "a/x",  # literal paths
    "a/one/b/",
    "a/two/b/",
    "a//x",
    "missing/*.png",  # matches nothing
    "missing/**/x",
)


def touch(base: Path, *names: str) -> None:
    for name in names:
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_text("")


@pytest.mark.parametrize("pattern", GLOB_PATTERNS)
def test_recursive_glob_matches_what_glob_does_without_symlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    touch(tmp_path, *GLOB_TREE)
    absolute = f"{tmp_path}/{pattern}"
    assert recursive_glob(absolute) == sorted(glob.glob(absolute, recursive=True))
    monkeypatch.chdir(tmp_path)
    assert recursive_glob(pattern) == sorted(glob.glob(pattern, recursive=True))


def test_recursive_glob_double_star_below_what_is_not_a_folder_matches_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("")
    # as glob does from Python 3.13 (before, it named "missing/" and "file/")
    assert recursive_glob(f"{tmp_path}/missing/**") == []
    assert recursive_glob(f"{tmp_path}/file/**") == []


def test_recursive_glob_never_walks_into_a_symlinked_folder(tmp_path: Path) -> None:
    case = tmp_path / "cases" / "case-00"
    touch(case, "case.yaml", "xr/img1.png")
    for name in ("loop", "loop2"):  # glob's walk through these is exponential
        (case / name).symlink_to("..")
    (case / "xr" / "up").symlink_to("..")  # '**/case.yaml' must not find xr/up/case.yaml
    (case / "xr" / "self").symlink_to("self")  # a link to itself: not an error either
    assert recursive_glob(f"{tmp_path}/cases/**/case.yaml") == [f"{case}/case.yaml"]
    assert recursive_glob(f"{tmp_path}/cases/**/*.png") == [f"{case}/xr/img1.png"]
    assert recursive_glob(f"{tmp_path}/cases/**") == [
        f"{tmp_path}/cases/",
        f"{case}",
        f"{case}/case.yaml",
        f"{case}/loop",  # met by '**', so named, but not walked into
        f"{case}/loop2",
        f"{case}/xr",
        f"{case}/xr/img1.png",
        f"{case}/xr/self",
        f"{case}/xr/up",
    ]


def test_recursive_glob_follows_a_symlinked_folder_a_literal_or_star_matches(
    tmp_path: Path,
) -> None:
    touch(tmp_path, "elsewhere/case.yaml", "elsewhere/deeper/case.yaml", "cases/real/case.yaml")
    (tmp_path / "cases" / "linked").symlink_to(tmp_path / "elsewhere")
    for pattern in ("cases/*/case.yaml", "cases/linked/*/case.yaml", "cases/linked/**"):
        absolute = f"{tmp_path}/{pattern}"
        assert recursive_glob(absolute) == sorted(glob.glob(absolute, recursive=True))
    assert recursive_glob(f"{tmp_path}/cases/*/case.yaml") == [
        f"{tmp_path}/cases/linked/case.yaml",
        f"{tmp_path}/cases/real/case.yaml",
    ]


def test_recursive_glob_double_star_looks_into_a_symlinked_folder_leading_elsewhere_only(
    tmp_path: Path,
) -> None:
    touch(tmp_path, "elsewhere/case.yaml", "elsewhere/deeper/case.yaml", "cases/real/case.yaml")
    (tmp_path / "cases" / "linked").symlink_to(tmp_path / "elsewhere")  # out of the walk
    (tmp_path / "cases" / "alias").symlink_to("real")  # into the walk: it would only repeat it
    assert recursive_glob(f"{tmp_path}/cases/**/case.yaml") == [
        f"{tmp_path}/cases/linked/case.yaml",  # never walked: not linked/deeper/case.yaml
        f"{tmp_path}/cases/real/case.yaml",
    ]
