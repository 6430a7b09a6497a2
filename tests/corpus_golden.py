"""Golden decisions of the trimmed Synthea subset: compare them with the code, or rewrite them.

    python -m tests.corpus_golden           # list the rows the code now disagrees with
    python -m tests.corpus_golden --write   # rewrite decision, reason and rule of those rows

Each row of `tests/data/corpus/golden.csv` is one file in one run of `mipomersen-cds evaluate`
over `tests/data/corpus/synthea/` (`RUNS`: an instant, with or without the what-if mipomersen
order) and holds the decision, reason code and rule, and a one-line reason in clinical terms
checked by hand against the file. `--write` marks every row whose decision, reason or rule
changed (and every new row) `UNCHECKED`; `tests/test_corpus_golden.py` fails until someone has
checked it against the file's results and removed the mark.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cds_service.cli.main import main as cli_main

CORPUS = Path(__file__).parent / "data" / "corpus"
SUBSET = CORPUS / "synthea"
GOLDEN = CORPUS / "golden.csv"
UNCHECKED = "UNCHECKED"
FIELDS = ("file", "now", "what_if", "decision", "reason", "rule", "clinical_reason")

# 2021-04-01: just after the sample's last liver tests (2021-03-28), so that some are current.
SAMPLE_NOW = "2021-04-01T00:00:00Z"
JORDAN = "Jordan_Cruickshank_5de38439-d320-46d3-854d-3c098e88de4c.json"


@dataclass(frozen=True, slots=True)
class Run:
    """One `evaluate` run over the subset (or some of its files)."""

    now: str
    what_if: bool
    files: tuple[str, ...] = ()  # empty: the whole subset directory


RUNS = (
    Run(SAMPLE_NOW, what_if=False),
    Run(SAMPLE_NOW, what_if=True),
    # A week after Jordan's ALT 3.6x and AST 4.1x ULN: the same record while it is current.
    Run("2017-07-01T00:00:00Z", what_if=True, files=(JORDAN,)),
)

Key = tuple[str, str, str]  # file, now, what_if ("yes" / "no")
Outcome = tuple[str, str, str]  # decision, reason, rule ("" when none)


def run_key(file: str, run: Run) -> Key:
    """Return the golden key of `file` in `run`."""
    return file, run.now, "yes" if run.what_if else "no"


def evaluate_run(run: Run) -> dict[Key, Outcome]:
    """Run `mipomersen-cds evaluate` in this process as `run` says; return each file's outcome."""
    inputs = [str(SUBSET / name) for name in run.files] or [str(SUBSET)]
    argv = ["evaluate", *inputs, "--format", "jsonl", "--now", run.now]
    if run.what_if:
        argv.append("--add-mipomersen-order")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        cli_main(argv)
    outcomes: dict[Key, Outcome] = {}
    for line in out.getvalue().splitlines():
        row = json.loads(line)
        outcome = (row["decision"], row.get("reason", ""), row.get("rule", ""))
        outcomes[run_key(Path(row["file"]).name, run)] = outcome
    return outcomes


def evaluate_all() -> dict[Key, Outcome]:
    """Return the outcome of every file in every run."""
    outcomes: dict[Key, Outcome] = {}
    for run in RUNS:
        outcomes.update(evaluate_run(run))
    return outcomes


def read_golden(path: Path = GOLDEN) -> dict[Key, dict[str, str]]:
    """Return the golden rows by key."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {(r["file"], r["now"], r["what_if"]): r for r in csv.DictReader(handle)}


def differences(golden: dict[Key, dict[str, str]], actual: dict[Key, Outcome]) -> list[str]:
    """Describe each row where the code and the golden file disagree (missing rows included)."""
    lines = []
    for key in sorted(golden.keys() | actual.keys()):
        row = golden.get(key)
        expected = (row["decision"], row["reason"], row["rule"]) if row else None
        got = actual.get(key)
        if expected != got:
            lines.append(f"{' / '.join(key)}: golden {expected}, now {got}")
    return lines


def rewrite(golden: dict[Key, dict[str, str]], actual: dict[Key, Outcome]) -> list[dict[str, str]]:
    """Return the golden rows for `actual`, keeping checked reasons only where nothing changed."""
    rows = []
    for key in sorted(actual):
        decision, reason, rule = actual[key]
        old = golden.get(key)
        if old is None:
            clinical = f"{UNCHECKED} (new row)"
        elif (old["decision"], old["reason"], old["rule"]) == (decision, reason, rule):
            clinical = old["clinical_reason"]
        else:
            was = "/".join(filter(None, (old["decision"], old["reason"])))
            clinical = f"{UNCHECKED} (was {was}): {old['clinical_reason']}"
        values = (*key, decision, reason, rule, clinical)
        rows.append(dict(zip(FIELDS, values, strict=True)))
    return rows


def write_golden(rows: list[dict[str, str]], path: Path = GOLDEN) -> None:
    """Write the golden rows as CSV."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Compare (or, with --write, rewrite) the golden decisions; return 1 on a difference."""
    parser = argparse.ArgumentParser(prog="python -m tests.corpus_golden", description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite golden.csv")
    arguments = parser.parse_args(argv)
    golden = read_golden() if GOLDEN.exists() else {}
    actual = evaluate_all()
    changed = differences(golden, actual)
    sys.stdout.write("".join(line + "\n" for line in changed))
    if arguments.write:
        write_golden(rewrite(golden, actual))
        sys.stdout.write(f"{len(changed)} rows changed; check the rows marked {UNCHECKED}\n")
        return 0
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
