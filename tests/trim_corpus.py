"""Write the trimmed Synthea subset in `tests/data/corpus/synthea/` from the public sample.

    python -m tests.trim_corpus --git-dir PATH/generated-sample-data.git [--commit SHA]

Reads each path of `tests/data/corpus/selection.txt` from that git repository (a bare clone of
`smart-on-fhir/generated-sample-data` is enough) at `--commit`, keeps only the resources the
rules read — Patient, Observations coded with a LOINC of `liver-loinc-conceptmap.json`,
MedicationRequest, Medication, Condition — and writes the Bundle as compact JSON under the same
file name. Everything else about a kept entry (fullUrl, request, the resource itself) is left as
it was. The table of origins in `tests/data/README.md` (between its `corpus-origins` markers)
is rewritten with the repository, commit, path and blob of each file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fhir_mappings import analyte_for_loinc

REPOSITORY = "smart-on-fhir/generated-sample-data"
DEFAULT_COMMIT = "25ac8089f0464b8673c7669509dc0bb8f4883773"
DATA = Path(__file__).parent / "data"
CORPUS = DATA / "corpus"
SELECTION = CORPUS / "selection.txt"
TRIMMED = CORPUS / "synthea"
README = DATA / "README.md"
BEGIN, END = "<!-- corpus-origins:begin -->", "<!-- corpus-origins:end -->"

_KEPT_TYPES = frozenset({"Patient", "MedicationRequest", "Medication", "Condition"})
_LOINC = "http://loinc.org"


def is_read_by_rules(resource: Mapping[str, Any]) -> bool:
    """Return whether the rules read this resource (an Observation only with a liver LOINC)."""
    kind = resource.get("resourceType")
    if kind in _KEPT_TYPES:
        return True
    if kind != "Observation":
        return False
    code = resource.get("code")
    codings = code.get("coding", []) if isinstance(code, Mapping) else []
    return any(
        isinstance(c, Mapping)
        and c.get("system") == _LOINC
        and isinstance(c.get("code"), str)
        and analyte_for_loinc(c["code"]) is not None
        for c in codings
    )


def trim_bundle(bundle: Mapping[str, Any]) -> dict[str, Any]:
    """Return the Bundle with only the entries whose resource the rules read."""
    entries = [
        entry
        for entry in bundle.get("entry", [])
        if isinstance(entry.get("resource"), Mapping) and is_read_by_rules(entry["resource"])
    ]
    return {**bundle, "entry": entries}


def selected_paths(selection: Path = SELECTION) -> list[str]:
    """Return the repository paths listed in the selection file (comments and blanks skipped)."""
    lines = selection.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def main(argv: Sequence[str] | None = None) -> int:
    """Trim the selected files; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tests.trim_corpus", description=__doc__)
    parser.add_argument("--git-dir", required=True, help=f"a clone of {REPOSITORY}")
    parser.add_argument("--commit", default=DEFAULT_COMMIT, help="commit to read the files at")
    arguments = parser.parse_args(argv)
    TRIMMED.mkdir(parents=True, exist_ok=True)
    rows = []
    total = 0
    for path in selected_paths():
        blob = _git(arguments.git_dir, "rev-parse", f"{arguments.commit}:{path}").strip()
        original = _git(arguments.git_dir, "cat-file", "blob", blob)
        trimmed = trim_bundle(json.loads(original))
        text = json.dumps(trimmed, ensure_ascii=False, separators=(",", ":")) + "\n"
        target = TRIMMED / Path(path).name
        target.write_text(text, encoding="utf-8")
        size = target.stat().st_size
        total += size
        kept, of = len(trimmed["entry"]), len(json.loads(original).get("entry", []))
        rows.append(f"| `{target.name}` | `{path}` | `{blob[:8]}` | {kept} of {of} | {size:,} |")
    _write_origins(arguments.commit, rows, total)
    sys.stdout.write(f"{len(rows)} files, {total:,} bytes in {TRIMMED}\n")
    return 0


def _git(git_dir: str, *args: str) -> str:
    command = ["git", "--git-dir", git_dir, *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _write_origins(commit: str, rows: list[str], total: int) -> None:
    table = "\n".join(
        [
            BEGIN,
            f"Repository `{REPOSITORY}`, commit `{commit}` (Apache-2.0); {len(rows)} files, "
            f"{total:,} bytes.",
            "",
            "| file | path in the repository | source blob | entries kept | bytes |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            END,
        ]
    )
    text = README.read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    README.write_text(text[:start] + table + text[end:], encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
