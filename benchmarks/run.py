"""casesync against what users would otherwise do, each pair measured side by side in one run.

    python benchmarks/run.py [--quick] [--only 0,1,2,3,4,5] [--baseline DIR [--baseline-python PY]]

Generates everything it needs in a temporary folder (no downloads; DICOM slices come from
pydicom's bundled CT_small.dcm, tiled to 512 x 512 and anonymised by casesync), prints one
Markdown table, and removes the data. The full run needs about 10 GB of free disk for a while.

``--baseline DIR`` also times the whole-process rows (0 and 2) with an older casesync whose
package folder is ``DIR/casesync`` (e.g. ``git archive REV casesync | tar -x -C DIR``), run
interleaved with the current one so that both see the same machine load. ``--baseline-python``
runs it with another interpreter (a virtualenv holding the libraries that casesync pinned then).
"""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples" / "tools"))

from generate import CASE_YAML, generate_repo, write_matching_lock  # noqa: E402
from slices import SeriesSpec, write_series  # noqa: E402

from casesync.emulator import EmulatorConfig, EmulatorThread  # noqa: E402
from casesync.files.hashing import gather_facts  # noqa: E402
from casesync.phi.anonymise import anonymise_tree  # noqa: E402
from casesync.phi.gate import check_files  # noqa: E402
from casesync.sync.workflow import plan_only, prepare_plan  # noqa: E402

SLICES_PER_CASE = 200
PROCESS_RUNS = 9  # whole-process rows: the median of this many runs, commands interleaved
LATENCY_MS = 40
MB = 1_000_000


@dataclass(frozen=True)
class Sizes:
    """How much of everything; slices are ~524 KB (512 x 512 x 16 bit)."""

    pool_slices: int  # anonymised slices shared by benchmarks 1, 3, 4, 5 (hard links)
    hash_slices: int
    plan_cases: int
    plan_files: int
    apply_slices: int
    rss_small_slices: int
    rss_big_slices: int
    rss_big_tile: int  # 4a: slices this many tiles wide (40: ~52 MB each)


FULL = Sizes(8000, 4000, 200, 40_000, 2000, 80, 8000, 40)
QUICK = Sizes(800, 400, 50, 5_000, 200, 80, 800, 12)


@dataclass(frozen=True)
class Row:
    name: str
    casesync: str
    reference: str
    ratio: str
    target: str
    met: bool | None  # None: no target


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def make_pool(work: Path, count: int) -> tuple[list[Path], Row]:
    """``count`` anonymised CT slices; the anonymise pass is benchmark 5b."""
    raw = work / "raw"
    for start in range(0, count, SLICES_PER_CASE):
        spec = SeriesSpec(
            "CT_small.dcm", min(SLICES_PER_CASE, count - start), f"bench-{start}", tile=4
        )
        write_series(raw / f"s{start // SLICES_PER_CASE:03d}", spec)
    key = bytes(32)  # a benchmark key: the data is synthetic
    seconds = timed(lambda: anonymise_tree(raw, work / "pool", key))
    shutil.rmtree(raw)
    paths = sorted((work / "pool").rglob("*.dcm"))
    row = Row(
        "5b. anonymise (CT slices, all cores)", f"{count / seconds:,.0f} files/s", "", "", "", None
    )
    return paths, row


def bench_hashing(work: Path, pool: list[Path], count: int) -> Row:
    """Cold facts (no casesync cache) vs sha256sum, same files, both from the page cache."""
    files = pool[:count]
    size = sum(p.stat().st_size for p in files)
    relpaths = [p.relative_to(work / "pool").as_posix() for p in files]
    root = work / "pool"
    for path in files:  # warm the page cache once so neither side pays for the disk
        path.read_bytes()
    ours = min(timed(lambda: gather_facts(root, relpaths, None)) for _ in range(2))
    command = ["sha256sum", *relpaths]
    theirs = min(
        timed(lambda: subprocess.run(command, cwd=root, check=True, stdout=subprocess.DEVNULL))
        for _ in range(2)
    )
    return Row(
        f"1. cold hashing, {size / MB:,.0f} MB ({count} slices)",
        f"{ours:.2f} s",
        f"sha256sum {theirs:.2f} s",
        f"{ours / theirs:.2f}",
        "<= 0.6",
        ours / theirs <= 0.6,
    )


def walk(folder: str) -> int:
    """The floor for any no-op check: visit and stat every file (git's own folder aside)."""
    count = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name == ".git":
                continue
            if entry.is_dir(follow_symlinks=False):
                count += walk(entry.path)
            else:
                entry.stat()
                count += 1
    return count


WALK = f"""
import os, sys
{inspect.getsource(walk)}
walk(sys.argv[1])
"""


@dataclass(frozen=True)
class Command:
    argv: list[str]
    cwd: Path
    env: dict[str, str] | None = None  # None: this process's environment


