"""Evaluate a corpus of files in one process: one JSON line per file, progress and a summary.

`mipomersen-cds evaluate DIR` (or several files, or `--format jsonl`) lands here. Each file gets
one line on standard output, whatever happens to it:

    {"file": ..., "decision": ..., "reason": ..., "rule": ..., "values": {...}, "ms": ...}

`decision` is a `DecisionKind` value, `not-involved` (mipomersen is not in the request),
`error` (the file is not usable: bad JSON, not FHIR or CDS Hooks; `error` says why) or `crash`
(a fault of this program; the run goes on, and the exit status says so). On a terminal a
progress bar runs on standard error; a summary table of decisions always ends the run there.
Per-file start-up work (settings, validators) is done once by the caller, not per file.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cds_service.errors import CdsServiceError
from cds_service.rules import AssessedResult, DecisionKind, Evaluation, Finding
from fhir_mappings import FhirMappingError

__all__ = [
    "CRASH",
    "ERROR",
    "EXIT_CRASH",
    "EXIT_FILE_ERRORS",
    "NOT_INVOLVED",
    "CorpusSummary",
    "FileOutcome",
    "corpus_files",
    "evaluate_file",
    "outcome_line",
    "run_corpus",
    "summary_figures",
    "summary_table",
]

NOT_INVOLVED = "not-involved"  # no card: mipomersen is not in the request (policy 11)
ERROR = "error"  # the file could not be evaluated; the line says why
CRASH = "crash"  # an unexpected fault of this program on that file

EXIT_FILE_ERRORS = 1  # some files were not usable (bad JSON, not FHIR, ...)
EXIT_CRASH = 3  # some file hit a fault of this program

# The order of the summary table: the decisions by severity, then what is not a decision.
_SUMMARY_ORDER = (*(kind.value for kind in DecisionKind), NOT_INVOLVED, ERROR, CRASH)
_EXPECTED_ERRORS = (CdsServiceError, FhirMappingError, OSError)
_FULL_COLLECTION_EVERY = 100  # files; see `_cyclic_gc_between_files`

Answer = Callable[[bytes], Evaluation | None]
Describe = Callable[[Exception], str]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What evaluating one file gave: a decision and its evidence, or why there is none."""

    file: str
    decision: str
    ms: float
    reason: str | None = None
    rule: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def outcome_line(outcome: FileOutcome) -> str:
    """Return the JSON line for one file (keys with no value are left out)."""
    line: dict[str, Any] = {"file": outcome.file, "decision": outcome.decision}
    for key in ("reason", "rule", "error"):
        value = getattr(outcome, key)
        if value is not None:
            line[key] = value
    if outcome.values:
        line["values"] = outcome.values
    line["ms"] = round(outcome.ms, 1)
    return json.dumps(line, ensure_ascii=False)


def corpus_files(inputs: Iterable[str]) -> list[str]:
    """Return the files to evaluate: each input file as given, each directory's `*.json` files.

    Directories are walked recursively, files sorted by path. A path that does not exist is kept,
    so that its line says it cannot be read.
    """
    files: list[str] = []
    for name in inputs:
        if os.path.isdir(name):
            found = (path for path in Path(name).rglob("*") if path.suffix.lower() == ".json")
            files.extend(str(path) for path in sorted(found) if path.is_file())
        else:
            files.append(name)
    return files


def evaluate_file(
    name: str, *, answer: Answer, describe: Describe, read: Callable[[str], bytes]
) -> FileOutcome:
    """Read and evaluate one file; never raise (an unexpected fault becomes a `crash` line)."""
    started = time.perf_counter()
    try:
        evaluation = answer(read(name))
    except _EXPECTED_ERRORS as error:
        return FileOutcome(name, ERROR, _ms_since(started), error=describe(error))
    except Exception as error:  # one file's fault must not end the run
        return FileOutcome(name, CRASH, _ms_since(started), error=_fault(error))
    elapsed = _ms_since(started)
    if evaluation is None:
        return FileOutcome(name, NOT_INVOLVED, elapsed)
    finding = evaluation.decision
    if finding is None:
        return FileOutcome(name, DecisionKind.NONE.value, elapsed, values=_latest(evaluation))
    return FileOutcome(
        name,
        finding.kind.value,
        elapsed,
        reason=finding.reason.code,
        rule=finding.rule,
        values=_finding_values(finding, evaluation.findings[1:]),
    )


@dataclass(slots=True)
class CorpusSummary:
    """The decisions of a run, with its wall-clock and CPU seconds."""

    decisions: Counter[str] = field(default_factory=Counter)
    milliseconds: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def files(self) -> int:
        """Return how many files were evaluated (or failed)."""
        return sum(self.decisions.values())

    @property
    def exit_status(self) -> int:
        """Return 3 after a crash, 1 when a file was not usable, else 0."""
        if self.decisions[CRASH]:
            return EXIT_CRASH
        if self.decisions[ERROR]:
            return EXIT_FILE_ERRORS
        return 0


