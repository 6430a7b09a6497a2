"""Structured logs: one JSON line per request, and never a token or resource contents."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.web.request_log import JsonFormatter, logging_config
from tests.fhir_builders import hook_request, medication_request, observation
from tests.tokens import bearer, sandbox_token

SIGN = "/cds-services/mipomersen-order-sign"
ACCESS_TOKEN = "ehr-access-token-8d2f7c1e9b4a4f0e"
PATIENT_MARKER = "Zebulon Quartermain-Marker"


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.fields  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "cds_service.requests"
    ]


def withhold_request(**extra: Any) -> dict[str, Any]:
    labs = (
        observation("ALT", 236, "2026-11-20", high=40),
        observation("AST", 20, "2026-11-20"),
        observation("ALP", 80, "2026-11-20"),
        observation("TBIL", 0.5, "2026-11-20"),
    )
    body = hook_request(drafts=(medication_request("draft-1"),), labs=labs)
    body["prefetch"]["patient"] = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"text": PATIENT_MARKER}],
    }
    return {**body, **extra}


def test_one_line_per_request_with_what_an_operator_needs(
    auth_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = auth_client.post(
        SIGN + "?debug=1", json=withhold_request(), headers=bearer(sandbox_token())
    )
    assert response.status_code == 200
    (line,) = request_lines(caplog)
    assert line == {
        "method": "POST",
        "path": SIGN,
        "service": "mipomersen-order-sign",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "status": 200,
        "decision": "withhold",
        "duration_ms": line["duration_ms"],
        "iss": "https://sandbox.cds-hooks.org",
        "tenant": None,
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        pytest.param(
            lambda c: c.get("/cds-services"),
            {"status": 401, "decision": "none", "service": None, "hookInstance": None},
            id="refused",
        ),
        pytest.param(
            lambda c: c.post(SIGN, data=b"{", content_type="application/json"),
            {"status": 400, "decision": "none", "hookInstance": None},
            id="bad-json",
        ),
        pytest.param(
            lambda c: c.post(SIGN, json={**hook_request(), "hook": "patient-view"}),
            {"status": 400, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea"},
            id="invalid-request-keeps-its-hookInstance",
        ),
        pytest.param(
            lambda c: c.post(SIGN, json={**hook_request(), "hookInstance": ["not", "text"]}),
            {"status": 400, "hookInstance": None},
            id="hookInstance-not-a-string",
        ),
    ],
)
def test_failed_requests_are_logged_too(
    client: FlaskClient,
    auth_client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    send: Any,
    expected: dict[str, Any],
) -> None:
    caplog.set_level(logging.INFO)
    send(auth_client if expected["status"] == 401 else client)
    (line,) = request_lines(caplog)
    assert {key: line[key] for key in expected} == expected


def test_neither_the_jwt_nor_the_access_token_nor_patient_data_is_ever_logged(
    auth_client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level
    authorization = {
        "access_token": ACCESS_TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/*.read",
        "subject": "mipomersen-cds",
    }
    body = withhold_request(
        fhirServer="https://ehr.example.org/fhir", fhirAuthorization=authorization
    )
    tokens = [sandbox_token() for _ in range(6)]
    calls = [
        (tokens[0], body, 200),  # accepted, with the EHR's FHIR token in the body
        (tokens[0], body, 401),  # replayed
        (tokens[1][:-6] + "AAAAAA", body, 401),  # tampered signature
        (sandbox_token(aud="https://evil.example.org" + SIGN), body, 401),  # wrong aud
        (tokens[2], {**body, "hook": "patient-view"}, 400),  # authenticated, invalid request
        (tokens[3], {**body, "prefetch": {}}, 412),  # authenticated, prefetch missing
    ]
    for token, request_body, status in calls:
        response = auth_client.post(SIGN, json=request_body, headers=bearer(token))
        assert response.status_code == status, response.get_data(as_text=True)
    monkeypatch.setattr("cds_service.web.routes.answer_hook", _explode)
    response = auth_client.post(SIGN, json=body, headers=bearer(tokens[4]))
    assert response.status_code == 500

    formatter = JsonFormatter()
    logged = "\n".join(
        [caplog.text, capsys.readouterr().err]
        + [formatter.format(record) for record in caplog.records]
        + [repr(record.__dict__) for record in caplog.records]
    )
    assert len(request_lines(caplog)) == len(calls) + 1  # the log did record every call
    secrets = [*tokens, *(token.split(".")[2] for token in tokens), ACCESS_TOKEN, PATIENT_MARKER]
    secrets += [call[0] for call in calls]
    for secret in secrets:
        assert secret not in logged
    # The ALT value, as resource data or a card would carry it (a bare "236" can be part of a
    # temporary directory's name, which log records of the test's own database may show).
    for shown in ("236 U/L", '"value": 236', "'value': 236", '"value":236', "ALT 236"):
        assert shown not in logged


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("evaluation failed")


def test_json_formatter_writes_one_parseable_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "cds_service.x", logging.INFO, __file__, 1, "hello %s", ("you",), exc_info
    )
    record.fields = {
        "status": 200,
        "message": "cannot override",
        "odd": "\ud800",
        "when": Path("x"),
    }
    text = JsonFormatter().format(record)
    assert "\n" not in text
    entry = json.loads(text)
    assert entry["message"] == "hello you"
    assert entry["level"] == "INFO" and entry["logger"] == "cds_service.x"
    assert entry["status"] == 200 and entry["odd"] == "\ud800" and entry["when"] == "x"
    assert entry["time"].endswith("+00:00")
    assert "ValueError: boom" in entry["exception"]


def test_logging_config_sends_everything_to_stderr_as_json() -> None:
    config = logging_config("DEBUG")
    assert config["root"] == {"level": "DEBUG", "handlers": ["stderr"]}
    assert config["handlers"]["stderr"]["stream"] == "ext://sys.stderr"
    assert config["formatters"]["json"]["()"] == "cds_service.web.request_log.JsonFormatter"
    assert config["loggers"]["gunicorn.access"]["propagate"] is False