@dataclass(frozen=True)
class Baseline:
    folder: Path  # holds the older casesync/ package
    python: str  # the interpreter (and so the libraries) it runs with


def casesync_command(args: list[str], cwd: Path, baseline: Baseline | None = None) -> Command:
    """``python -m casesync ARGS``; with ``baseline``, the package found in that folder."""
    if baseline is None:
        return Command([sys.executable, "-m", "casesync", *args], cwd)
    env = {**os.environ, "PYTHONPATH": str(baseline.folder)}
    return Command([baseline.python, "-m", "casesync", *args], cwd, env)


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # user + system: what the process needs when it has the machine to itself

    def __str__(self) -> str:
        return f"{self.wall:.3f} s (CPU {self.cpu:.3f} s)"


def median_timings(commands: dict[str, Command], runs: int = PROCESS_RUNS) -> dict[str, Timing]:
    """Each command as a whole process: one warm-up, then the median of ``runs``, the commands
    taking turns so that a burst of load on a shared machine hits all of them alike."""
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for repetition in range(runs + 1):
        for name, command in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(
                command.argv,
                cwd=command.cwd,
                env=command.env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if repetition:
                walls[name].append(wall)
                cpus[name].append(
                    after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                )
    return {
        name: Timing(statistics.median(walls[name]), statistics.median(cpus[name]))
        for name in commands
    }


STARTUP = {"a": ["--version"], "b": ["validate", "--help"]}


def bench_startup(work: Path, baseline: Baseline | None) -> list[Row]:
    """0. What every command pays before it does anything: interpreter, imports, typer."""
    commands = {"python": Command([sys.executable, "-c", "pass"], work)}
    for label, args in STARTUP.items():
        commands[label] = casesync_command(args, work)
        if baseline:
            commands[f"{label}, before"] = casesync_command(args, work, baseline)
    timings = median_timings(commands)
    rows = []
    for name, timing in timings.items():
        if name == "python":
            continue
        now = "," not in name
        rows.append(
            Row(
                f"0{name[0]}. start-up: casesync {' '.join(STARTUP[name[0]])}{name[1:]}",
                str(timing),
                f"python -c pass {timings['python']}",
                "",
                "< 0.15 s" if now else "",
                timing.wall < 0.15 if now else None,
            )
        )
    return rows


def ratio_row(name: str, ours: Timing, reference: Timing, limit: float | None) -> Row:
    """Wall-time ratio (the target's measure) and, for a loaded machine, the CPU ratio."""
    ratio = ours.wall / reference.wall
    return Row(
        name,
        str(ours),
        str(reference),
        f"{ratio:.1f} (CPU {ours.cpu / reference.cpu:.1f})",
        f"<= {limit:g}" if limit else "",
        ratio <= limit if limit else None,
    )


def git_commit_all(root: Path) -> None:
    """The tree as a user would have it: committed, casesync's local state ignored."""
    (root / ".gitignore").write_text(".casesync/\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@localhost",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@localhost",
    }
    steps = (["init", "-q"], ["config", "gc.auto", "0"], ["add", "-A"], ["commit", "-qm", "tree"])
    for argv in steps:  # no automatic gc: it would run in the background while we measure
        subprocess.run(["git", *argv], cwd=root, env=env, check=True)


def bench_noop_plan(work: Path, cases: int, files: int, baseline: Baseline | None) -> list[Row]:
    """2. A plan with nothing to do, in-process and as a whole process, against the floor."""
    root = work / "plan-repo"
    generate_repo(root, cases, files // cases)
    write_matching_lock(root)  # fills the caches too: this is the warm-up run
    git_commit_all(root)
    prepare_plan(root)
    plans = []
    for _ in range(3):
        start = time.perf_counter()
        prepared = prepare_plan(root)
        plans.append(time.perf_counter() - start)
        assert not prepared.plan.has_changes
    ours = min(plans)
    plan_only(root)  # computes once more and stores the memo (the tree is seconds old by now)
    memo = root / ".casesync" / "cache" / "plan.json"
    assert memo.exists(), "the tree is still inside the memo's 2-second racy window"
    stored = memo.stat().st_mtime_ns
    remembered = min(timed(lambda: plan_only(root)) for _ in range(3))
    theirs = min(timed(lambda: walk(str(root))) for _ in range(3))
    size = f"{cases} cases / {files:,} files"
    rows = [
        Row(
            f"2. no-op plan in-process, computed (memo miss), {size}",
            f"{ours:.2f} s",
            f"scandir+stat {theirs:.2f} s",
            f"{ours / theirs:.2f}",
            "",
            None,
        ),
        Row(
            f"2a. no-op plan in-process, the memo read back, {size}",
            f"{remembered:.3f} s",
            f"scandir+stat {theirs:.3f} s",
            f"{remembered / theirs:.2f}",
            "",
            None,
        ),
    ]
    commands = {
        "": casesync_command(["plan", "--detailed-exitcode"], root),
        "git": Command(["git", "status", "--porcelain"], root),
        "walk": Command([sys.executable, "-c", WALK, str(root)], root),
    }
    if baseline:  # its own copy: the two versions keep different caches in .casesync/
        before_root = work / "plan-repo-before"
        shutil.copytree(
            root, before_root, symlinks=True, ignore=shutil.ignore_patterns(".casesync")
        )
        before = casesync_command(["plan", "--detailed-exitcode"], before_root, baseline)
        commands[", before"] = before
    timings = median_timings(commands)
    assert memo.stat().st_mtime_ns == stored, "a plan process missed the memo"
    git, walked = timings["git"], timings["walk"]
    for suffix in ("", ", before") if baseline else ("",):
        plan = timings[suffix]
        now = not suffix
        rows += [
            ratio_row(
                f"2b. no-op plan as a process vs a scandir+stat process{suffix}, {size}",
                plan,
                walked,
                3 if now else None,
            ),
            ratio_row(
                f"2c. no-op plan vs git status --porcelain{suffix}, {size}",
                plan,
                git,
                5 if now else None,
            ),
        ]
    shutil.rmtree(root)
    return rows


def make_repo(root: Path, pool: list[Path], count: int) -> int:
    """A project of ``count`` pool slices (hard links), 200 per case; returns its size."""
    (root / "cases").mkdir(parents=True)
    (root / "casesync.yaml").write_text("version: 1\n")
    size = 0
    for index, start in enumerate(range(0, count, SLICES_PER_CASE)):
        case_dir = root / "cases" / f"case-{index:04d}"
        (case_dir / "slices").mkdir(parents=True)
        (case_dir / "case.yaml").write_text(CASE_YAML.format(index=index))
        for path in pool[start : min(start + SLICES_PER_CASE, count)]:
            os.link(path, case_dir / "slices" / path.name)
            size += path.stat().st_size
    return size


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_kb: int | None  # of casesync's own process, when run under RSS_PROBE


# VmHWM is the peak RSS of the current program image. ru_maxrss from wait4 would not do: Linux
# carries the high-water mark across exec, so a child forked from this (large) process would
# report this process's size.
RSS_PROBE = """\
import atexit, sys
def report():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            sys.stderr.write("peak-rss-kb " + line.split()[1] + "\\n")
atexit.register(report)
sys.argv[0] = "casesync"
from casesync.__main__ import main
main()
"""


def run_child(command: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run to completion; wall time, and the peak RSS the child printed (if it did)."""
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{command} failed ({result.returncode}): {result.stderr[-2000:]}")
    peaks = [
        int(line.split()[1])
        for line in result.stderr.splitlines()
        if line.startswith("peak-rss-kb ")
    ]
    return Run(seconds, peaks[-1] if peaks else None)


@contextmanager
def emulator(latency_ms: float) -> Iterator[dict[str, str]]:
    """A fresh emulator (nothing uploaded yet, no quota) and the environment to reach it."""
    config = EmulatorConfig(latency_ms=latency_ms, draft_quota=None, job_seconds=0.05)
    with EmulatorThread(config) as running:
        yield {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "CASESYNC_API_URL": running.base_url,
            "CASESYNC_ACCESS_TOKEN": running.issue_tokens()["access_token"],
        }


def casesync_apply(repo: Path, latency_ms: float) -> Run:
    """``casesync apply --yes`` from cold: validation, hashing and the PHI gate included."""
    with emulator(latency_ms) as env:
        return run_child([sys.executable, "-c", RSS_PROBE, "apply", "--yes"], repo, env)


def bench_apply(work: Path, pool: list[Path], count: int) -> Row:
    repo = work / "apply-repo"
    size = make_repo(repo, pool, count)
    ours = casesync_apply(repo, LATENCY_MS)
    with emulator(LATENCY_MS) as env:
        command = [sys.executable, str(HERE / "sequential_client.py"), str(repo)]
        theirs = run_child(command, repo, env)
    shutil.rmtree(repo)
    ratio = theirs.seconds / ours.seconds
    return Row(
        f"3. apply {count:,} slices ({size / MB:,.0f} MB), {LATENCY_MS} ms latency",
        f"{ours.seconds:.1f} s, {size / ours.seconds / MB:,.1f} MB/s",
        f"sequential {theirs.seconds:.1f} s, {size / theirs.seconds / MB:,.1f} MB/s",
        f"{ratio:.1f}x",
        ">= 12x",
        ratio >= 12,
    )


def make_big_pool(work: Path, count: int, tile: int) -> list[Path]:
    """``count`` anonymised slices of CT_small tiled ``tile`` times each way (40: ~52 MB)."""
    raw = work / "raw-big"
    write_series(raw / "s000", SeriesSpec("CT_small.dcm", count, "bench-big", tile=tile))
    anonymise_tree(raw, work / "pool-big", bytes(32))
    shutil.rmtree(raw)
    return sorted((work / "pool-big").rglob("*.dcm"))


def peak_rss(work: Path, pool: list[Path], count: int) -> tuple[int, Run]:
    repo = work / "rss-repo"
    size = make_repo(repo, pool, count)
    run = casesync_apply(repo, 0)
    shutil.rmtree(repo)
    assert run.peak_rss_kb
    return size, run


def bench_rss_size(work: Path, pool: list[Path], count: int, big_tile: int) -> Row:
    """4a. Streaming: the same number of files, 100 times the bytes, the same memory."""
    small_size, small = peak_rss(work, pool, count)
    big_pool = make_big_pool(work, count, big_tile)
    big_size, big = peak_rss(work, big_pool, count)
    shutil.rmtree(work / "pool-big")
    assert small.peak_rss_kb and big.peak_rss_kb
    ratio = big.peak_rss_kb / small.peak_rss_kb
    return Row(
        f"4a. apply peak RSS, {count} slices: {small_size / MB:,.0f} MB vs {big_size / MB:,.0f} MB",
        f"{small.peak_rss_kb / 1024:,.0f} MiB vs {big.peak_rss_kb / 1024:,.0f} MiB",
        "",
        f"{ratio:.2f}",
        "< 1.3",
        ratio < 1.3,
    )


def bench_rss_count(work: Path, pool: list[Path], small: int, big: int) -> Row:
    """4b. Bookkeeping: memory per file of the plan (manifest, lock, journal), not its bytes."""
    small_size, small_run = peak_rss(work, pool, small)
    big_size, big_run = peak_rss(work, pool, big)
    assert small_run.peak_rss_kb and big_run.peak_rss_kb
    per_file = (big_run.peak_rss_kb - small_run.peak_rss_kb) / (big - small)
    return Row(
        f"4b. apply peak RSS, {small:,} vs {big:,} slices ({small_size / MB:,.0f} MB vs "
        f"{big_size / MB:,.0f} MB)",
        f"{small_run.peak_rss_kb / 1024:,.0f} MiB vs {big_run.peak_rss_kb / 1024:,.0f} MiB",
        "",
        f"{per_file:.1f} KiB per file",
        "",
        None,
    )


def bench_gate(pool: list[Path], count: int) -> Row:
    files = pool[:count]
    seconds = timed(lambda: check_files(files))
    return Row(
        f"5a. PHI gate, {count:,} CT slices (all cores, no cache)",
        f"{count / seconds:,.0f} files/s",
        "",
        "",
        "",
        None,
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| benchmark | casesync | reference | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = "" if row.met is None else ("yes" if row.met else "NO")
        lines.append(
            f"| {row.name} | {row.casesync} | {row.reference} | {row.ratio} | {row.target} "
            f"| {met} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller data, a few minutes")
    parser.add_argument("--only", help="comma-separated benchmark numbers, e.g. 1,2")
    parser.add_argument("--baseline", type=Path, help="folder holding an older casesync/")
    parser.add_argument("--baseline-python", default=sys.executable, help="its interpreter")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else {"0", "1", "2", "3", "4", "5"}
    baseline = Baseline(args.baseline.resolve(), args.baseline_python) if args.baseline else None
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="casesync-bench-") as tmp:
        work = Path(tmp)
        if "0" in only:
            rows += bench_startup(work, baseline)
        if "2" in only:
            rows += bench_noop_plan(work, sizes.plan_cases, sizes.plan_files, baseline)
        if only & {"1", "3", "4", "5"}:
            pool, anonymise_row = make_pool(work, sizes.pool_slices)
            if "1" in only:
                rows.append(bench_hashing(work, pool, sizes.hash_slices))
            if "3" in only:
                rows.append(bench_apply(work, pool, sizes.apply_slices))
            if "4" in only:
                small, big = sizes.rss_small_slices, sizes.rss_big_slices
                rows.append(bench_rss_size(work, pool, small, sizes.rss_big_tile))
                rows.append(bench_rss_count(work, pool, small, big))
            if "5" in only:
                rows += [bench_gate(pool, sizes.hash_slices), anonymise_row]
    rows.sort(key=lambda row: row.name)
    print(table(rows))
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    mode = "--quick" if args.quick else "full"
    averages = os.getloadavg() if hasattr(os, "getloadavg") else None
    load = ", load average " + " ".join(f"{a:.1f}" for a in averages) if averages else ""
    print(f"\n{dt.date.today()}, {machine}, {mode} run{load}")


if __name__ == "__main__":
    main()
