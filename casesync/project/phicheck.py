"""The PHI gate over every series validation selected; its findings become problems.

The gate is validation's costliest step, so results are cached by content (a series that passed
is one row), and ``casesync.phi.gate`` (so pydicom) is imported only for a file with no cached
result.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from casesync.fsutil import state_folder
from casesync.phi.cache import CACHE_FILE as PHI_CACHE_FILE
from casesync.phi.cache import PhiCache
from casesync.phi.findings import FileReport, Finding, RuleSummary, summarize
from casesync.phi.report import advice_lines, series_line
from casesync.problems import Problem
from casesync.project.manifest import SeriesNote, SeriesSpec


def phi_gate(
    root: Path,
    series_specs: dict[tuple[str, tuple[str | int, ...]], SeriesSpec | None],
    problems: list[Problem],
    use_cache: bool,
) -> tuple[list[FileReport], list[str]]:
    """Run the PHI gate on every file; one problem per (series, rule), and the fix they share.

    A series whose exact content already passed without any finding is skipped in one lookup;
    the others go through one gate call per opt-in value, so worker processes start at most
    twice, and only for files with no cached result. The gate's warnings are also attached to
    their series (``SeriesSpec.notes``) for the plan. Returns the reports of flagged files and
    the advice to print once after the problems.
    """
    flagged_all: list[FileReport] = []
    summaries: list[RuleSummary] = []
    cache = PhiCache(state_folder(root, "cache") / PHI_CACHE_FILE) if use_cache else None
    try:
        for reviewed in (False, True):
            known_clean = cache.clean_series(reviewed) if cache else set()
            todo = {
                where: spec
                for where, spec in series_specs.items()
                if spec is not None
                and spec.burned_in_reviewed == reviewed
                and spec.content_id not in known_clean
            }
            findings = _file_findings(root, list(todo.values()), reviewed, cache)
            clean = []
            for where, spec in todo.items():
                flagged = [
                    FileReport(root / f.path, findings[f.path])
                    for f in spec.files
                    if findings[f.path]
                ]
                flagged_all.extend(flagged)
                found = summarize(flagged)
                summaries.extend(found)
                series_specs[where] = _phi_findings(root, spec, found, problems)
                if not flagged:
                    clean.append(spec.content_id)
            if cache:
                cache.mark_clean_series(clean, reviewed)
    finally:
        if cache:
            cache.close()
    return flagged_all, advice_lines(summaries)


def _file_findings(
    root: Path, specs: list[SeriesSpec], reviewed: bool, cache: PhiCache | None
) -> dict[str, tuple[Finding, ...]]:
    """Findings per file path: cached ones first, the rest from one gate call."""
    files = {f.path: f.sha256 for spec in specs for f in spec.files}
    if not files:
        return {}
    cached = cache.get_many(list(set(files.values())), reviewed) if cache else {}
    todo = [relpath for relpath, sha256 in files.items() if sha256 not in cached]
    fresh: dict[str, tuple[Finding, ...]] = {}
    if todo:
        from casesync.phi.gate import check_files  # pydicom only when a file must be parsed

        reports = check_files(
            [root / relpath for relpath in todo],
            burned_in_reviewed=reviewed,
            cache=cache,
            hashes={root / relpath: files[relpath] for relpath in todo},
        )
        fresh = dict(zip(todo, (report.findings for report in reports), strict=True))
    return {
        relpath: cached[sha256] if sha256 in cached else fresh[relpath]
        for relpath, sha256 in files.items()
    }


def _phi_findings(
    root: Path, spec: SeriesSpec, summaries: list[RuleSummary], problems: list[Problem]
) -> SeriesSpec:
    """Add a problem per rule, in the summaries' order; return the spec with its warnings."""
    notes = []
    for order, summary in enumerate(summaries, start=1):
        example = summary.example.relative_to(root).as_posix()
        message = series_line(summary, len(spec.files), example)
        where = spec.location
        problems.append(
            Problem(
                where.file,
                where.line,
                where.col,
                message,
                None,
                summary.severity,
                order,
                code=summary.rule,
            )
        )
        if summary.severity == "warning":
            notes.append(SeriesNote(f"phi-{summary.rule}", message, summary.tags))
    return replace(spec, notes=tuple(notes)) if notes else spec