def run_corpus(
    files: Sequence[str],
    *,
    answer: Answer,
    describe: Describe,
    read: Callable[[str], bytes],
    out: TextIO | None = None,
    console: Console | None = None,
) -> CorpusSummary:
    """Evaluate `files` in order, writing one JSON line each; show progress on a terminal.

    Lines go to `out` (default: standard output); the progress bar and the summary go to
    `console` (default: standard error). When both are the terminal, lines are printed through
    the console so that they scroll above the bar instead of breaking it.
    """
    out = out or sys.stdout
    console = console or Console(stderr=True)
    shared_terminal = console.is_terminal and out.isatty()

    def emit(line: str) -> None:
        if shared_terminal:
            console.print(line, soft_wrap=True, markup=False, highlight=False, emoji=False)
        else:
            out.write(line + "\n")

    summary = CorpusSummary()
    wall, cpu = time.perf_counter(), time.process_time()
    for outcome in _with_progress(files, answer, describe, read, console):
        emit(outcome_line(outcome))
        summary.decisions[outcome.decision] += 1
        summary.milliseconds.append(outcome.ms)
    summary.wall_seconds = time.perf_counter() - wall
    summary.cpu_seconds = time.process_time() - cpu
    out.flush()
    console.print(summary_table(summary))
    console.print(summary_figures(summary), highlight=False)
    return summary


def _with_progress(
    files: Sequence[str],
    answer: Answer,
    describe: Describe,
    read: Callable[[str], bytes],
    console: Console,
) -> Iterator[FileOutcome]:
    def outcomes() -> Iterator[FileOutcome]:
        for count, name in enumerate(files, start=1):
            with _cyclic_gc_between_files(full=count % _FULL_COLLECTION_EVERY == 0):
                outcome = evaluate_file(name, answer=answer, describe=describe, read=read)
            yield outcome

    if not console.is_terminal:
        yield from outcomes()
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # No redirection of sys.stdout: JSON lines sent to a file or a pipe must stay there.
    progress = Progress(
        *columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False
    )
    with progress:
        task = progress.add_task("evaluating", total=len(files))
        for outcome in outcomes():
            yield outcome
            progress.advance(task)


@contextmanager
def _cyclic_gc_between_files(*, full: bool) -> Iterator[None]:
    """Run one file with the cyclic garbage collector off, and collect after it.

    Decoding a 1 MB Bundle allocates hundreds of thousands of containers, and each allocation
    burst triggers collections that scan them all: measured on the Synthea sample, 40% of the
    CPU time. Parsed JSON holds no reference cycles (reference counting frees it), so the
    collector runs once after each file instead (the young generations; everything every
    `_FULL_COLLECTION_EVERY` files).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect(2 if full else 1)


def summary_table(summary: CorpusSummary) -> Table:
    """Return the table of decisions: how many files got each, and their share."""
    table = Table(title="Decisions")
    table.add_column("decision")
    table.add_column("files", justify="right")
    table.add_column("share", justify="right")
    total = summary.files
    for decision in _SUMMARY_ORDER:
        count = summary.decisions[decision]
        if count:
            table.add_row(decision, str(count), f"{100 * count / total:.1f}%")
    table.add_row("total", str(total), "100%" if total else "-", style="bold")
    return table


def summary_figures(summary: CorpusSummary) -> str:
    """Return one line with the run's size, wall-clock and CPU seconds and per-file times."""
    times = summary.milliseconds
    timing = f"; median {median(times):.0f} ms, max {max(times):.0f} ms per file" if times else ""
    return (
        f"{summary.files} files in {summary.wall_seconds:.1f} s wall, "
        f"{summary.cpu_seconds:.1f} s CPU{timing}"
    )


def _finding_values(finding: Finding, others: Sequence[Finding]) -> dict[str, Any]:
    """Return the values a finding rests on, as plain JSON (empty parts left out)."""
    values: dict[str, Any] = {}
    results = [r for r in (finding.deciding, *finding.supporting) if r is not None]
    if results:
        values["results"] = [_result(assessed) for assessed in results]
    if finding.missing:
        values["missing"] = [analyte.value for analyte in finding.missing]
    if finding.last_tested is not None:
        values["last_tested"] = _iso(finding.last_tested)
    if finding.condition is not None:
        coding = finding.condition.coding
        values["condition"] = {
            "kind": finding.condition.kind.value,
            "system": coding.system,
            "code": coding.code,
            "name": finding.condition.name,
        }
    if finding.unusable is not None:
        values["unusable"] = {
            "analyte": finding.unusable.analyte.value,
            "reason": finding.unusable.reason.value,
            "detail": finding.unusable.detail,
        }
    if finding.skipped:
        values["skipped"] = [
            {"resource_type": s.resource_type, "path": s.path, "message": s.message}
            for s in finding.skipped
        ]
    if others:
        values["also"] = [other.reason.code for other in others]
    return values


def _latest(evaluation: Evaluation) -> dict[str, Any]:
    """Return each analyte's latest result: the values behind a `none` decision."""
    latest: dict[str, AssessedResult] = {}
    for assessed in evaluation.results:  # newest first
        latest.setdefault(assessed.result.analyte.value, assessed)
    return {"results": [_result(assessed) for assessed in latest.values()]} if latest else {}


def _result(assessed: AssessedResult) -> dict[str, Any]:
    result = assessed.result
    row: dict[str, Any] = {
        "analyte": result.analyte.value,
        "value": result.value,
        "unit": result.unit,
        "effective": _iso(result.effective),
    }
    if result.bound.value != "=":
        row["bound"] = result.bound.value
    if assessed.uln is not None:
        row["uln"] = assessed.uln
        row["uln_multiple"] = round(result.value / assessed.uln, 2)
        row["uln_is_default"] = assessed.uln_is_default
    if result.source.reference is not None:
        row["reference"] = result.source.reference
    return row


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _fault(error: Exception) -> str:
    """Name an unexpected fault by type and place only (its message may hold patient data)."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"internal error {type(error).__name__}{where}; please report it"
