"""Hostile repositories and inputs, run through the real CLI (issue 10, items 4-8 and the
internal-error list): each gives its documented exit code and a message naming the file (and
line), never a traceback, never a write or a read outside the repository, never a hang.

Every row runs in a subprocess with a timeout: a hang is the failure, not something pytest's
own timeout has to catch. Rows that refuse an apply run against the emulator and check that
no request reached it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from repofactory import simple_repo, write_case, write_pngs

from casesync.emulator import EmulatorThread

SECRET = "TOPSECRET-VALUE-3"
VICTIM = "victim content\n"
HANG_LIMIT = 60  # seconds: far beyond any row's normal run; reaching it is the failure

# Runs the CLI with listing denied for every folder named "locked": tests run as root, where
# mode 000 does not stop a read, so the folder is also chmod 000 for runs as another user.
DENY_LOCKED = """
import os, sys
real_scandir = os.scandir
def scandir(path="."):
    if os.path.basename(os.fspath(path).rstrip("/")) == "locked":
        raise PermissionError(13, "Permission denied", os.fspath(path))
    return real_scandir(path)
os.scandir = scandir
from casesync.__main__ import main
main(sys.argv[1:])
"""


@dataclass
class World:
    """A valid repository, and a folder outside it holding a victim file."""

    root: Path
    outside: Path
    victim: Path
    emulator: EmulatorThread

    def case_dir(self) -> Path:
        return self.root / "cases" / "case-00"


@dataclass(frozen=True)
class Row:
    name: str
    arrange: Callable[[World], list[str]]  # builds the hostile input, returns the CLI args
    exit_code: int
    says: tuple[str, ...]  # every fragment must be in the output
    never: tuple[str, ...] = ()  # none of these may be
    deny_locked: bool = False
    at_most_one_error_line: bool = False


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)


def set_images(world: World, images: str) -> None:
    case_file = world.case_dir() / "case.yaml"
    case_file.write_text(case_file.read_text().replace("images: xr", f"images: {images}"))


# --- confinement (items 4-7) ---


def apply_lock_symlink(world: World) -> list[str]:
    link(world.root / ".casesync" / "apply.lock", world.victim)
    return ["apply", "--yes"]


def schema_symlink(world: World) -> list[str]:
    link(world.root / ".casesync" / "schemas" / "case.schema.json", world.victim)
    return ["validate"]


def state_dir_symlink(world: World) -> list[str]:
    link(world.root / ".casesync", world.outside)
    return ["validate"]


def cache_dir_symlink(world: World) -> list[str]:
    link(world.root / ".casesync" / "cache", world.outside)
    return ["plan"]


def journal_symlink(world: World) -> list[str]:
    link(world.root / ".casesync" / "journal.jsonl", world.victim)
    return ["apply", "--yes"]


def lockfile_symlink(world: World) -> list[str]:
    link(world.root / "casesync.lock", world.victim)
    return ["plan"]


def secret_manifest(world: World) -> Path:
    secret = world.outside / "elsewhere" / "case.yaml"
    secret.parent.mkdir()
    secret.write_text(f"title: x\nsystem: {SECRET}\nstudies: []\n")
    return secret


def case_yaml_symlink(world: World) -> list[str]:
    link(world.root / "cases" / "evil" / "case.yaml", secret_manifest(world))
    return ["validate"]


def case_folder_symlink(world: World) -> list[str]:
    link(world.root / "cases" / "evil", secret_manifest(world).parent)
    return ["validate"]


def project_file_symlink(world: World) -> list[str]:
    secret = world.outside / "casesync.yaml"
    secret.write_text(f"version: 1\napi_url: {SECRET}\n")
    link(world.root / "casesync.yaml", secret)
    return ["validate"]


def anonymise_dst_links_into_src(world: World) -> list[str]:
    src, dst = world.root / "scans", world.root / "anon"
    write_pngs(src / "sub", ["a.png", "b.png"])
    dst.mkdir()
    link(dst / "sub", src / "sub")
    return ["anonymise", str(src), str(dst)]


def images_absolute_glob(world: World) -> list[str]:
    set_images(world, "[/etc/*]")
    return ["validate"]


def images_parent_glob(world: World) -> list[str]:
    (world.outside / "outside-name-1.png").write_bytes(b"x")
    set_images(world, '["../../../outside/*"]')
    return ["validate"]


def images_glob_through_symlink(world: World) -> list[str]:
    write_pngs(world.outside / "pics", ["outside-name-1.png", "outside-name-2.png"])
    link(world.case_dir() / "linked", world.outside / "pics")
    set_images(world, '["linked/*"]')
    return ["validate"]


def case_folder_symlink_star(world: World) -> list[str]:
    (world.root / "casesync.yaml").write_text('version: 1\ncases: ["cases/*/case.yaml"]\n')
    return case_folder_symlink(world)


def case_folder_linked_twice(world: World) -> list[str]:
    (world.root / "casesync.yaml").write_text('version: 1\ncases: ["cases/*/case.yaml"]\n')
    (world.root / "cases/twin").symlink_to("case-00")
    return ["apply", "--yes"]


def cases_absolute_glob(world: World) -> list[str]:
    (world.root / "casesync.yaml").write_text('version: 1\ncases: ["/etc/*"]\n')
    return ["validate"]


# --- bounds (item 8) ---


def case_yaml_fifo(world: World) -> list[str]:
    path = world.case_dir() / "case.yaml"
    path.unlink()
    os.mkfifo(path)
    return ["validate"]


def project_file_fifo(world: World) -> list[str]:
    path = world.root / "casesync.yaml"
    path.unlink()
    os.mkfifo(path)
    return ["-C", str(world.root), "validate"]


def case_yaml_dev_zero(world: World) -> list[str]:
    link(world.case_dir() / "case.yaml", Path("/dev/zero"))
    return ["validate"]


def case_yaml_too_big(world: World) -> list[str]:
    path = world.case_dir() / "case.yaml"
    path.write_text(path.read_text() + "# " + "x" * (2 * 1024 * 1024) + "\n")
    return ["validate"]


def image_fifo(world: World) -> list[str]:
    os.mkfifo(world.case_dir() / "xr" / "slice.png")
    set_images(world, "[xr/img1.png, xr/slice.png]")
    return ["validate"]


def key_file_fifo(world: World) -> list[str]:
    write_pngs(world.root / "scans", ["a.png"])
    os.mkfifo(world.root / "key.fifo")
    return ["anonymise", "scans", "anon", "--key-file", "key.fifo"]


def default_key_fifo(world: World) -> list[str]:
    write_pngs(world.root / "scans", ["a.png"])
    (world.root / ".casesync").mkdir()
    os.mkfifo(world.root / ".casesync" / "anonymise.key")
    return ["anonymise", "scans", "anon"]


def check_phi_fifo(world: World) -> list[str]:
    os.mkfifo(world.root / "scan.dcm")
    return ["check-phi", "scan.dcm"]


def check_phi_dev_zero(world: World) -> list[str]:
    link(world.root / "zero.dcm", Path("/dev/zero"))
    return ["check-phi", "zero.dcm"]


def anonymise_src_fifo(world: World) -> list[str]:
    os.mkfifo(world.root / "scan.dcm")
    return ["anonymise", "scan.dcm", "anon"]


def apply_plan_fifo(world: World) -> list[str]:
    os.mkfifo(world.root / "plan.json")
    return ["apply", "--yes", "--plan", "plan.json"]


def init_through_dangling_symlink(world: World) -> list[str]:
    fresh = world.root / "fresh"
    fresh.mkdir()
    link(fresh / "casesync.yaml", world.outside / "created-by-init.yaml")
    return ["-C", str(fresh), "init"]


def cases_symlink_loops(world: World) -> list[str]:
    for name in ("loop", "loop2"):  # glob's walk of cases/**/case.yaml through these hangs
        link(world.case_dir() / name, Path(".."))
    return ["validate"]


def images_symlink_loops(world: World) -> list[str]:
    for name in ("loop", "loop2"):
        link(world.case_dir() / "xr" / name, Path(".."))
    set_images(world, '"xr/**/*.png"')
    return ["validate"]


# --- internal errors made clean ---


def deep_flow_nesting(world: World) -> list[str]:
    depth = 700
    path = world.case_dir() / "case.yaml"
    path.write_text(path.read_text() + "extra: " + "[" * depth + "]" * depth + "\n")
    return ["validate"]


def integer_key(world: World) -> list[str]:
    path = world.case_dir() / "case.yaml"
    path.write_text(path.read_text() + "1: a\nzz: b\n")
    return ["validate"]


def image_folder_unreadable(world: World) -> list[str]:
    (world.case_dir() / "xr").rename(world.case_dir() / "locked")
    set_images(world, "locked")
    (world.case_dir() / "locked").chmod(0)
    return ["validate"]


def case_folder_unreadable(world: World) -> list[str]:
    case_dir = write_case(world.root, "locked", (world.case_dir() / "case.yaml").read_text())
    write_pngs(case_dir / "xr", ["img1.png"], seed=500)
    case_dir.chmod(0)
    return ["validate"]


def plan_out_missing_folder(world: World) -> list[str]:
    return ["plan", "--out", str(world.root / "nodir" / "plan.json")]


def plan_out_folder(world: World) -> list[str]:
    (world.root / "plans").mkdir()
    return ["plan", "--out", str(world.root / "plans")]


def emulator_corrupt_state(world: World) -> list[str]:
    (world.root / "emu.json").write_text('{"format": 1, "cases": [')
    return ["emulator", "--port", "0", "--state", "emu.json"]


def emulator_wrong_state(world: World) -> list[str]:
    (world.root / "emu.json").write_text('{"format": 1, "users": 3}')
    return ["emulator", "--port", "0", "--state", "emu.json"]


ROWS = [
    Row("apply.lock symlink", apply_lock_symlink, 1, (".casesync/apply.lock is a symlink", "rm ")),
    Row("schema symlink", schema_symlink, 1, ("case.schema.json is a symlink",)),
    Row(".casesync symlink", state_dir_symlink, 1, ("/.casesync is a symlink",)),
    Row("cache folder symlink", cache_dir_symlink, 1, (".casesync/cache is a symlink",)),
    Row("journal symlink", journal_symlink, 1, ("journal.jsonl is a symlink",)),
    Row("lockfile symlink", lockfile_symlink, 1, ("casesync.lock is a symlink",)),
    Row(
        "case.yaml symlinked outside",
        case_yaml_symlink,
        3,
        ("cases/evil/case.yaml:1:1: error: resolves outside the project root",),
        (SECRET,),
    ),
    Row(
        "case folder symlinked outside",
        case_folder_symlink,
        3,
        ("cases/evil/case.yaml:1:1: error: resolves outside the project root",),
        (SECRET,),
    ),
    Row(
        "case folder symlinked outside, matched by '*'",
        case_folder_symlink_star,
        3,
        ("cases/evil/case.yaml:1:1: error: resolves outside the project root",),
        (SECRET,),
    ),
    Row(
        "casesync.yaml symlinked outside",
        project_file_symlink,
        3,
        ("casesync.yaml:1:1: error: resolves outside the project root",),
        (SECRET,),
    ),
    Row(
        "anonymise DST subfolder linked into SRC",
        anonymise_dst_links_into_src,
        5,
        ("anon/sub is a symlink; anonymise never writes through one",),
    ),
    Row(
        "images: [/etc/*]",
        images_absolute_glob,
        3,
        ("cases/case-00/case.yaml:", "'/etc/*' reaches outside the project root"),
        ("passwd", "hosts", "fstab"),
        at_most_one_error_line=True,
    ),
    Row(
        "images: ../../../outside/*",
        images_parent_glob,
        3,
        ("reaches outside the project root",),
        ("outside-name-1",),
        at_most_one_error_line=True,
    ),
    Row(
        "images glob through a symlinked folder",
        images_glob_through_symlink,
        3,
        ("'linked/*' matches 2 file(s) outside the project root",),
        ("outside-name",),
        at_most_one_error_line=True,
    ),
    Row(
        "a case folder symlinked to another, matched by '*'",
        case_folder_linked_twice,
        3,
        (
            "cases/twin/case.yaml:1:1: error: is cases/case-00/case.yaml again, reached "
            "through a symlink",
        ),
        at_most_one_error_line=True,
    ),
    Row(
        "cases: [/etc/*]",
        cases_absolute_glob,
        3,
        ("casesync.yaml:1:1: error: cases pattern '/etc/*' reaches outside",),
        ("passwd", "hosts"),
    ),
    Row(
        "case.yaml is a FIFO",
        case_yaml_fifo,
        3,
        (
            "cases/case-00/case.yaml:1:1: error: cases/case-00/case.yaml is not a regular file (a FIFO)",
        ),
    ),
    Row(
        "casesync.yaml is a FIFO",
        project_file_fifo,
        1,
        ("no casesync.yaml found",),
    ),
    Row(
        "case.yaml -> /dev/zero",
        case_yaml_dev_zero,
        3,
        ("cases/case-00/case.yaml:1:1: error: resolves outside the project root",),
    ),
    Row(
        "case.yaml over 1 MB",
        case_yaml_too_big,
        3,
        ("cases/case-00/case.yaml:1:1: error:", "1048576-byte (1 MB) limit"),
    ),
    Row("image is a FIFO", image_fifo, 3, ("'xr/slice.png' is not a regular file",)),
    Row("key file is a FIFO", key_file_fifo, 1, ("key.fifo is not a regular file (a FIFO)",)),
    Row(
        "default key file is a FIFO",
        default_key_fifo,
        1,
        ("anonymise.key is not a regular file (a FIFO)",),
    ),
    Row("check-phi FIFO", check_phi_fifo, 3, ("not a regular file (a FIFO)", "scan.dcm")),
    Row(
        "check-phi /dev/zero",
        check_phi_dev_zero,
        3,
        ("not a regular file (a character device)", "zero.dcm"),
    ),
    Row(
        "anonymise SRC is a FIFO",
        anonymise_src_fifo,
        1,
        ("scan.dcm is neither a folder nor a regular file",),
    ),
    Row(
        "apply --plan is a FIFO", apply_plan_fifo, 1, ("plan.json is not a regular file (a FIFO)",)
    ),
    Row(
        "init over a dangling symlink",
        init_through_dangling_symlink,
        1,
        ("fresh/casesync.yaml is a symlink",),
    ),
    Row(
        "symlink loops below the cases",
        cases_symlink_loops,
        0,
        ("OK: 1 case and 3 files are valid.",),
        ("loop",),
    ),
    Row(
        "symlink loops in a series folder, images: xr/**/*.png",
        images_symlink_loops,
        0,
        ("OK: 1 case and 3 files are valid.",),
        ("loop",),
    ),
    Row(
        "flow nesting 700 deep",
        deep_flow_nesting,
        3,
        ("cases/case-00/case.yaml:", "nested over 64 levels deep"),
    ),
    Row(
        "integer mapping key",
        integer_key,
        3,
        ("cases/case-00/case.yaml:", ": error: mapping key of type int"),
    ),
    Row(
        "image folder unreadable",
        image_folder_unreadable,
        3,
        ("cases/case-00/case.yaml:", "folder 'locked' cannot be read", "chmod"),
        deny_locked=True,
    ),
    Row(
        "case folder unreadable",
        case_folder_unreadable,
        3,
        ("cases/locked:1:1: error: folder cannot be read", "chmod"),
        deny_locked=True,
    ),
    Row(
        "plan --out into a missing folder",
        plan_out_missing_folder,
        1,
        ("nodir does not exist", "--out"),
    ),
    Row("plan --out onto a folder", plan_out_folder, 1, ("plans is a folder",)),
    Row(
        "emulator --state corrupt",
        emulator_corrupt_state,
        1,
        ("emulator state file emu.json: not JSON: line 1", "--state"),
    ),
    Row(
        "emulator --state of another shape",
        emulator_wrong_state,
        1,
        ("emulator state file emu.json: not a state file this emulator wrote",),
    ),
]


@pytest.fixture
def world(tmp_path: Path, emulator_thread: EmulatorThread) -> Iterator[World]:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text(VICTIM)
    made = World(simple_repo(tmp_path / "repo"), outside, victim, emulator_thread)
    yield made
    for folder in (made.case_dir() / "locked", made.root / "cases" / "locked"):
        if folder.exists():
            folder.chmod(0o755)  # so tmp_path can be removed when not running as root


def run_cli(world: World, args: list[str], deny_locked: bool) -> subprocess.CompletedProcess[str]:
    program = ["-c", DENY_LOCKED] if deny_locked else ["-m", "casesync"]
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": str(world.outside.parent),
        "CASESYNC_API_URL": world.emulator.base_url,
        "CASESYNC_ACCESS_TOKEN": world.emulator.issue_tokens()["access_token"],
    }
    return subprocess.run(
        [sys.executable, *program, *args],
        cwd=world.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_LIMIT,
        stdin=subprocess.DEVNULL,
    )


def outside_state(world: World) -> tuple[list[str], str, int]:
    """What must not change outside the repository: the listing and the victim file."""
    listing = sorted(str(p.relative_to(world.outside)) for p in world.outside.rglob("*"))
    return listing, world.victim.read_text(), world.victim.stat().st_mtime_ns


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_hostile_input_gets_a_clean_error(world: World, row: Row) -> None:
    args = row.arrange(world)
    before = outside_state(world)
    src_before = sorted(p.name for p in (world.root / "scans").rglob("*"))
    result = run_cli(world, args, row.deny_locked)
    output = result.stdout + result.stderr
    assert result.returncode == row.exit_code, output
    for fragment in row.says:
        assert fragment in output, output
    for fragment in row.never:
        assert fragment not in output, output
    assert "Traceback" not in output and "internal error" not in output, output
    assert outside_state(world) == before, "something outside the repository changed"
    assert sorted(p.name for p in (world.root / "scans").rglob("*")) == src_before
    assert world.emulator.snapshot()["requests"] == {}, "a request reached the server"
    if row.at_most_one_error_line:
        assert result.stdout.count(": error: ") == 1, output


def test_emulator_on_a_busy_port_is_a_clean_error(world: World) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(world, ["emulator", "--port", str(port)], deny_locked=False)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"cannot listen on 127.0.0.1:{port}" in output and "--port 0" in output, output
    assert "Traceback" not in output and "internal error" not in output, output
