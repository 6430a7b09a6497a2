"""The `mipomersen-cds` command: evaluate files as an EHR would see the card; clear failures."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import responses

from cds_service.cli.main import main
from tests.fhir_builders import hook_request, medication_request, observation

NOW = "2026-11-23T12:00:00Z"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def write(tmp_path: Path, body: Any, name: str = "input.json") -> str:
    path = tmp_path / name
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return str(path)


SEVERE = hook_request(
    drafts=(medication_request("d1"),),
    labs=(observation("ALT", 236, "2026-11-20", high=40),),
)


def test_text_output_reads_like_the_card(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(["evaluate", write(tmp_path, SEVERE), "--now", NOW], capsys)
    assert status == 0, err
    first_line = out.splitlines()[0]
    assert first_line == "[CRITICAL] Withhold mipomersen: ALT 236 U/L = 5.9× ULN on 2026-11-20"
    assert "Suggestion: Remove the mipomersen order" in out
    assert "Override reasons:" in out


def test_json_output_is_the_cds_hooks_response(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        ["evaluate", write(tmp_path, SEVERE), "--now", NOW, "--format", "json"], capsys
    )
    assert status == 0
    assert json.loads(out)["cards"][0]["indicator"] == "critical"


def test_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(SEVERE).encode())))
    status, out, _ = run(["evaluate", "-", "--now", NOW], capsys)
    assert status == 0 and out.startswith("[CRITICAL]")


def test_profile_option_switches_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = hook_request(
        drafts=(medication_request("d1"),), labs=(observation("ALT", 130, "2026-11-20", high=40),)
    )
    path = write(tmp_path, body)
    _, label_out, _ = run(["evaluate", path, "--now", NOW], capsys)
    _, conservative_out, _ = run(
        ["evaluate", path, "--now", NOW, "--profile", "conservative"], capsys
    )
    assert label_out.startswith("[WARNING] Repeat ALT/AST")
    assert conservative_out.startswith("[CRITICAL] Withhold mipomersen until a repeat test")


def test_bundle_input_becomes_an_order_sign_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patient = {"resourceType": "Patient", "id": "p1"}
    draft = medication_request("d1")
    draft["subject"] = {"reference": "urn:uuid:patient-1"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:patient-1", "resource": patient},
            {"resource": draft},
            {"resource": observation("ALT", 236, "2026-11-20", high=40)},
        ],
    }
    status, out, err = run(["evaluate", write(tmp_path, bundle), "--now", NOW], capsys)
    assert status == 0, err
    assert out.startswith("[CRITICAL] Withhold mipomersen")


def test_bundle_without_draft_orders_is_a_chart_review(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}],
    }
    status, out, _ = run(["evaluate", write(tmp_path, bundle), "--now", NOW], capsys)
    assert status == 0
    assert out.strip() == "No card: mipomersen is not involved in this request."


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        pytest.param("{oops", [], "not valid JSON", id="malformed-json"),
        pytest.param("[]", [], "JSON object", id="array"),
        pytest.param(json.dumps({"resourceType": "Patient"}), [], "not a Bundle", id="patient"),
        pytest.param(json.dumps({"hook": "nope"}), [], "no supported 'hook'", id="unknown-hook"),
        pytest.param(
            json.dumps(SEVERE), ["--hook", "patient-view"], "does not match", id="hook-mismatch"
        ),
        pytest.param(json.dumps(SEVERE), ["--now", "yesterday"], "--now", id="bad-now"),
        pytest.param(
            json.dumps({"resourceType": "Bundle", "entry": []}), [], "no Patient", id="no-patient"
        ),
        pytest.param(
            json.dumps(hook_request(drafts=(medication_request("d1"),), prefetch={})),
            [],
            "liverLabs",
            id="missing-prefetch",
        ),
        pytest.param(
            json.dumps({**SEVERE, "context": {"patientId": 3}}),
            [],
            "context.patientId",
            id="bad-type",
        ),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, extra: list[str], message: str
) -> None:
    status, out, err = run(["evaluate", write(tmp_path, content), *extra], capsys)
    assert status == 2
    assert out == ""
    assert message in err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(["evaluate", str(tmp_path / "absent.json")], capsys)
    assert status == 2 and "cannot read" in err


def test_help_documents_commands_and_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "evaluate" in out and "serve" in out and "MIPOMERSEN_CDS_PROFILE" in out
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    for option in ("--hook", "--now", "--profile", "--format", "Exit status"):
        assert option in out


def test_serve_refuses_a_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MIPOMERSEN_CDS_PROFILE", "reckless")
    status, _, err = run(["serve"], capsys)
    assert status == 2 and "MIPOMERSEN_CDS_PROFILE" in err


def test_serve_refuses_to_start_open_by_accident(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MIPOMERSEN_CDS_AUTH", raising=False)
    status, _, err = run(["serve"], capsys)
    assert status == 2 and "MIPOMERSEN_CDS_TRUSTED_ISSUERS is not set" in err


def test_serve_runs_gunicorn_with_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIPOMERSEN_CDS_AUTH", "off")
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        "cds_service.cli.serve.run_gunicorn", lambda **options: seen.update(options)
    )
    assert main(["serve", "--host", "0.0.0.0", "--port", "9000"]) == 0
    # No --workers/--threads: the config file's values (MIPOMERSEN_CDS_WORKERS/THREADS) apply.
    assert seen == {"host": "0.0.0.0", "port": 9000, "workers": None, "threads": None}
    assert main(["serve", "--workers", "3", "--threads", "8"]) == 0
    assert (seen["workers"], seen["threads"]) == (3, 8)


@responses.activate
def test_fhir_server_option_fetches_what_the_request_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = "https://ehr.example.org/fhir"
    labs = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": observation("ALT", 236, "2026-11-20", high=40)}],
    }
    responses.get(f"{base}/Observation", json=labs)
    for kind in ("MedicationRequest", "Condition"):
        responses.get(f"{base}/{kind}", json={"resourceType": "Bundle", "type": "searchset"})
    responses.get(f"{base}/Patient/p1", json={"resourceType": "Patient", "id": "p1"})
    monkeypatch.setenv("EHR_TOKEN", "cli-token")
    request = hook_request(drafts=(medication_request("d1"),))
    del request["prefetch"]
    path = write(tmp_path, request)
    status, out, err = run(
        ["evaluate", path, "--now", NOW, "--fhir-server", base, "--token-env", "EHR_TOKEN"], capsys
    )
    assert status == 0, err
    assert out.startswith("[CRITICAL] Withhold mipomersen: ALT 236 U/L")
    assert {call.request.headers["Authorization"] for call in responses.calls} == {
        "Bearer cli-token"
    }
    assert "cli-token" not in out + err


def test_token_env_that_is_not_set_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    path = write(tmp_path, SEVERE)
    status, _, err = run(
        [
            "evaluate",
            path,
            "--fhir-server",
            "https://x.example/fhir",
            "--token-env",
            "NO_SUCH_TOKEN",
        ],
        capsys,
    )
    assert status == 2 and "NO_SUCH_TOKEN" in err


def test_validate_full_also_refuses_an_invalid_element_the_rules_never_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = {**observation("ALT", 236, "2026-11-20", high=40), "category": "laboratory"}
    path = write(tmp_path, hook_request(drafts=(medication_request("d1"),), labs=(lab,)))
    _, consumed, _ = run(["evaluate", path, "--now", NOW], capsys)
    _, full, _ = run(["evaluate", path, "--now", NOW, "--validate", "full"], capsys)
    assert consumed.startswith("[CRITICAL] Withhold mipomersen: ALT 236 U/L")
    assert not full.startswith("[CRITICAL] Withhold mipomersen: ALT 236 U/L")
    assert "category" in full
