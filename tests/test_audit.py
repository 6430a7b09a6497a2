"""Every hook call leaves an audit record; a database outage never changes or withholds a card."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from cds_service import create_app
from cds_service.records.storage import AuditRecord
from tests.conftest import AUTH_OFF, NOW, sequential_ids
from tests.databases import AppFactory, dump, state
from tests.fhir_builders import (
    PATIENT_ID,
    condition,
    hook_request,
    medication_request,
    observation,
)

SIGN = "/cds-services/mipomersen-order-sign"
NORMAL_LABS = (
    observation("ALT", 20, "2026-11-20"),
    observation("AST", 20, "2026-11-20"),
    observation("ALP", 80, "2026-11-20"),
    observation("TBIL", 0.5, "2026-11-20"),
)
ALT_236 = {**observation("ALT", 236, "2026-11-20", high=40), "meta": {"versionId": "3"}}
SEVERE = hook_request(drafts=(medication_request("draft-1"),), labs=(ALT_236, *NORMAL_LABS[1:]))
TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-access-token-7f3a"


def call(client: FlaskClient, body: Any, path: str = SIGN) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, data=data, content_type="application/json")


def records(app: Flask) -> list[AuditRecord]:
    with state(app).database.session() as session:
        return list(session.scalars(select(AuditRecord).order_by(AuditRecord.id)))


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app(clock=lambda: NOW, new_id=sequential_ids())


def test_a_card_is_recorded_with_its_decision_uuids_and_evidence(app: Flask) -> None:
    response = call(app.test_client(), SEVERE)
    (card,) = response.get_json()["cards"]
    (record,) = records(app)
    assert record.recorded_at == NOW
    assert (record.service_id, record.hook, record.hook_instance) == (
        "mipomersen-order-sign",
        "order-sign",
        SEVERE["hookInstance"],
    )
    assert record.patient_reference == f"Patient/{PATIENT_ID}"
    assert (record.profile, record.decision, record.reason, record.rule) == (
        "label",
        "withhold",
        "transaminase-5x-uln",
        card["extension"]["io.github.mipomersen-cds"]["rule"],
    )
    assert record.card_uuid == card["uuid"]
    assert record.suggestion_uuids == [suggestion["uuid"] for suggestion in card["suggestions"]]
    assert record.resources == [
        {"role": "deciding", "type": "Observation", "id": ALT_236["id"], "version": "3"},
        {"role": "order", "type": "MedicationRequest", "id": "draft-1"},
    ]
    assert record.data_sources == {
        "patient": "absent",
        "liverLabs": "prefetch",
        "medications": "prefetch",
        "conditions": "prefetch",
    }
    assert (record.status, record.issues) == (200, [])
    assert 0 < record.duration_ms < 10_000


@pytest.mark.parametrize(
    ("body", "decision", "roles"),
    [
        pytest.param(
            hook_request(drafts=(medication_request("draft-1"),), labs=NORMAL_LABS),
            "none",
            ["result", "result", "result", "result", "order"],
            id="all-normal-lists-every-result-considered",
        ),
        pytest.param(
            hook_request(
                drafts=(medication_request("draft-1"),),
                labs=NORMAL_LABS,
                conditions=(condition("19943007"),),  # cirrhosis of liver
            ),
            "contraindicated",
            ["condition", "order"],
            id="contraindication-names-the-condition",
        ),
        pytest.param(
            hook_request(drafts=(medication_request("d1", medication={"text": "Aspirin"}),)),
            None,
            [],
            id="mipomersen-not-involved",
        ),
    ],
)
def test_every_decision_is_recorded(
    app: Flask, body: dict[str, Any], decision: str | None, roles: list[str]
) -> None:
    response = call(app.test_client(), body)
    assert response.status_code == 200
    (record,) = records(app)
    assert record.decision == decision
    assert [resource["role"] for resource in record.resources] == roles
    assert record.card_uuid == (response.get_json()["cards"] or [{}])[0].get("uuid")


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SERVICES = {
    "order-select": "mipomersen-order-select",
    "order-sign": "mipomersen-order-sign",
    "patient-view": "mipomersen-patient-view",
}


@pytest.mark.parametrize(
    ("example", "decision", "evidence"),
    [
        ("contraindicated-cirrhosis-new-order", "contraindicated", ["condition", "order"]),
        (
            "discontinue-alt-3x-with-bilirubin-2x",
            "discontinue",
            ["deciding", "supporting", "order"],
        ),
        ("withhold-alt-5x-uln", "withhold", ["deciding", "order"]),
        ("withhold-confirmed-ast-3x-uln", "withhold", ["deciding", "supporting", "order"]),
        ("repeat-test-confirm-alt-3x-uln", "repeat-test", ["deciding", "order"]),
        ("repeat-test-latest-alt-unknown-unit", "repeat-test", ["unusable", "order"]),
        ("repeat-test-baseline-missing", "repeat-test", ["order"]),
        ("monitor-closely-alt-above-uln-si-units", "monitor-closely", ["deciding", "order"]),
        ("no-card-monitoring-current-and-normal", "none", ["result"] * 8 + ["order"]),
        ("no-card-not-mipomersen", None, []),
    ],
)
def test_each_example_is_recorded_with_the_evidence_of_its_decision(
    app: Flask, example: str, decision: str | None, evidence: list[str]
) -> None:
    body = json.loads((EXAMPLES / f"{example}.json").read_text())
    assert (
        call(app.test_client(), body, f"/cds-services/{SERVICES[body['hook']]}").status_code == 200
    )
    (record,) = records(app)
    assert record.decision == decision
    assert [resource["role"] for resource in record.resources] == evidence
    assert all("id" in resource for resource in record.resources)


def test_an_unreadable_record_is_named_even_without_an_id(app: Flask) -> None:
    unreadable = {**condition("19943007"), "recordedDate": "yesterday"}
    del unreadable["id"]
    drafts = (medication_request("draft-1"),)
    call(app.test_client(), hook_request(drafts=drafts, labs=NORMAL_LABS, conditions=(unreadable,)))
    (record,) = records(app)
    assert (record.decision, record.reason) == ("monitor-closely", "record-unreadable")
    assert record.resources == [
        {"role": "skipped", "type": "Condition"},
        {"role": "order", "type": "MedicationRequest", "id": "draft-1"},
    ]


@pytest.mark.parametrize(
    ("body", "status", "hook", "issues"),
    [
        pytest.param(
            hook_request(drafts=(medication_request("draft-1"),), prefetch={}),
            412,
            "order-sign",
            [
                {"code": "incomplete", "expression": [f"prefetch.{key}"]}
                for key in ("liverLabs", "medications", "conditions")
            ],
            id="412-missing-prefetch",
        ),
        pytest.param(
            {**SEVERE, "hook": "patient-view"},
            400,
            "patient-view",
            [{"code": "invalid", "expression": ["hook"]}],
            id="400-hook-as-sent",
        ),
        pytest.param(b"{not json", 400, None, [{"code": "invalid"}], id="400-not-json"),
    ],
)
def test_refused_calls_are_recorded_with_status_and_where_it_failed(
    app: Flask, body: Any, status: int, hook: str | None, issues: list[dict[str, Any]]
) -> None:
    assert call(app.test_client(), body).status_code == status
    (record,) = records(app)
    assert (record.status, record.hook, record.decision, record.card_uuid) == (
        status,
        hook,
        None,
        None,
    )
    assert record.issues == issues


def test_a_body_over_the_limit_is_recorded_as_413(make_app: AppFactory) -> None:
    app = make_app({"MAX_BODY_BYTES": "100"})
    assert call(app.test_client(), SEVERE).status_code == 413
    assert [(record.status, record.hook) for record in records(app)] == [(413, None)]


def test_an_unexpected_error_is_recorded_as_500(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr("cds_service.web.routes.answer_hook", explode)
    assert call(app.test_client(), SEVERE).status_code == 500
    assert [record.status for record in records(app)] == [500]


def test_text_from_the_client_is_cut_to_keep_records_small(app: Flask) -> None:
    body = {**SEVERE, "hookInstance": "x" * 10_000, "hook": "h" * 10_000}
    call(app.test_client(), body)
    (record,) = records(app)
    assert (record.hook_instance, record.hook) == ("x" * 256, "h" * 256)


def test_a_nul_character_sent_by_the_client_never_costs_the_record(app: Flask) -> None:
    body = {**SEVERE, "hookInstance": "d1577c69\x00", "hook": "patient\x00view"}
    assert call(app.test_client(), body).status_code == 400
    (record,) = records(app)
    assert (record.hook_instance, record.hook) == ("d1577c69\ufffd", "patient\ufffdview")


def test_no_token_and_no_resource_ever_reaches_the_database_or_the_log(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    body = copy.deepcopy(SEVERE)
    body["fhirServer"] = "https://ehr.example.org/fhir"
    body["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/Observation.read",
        "subject": "cds-service",
    }
    client = app.test_client()
    (card,) = call(client, body).get_json()["cards"]
    client.post(
        f"{SIGN}/feedback",
        json={
            "feedback": [
                {
                    "card": card["uuid"],
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-11-23T12:01:00Z",
                }
            ]
        },
    )
    everything = dump(state(app).database)
    assert card["uuid"] in everything, "the dump holds the records"
    for secret in (TOKEN, "secret-access-token", "valueQuantity", "resourceType", "effective"):
        assert secret not in everything
    assert TOKEN not in caplog.text


# --- the database fails: the card does not --------------------------------------------------------


def golden(body: Any) -> Any:
    """Return the answer of an app whose database works (same clock and ids)."""
    app = create_app(AUTH_OFF, environ={}, clock=lambda: NOW, new_id=sequential_ids())
    try:
        return call(app.test_client(), body).get_json()
    finally:
        state(app).database.close()


def test_audit_write_failure_never_changes_the_card(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with state(app).database.transaction() as session:
        session.execute(text("DROP TABLE audit_record"))
    response = call(app.test_client(), SEVERE)
    assert response.status_code == 200
    assert response.get_json() == golden(SEVERE)
    assert state(app).audit.failures == 1
    (message,) = [r.getMessage() for r in caplog.records if r.name == "cds_service.records.audit"]
    assert message.startswith("audit record of a mipomersen-order-sign call not written (")
    assert message.endswith("); 1 failed since start-up")
    assert PATIENT_ID not in message.replace("mipomersen", "")


def test_a_bug_in_the_audit_never_costs_the_card(
    app: Flask, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("cards")

    monkeypatch.setattr("cds_service.records.audit.audit_record", broken)
    response = call(app.test_client(), SEVERE)
    assert response.get_json() == golden(SEVERE)
    assert state(app).audit.failures == 1
    assert "audit record not written; 1 failed since start-up" in caplog.text


def test_unreachable_postgresql_still_answers_every_call(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = {**AUTH_OFF, "DATABASE_URL": "postgresql://cds:hunter2@127.0.0.1:1/cds"}
    app = create_app(unreachable, environ={}, clock=lambda: NOW, new_id=sequential_ids())
    try:
        responses = [call(app.test_client(), SEVERE) for _ in range(2)]
    finally:
        state(app).database.close()
    assert responses[0].get_json() == golden(SEVERE)
    assert responses[1].get_json()["cards"][0]["summary"].startswith("Withhold mipomersen")
    assert state(app).audit.failures == 2
    assert "hunter2" not in caplog.text


def test_a_locked_database_delays_a_call_by_the_timeout_at_most(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app({**AUTH_OFF, "DATABASE_TIMEOUT_SECONDS": "0.2"}, environ={}, clock=lambda: NOW)
    blocker = state(app).database.engine.raw_connection()
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the lock
        started = time.perf_counter()
        response = call(app.test_client(), SEVERE)
        elapsed = time.perf_counter() - started
    finally:
        blocker.close()
        state(app).database.close()
    assert response.status_code == 200 and response.get_json()["cards"]
    assert 0.2 <= elapsed < 1.5
    assert state(app).audit.failures == 1
    assert "database is locked" in caplog.text
