"""`mipomersen-cds evaluate` over a corpus: one JSON line per file, bad files, what-if orders."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from cds_service.cli.corpus import CorpusSummary, corpus_files, evaluate_file, run_corpus
from cds_service.cli.main import main
from cds_service.hooks.what_if import WHAT_IF_ORDER_ID, with_mipomersen_order
from tests.fhir_builders import hook_request, medication_request, observation

NOW = "2026-11-23T12:00:00Z"


def patient_bundle(*resources: dict[str, Any], patient_id: str = "p1") -> dict[str, Any]:
    """A Synthea-shaped transaction Bundle: the Patient first, every subject a `urn:uuid:`."""
    patient = {"resourceType": "Patient", "id": patient_id}
    entries = [{"fullUrl": f"urn:uuid:{patient_id}", "resource": patient}]
    for resource in resources:
        resource = {**resource, "subject": {"reference": f"urn:uuid:{patient_id}"}}
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


NORMAL_PANEL = tuple(
    {**observation(test, value, "2026-11-20"), "id": f"obs-{test}"}
    for test, value in (("ALT", 20), ("AST", 22), ("TBIL", 0.6), ("ALP", 80))
)
SEVERE_REQUEST = hook_request(
    drafts=(medication_request("d1"),),
    labs=(observation("ALT", 236, "2026-11-20", high=40),),
)


def write_corpus(directory: Path, files: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body if isinstance(body, str) else json.dumps(body), encoding="utf-8")
    return directory


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[Any], str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, [json.loads(line) for line in captured.out.splitlines()], captured.err


def by_file(lines: list[Any]) -> dict[str, Any]:
    return {Path(line["file"]).name: line for line in lines}


def test_a_directory_gives_one_json_line_per_file_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_corpus(
        tmp_path / "corpus",
        {
            "severe.json": SEVERE_REQUEST,
            "nested/normal.json": patient_bundle(*NORMAL_PANEL),
            "notes.txt": "not evaluated: not *.json",
        },
    )
    status, lines, err = run(["evaluate", str(corpus), "--now", NOW], capsys)
    assert status == 0, err
    assert [Path(line["file"]).name for line in lines] == ["normal.json", "severe.json"]
    severe = by_file(lines)["severe.json"]
    assert severe["decision"] == "withhold"
    assert severe["reason"] == "transaminase-5x-uln"
    assert severe["rule"] == "label-2.3-withhold-5x-uln"
    deciding = severe["values"]["results"][0]
    assert deciding.pop("reference").startswith("Observation/")
    assert deciding == {
        "analyte": "ALT",
        "value": 236.0,
        "unit": "U/L",
        "effective": "2026-11-20T00:00:00Z",
        "uln": 40.0,
        "uln_multiple": 5.9,
        "uln_is_default": False,
    }
    assert severe["ms"] >= 0
    assert by_file(lines)["normal.json"]["decision"] == "not-involved"
    assert "Decisions" in err and "withhold" in err and "not-involved" in err
    assert "2 files in" in err and "s CPU" in err


def test_bad_files_get_an_error_line_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_corpus(
        tmp_path,
        {
            "a-bad-json.json": "{oops",
            "b-not-fhir.json": {"hello": "world"},
            "c-patient-alone.json": {"resourceType": "Patient", "id": "p1"},
            "d-good.json": SEVERE_REQUEST,
        },
    )
    status, lines, _ = run(["evaluate", str(corpus), "--now", NOW], capsys)
    assert status == 1
    decisions = {name: line["decision"] for name, line in by_file(lines).items()}
    assert decisions == {
        "a-bad-json.json": "error",
        "b-not-fhir.json": "error",
        "c-patient-alone.json": "error",
        "d-good.json": "withhold",
    }
    assert "not valid JSON" in by_file(lines)["a-bad-json.json"]["error"]
    assert "no supported 'hook'" in by_file(lines)["b-not-fhir.json"]["error"]


def test_several_files_are_a_corpus_and_a_missing_one_is_an_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_corpus(tmp_path, {"one.json": SEVERE_REQUEST})
    files = [str(tmp_path / "one.json"), str(tmp_path / "absent.json")]
    status, lines, _ = run(["evaluate", *files, "--now", NOW], capsys)
    assert status == 1
    assert [line["decision"] for line in lines] == ["withhold", "error"]
    assert "cannot read" in lines[1]["error"]


def test_format_jsonl_makes_one_file_a_corpus_of_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_corpus(tmp_path, {"one.json": SEVERE_REQUEST}) / "one.json"
    status, lines, _ = run(["evaluate", str(path), "--format", "jsonl", "--now", NOW], capsys)
    assert status == 0
    assert [line["decision"] for line in lines] == ["withhold"]


def test_the_what_if_order_asks_about_a_new_start_today(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_corpus(
        tmp_path,
        {
            "never-tested.json": patient_bundle(),
            "tested-normal.json": patient_bundle(*NORMAL_PANEL),
        },
    )
    argv = ["evaluate", str(corpus), "--now", NOW]
    _, without, _ = run(argv, capsys)
    status, with_order, _ = run([*argv, "--add-mipomersen-order"], capsys)
    assert status == 0
    assert {line["decision"] for line in without} == {"not-involved"}
    after = by_file(with_order)
    assert after["never-tested.json"]["decision"] == "repeat-test"
    assert after["never-tested.json"]["reason"] == "baseline-missing"
    assert after["never-tested.json"]["values"]["missing"] == [
        "ALT",
        "AST",
        "ALP",
        "total bilirubin",
    ]
    assert after["tested-normal.json"]["decision"] == "none"
    latest = {row["analyte"] for row in after["tested-normal.json"]["values"]["results"]}
    assert latest == {"ALT", "AST", "ALP", "total bilirubin"}


def test_the_what_if_order_on_one_bundle_prints_the_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_corpus(tmp_path, {"p.json": patient_bundle()}) / "p.json"
    status = main(["evaluate", str(path), "--now", NOW, "--add-mipomersen-order"])
    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith("[WARNING]") and "baseline" in out.lower()


def test_the_what_if_order_is_a_coded_draft_for_the_bundles_patient() -> None:
    from datetime import UTC, datetime

    bundle = patient_bundle(*NORMAL_PANEL, patient_id="synthea-7")
    now = datetime(2021, 4, 1, tzinfo=UTC)
    changed = with_mipomersen_order(bundle, now)
    order = changed["entry"][-1]["resource"]
    assert order["id"] == WHAT_IF_ORDER_ID
    assert (order["status"], order["intent"]) == ("draft", "order")
    assert order["medicationCodeableConcept"]["coding"][0] == {
        "system": "http://www.whocc.no/atc",
        "code": "C10AX11",
        "display": "mipomersen",
    }
    assert order["subject"] == {"reference": "Patient/synthea-7"}
    assert order["authoredOn"] == "2021-04-01T00:00:00Z"
    assert len(bundle["entry"]) == 5  # the input is left as it was


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(SEVERE_REQUEST, "needs a FHIR Bundle", id="hook-request"),
        pytest.param({"resourceType": "Bundle", "entry": []}, "no Patient", id="no-patient"),
        pytest.param(
            {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]},
            "no Patient with an id",
            id="patient-without-id",
        ),
    ],
)
def test_the_what_if_order_needs_a_patient_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: Any, message: str
) -> None:
    path = write_corpus(tmp_path, {"x.json": body}) / "x.json"
    argv = ["evaluate", str(path), "--format", "jsonl", "--add-mipomersen-order", "--now", NOW]
    status, lines, _ = run(argv, capsys)
    assert status == 1
    assert lines[0]["decision"] == "error" and message in lines[0]["error"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(["--format", "text"], "--format text is for one FILE", id="text"),
        pytest.param(["--format", "json"], "--format json is for one FILE", id="json"),
        pytest.param(["-"], "stdin", id="stdin-among-files"),
        pytest.param(
            ["--add-mipomersen-order", "--hook", "patient-view"], "order-sign", id="what-if-view"
        ),
        pytest.param(["--now", "soon"], "--now", id="bad-now"),
    ],
)
def test_options_that_cannot_apply_to_a_corpus_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    corpus = write_corpus(tmp_path, {"a.json": SEVERE_REQUEST, "b.json": SEVERE_REQUEST})
    status = main(["evaluate", str(corpus), *extra])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert message in captured.err


def test_a_directory_without_json_files_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["evaluate", str(write_corpus(tmp_path, {"a.txt": "x"}))])
    assert status == 2 and "no *.json files" in capsys.readouterr().err


def test_a_fault_of_the_program_is_a_crash_line_without_the_data() -> None:
    def faulty(raw: bytes) -> None:
        raise KeyError(raw.decode())  # a message that would echo the file's content

    outcome = evaluate_file(
        "f.json", answer=faulty, describe=str, read=lambda name: b"secret patient data"
    )
    assert outcome.decision == "crash"
    assert outcome.error is not None
    assert "KeyError" in outcome.error and "secret" not in outcome.error
    assert CorpusSummary(decisions=Counter({"crash": 1, "error": 1})).exit_status == 3


def test_a_terminal_shows_a_progress_bar_and_the_table() -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=100)
    out = io.StringIO()
    summary = run_corpus(
        ["a.json", "b.json"],
        answer=lambda raw: None,
        describe=str,
        read=lambda name: b"{}",
        out=out,
        console=console,
    )
    assert summary.exit_status == 0
    assert summary.decisions == {"not-involved": 2}
    assert [json.loads(line)["decision"] for line in out.getvalue().splitlines()] == [
        "not-involved",
        "not-involved",
    ]
    shown = terminal.getvalue()
    assert "evaluating" in shown  # the progress bar's label
    assert "Decisions" in shown and "not-involved" in shown


def test_files_are_listed_as_given_and_directories_sorted(tmp_path: Path) -> None:
    write_corpus(tmp_path / "d", {"b.json": {}, "a.JSON": {}, "c.txt": ""})
    listed = corpus_files(["z.json", str(tmp_path / "d")])
    assert listed == ["z.json", str(tmp_path / "d" / "a.JSON"), str(tmp_path / "d" / "b.json")]


class _TerminalOutput(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_one_terminal_the_lines_scroll_above_the_progress_bar() -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=60)
    out = _TerminalOutput()
    run_corpus(
        ["a-file-with-a-long-name-that-would-wrap.json"],
        answer=lambda raw: None,
        describe=str,
        read=lambda name: b"{}",
        out=out,
        console=console,
    )
    assert out.getvalue() == ""
    line = next(row for row in terminal.getvalue().splitlines() if '"file"' in row)
    assert json.loads(line[line.index("{") :])["decision"] == "not-involved"  # not wrapped
