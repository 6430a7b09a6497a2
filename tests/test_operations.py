"""/healthz, /readyz and /metrics: no CDS Hooks JWT needed; metrics only with their own token."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import responses
from flask import Flask

from cds_service import create_app
from cds_service.records.storage import Database
from cds_service.web.readiness import database_check
from cds_service.web.state import EXTENSION_NAME
from tests.conftest import AUTH_OFF, NOW, free_port, sequential_ids
from tests.fhir_builders import hook_request, medication_request, observation
from tests.openapi_contract import assert_response_matches_openapi
from tests.tokens import auth_settings, ec_key

METRICS_TOKEN = "m3tr1cs-t0ken-for-tests-0123456789"
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}
SIGN = "/cds-services/mipomersen-order-sign"
SEVERE = hook_request(
    drafts=(medication_request("d1"),), labs=(observation("ALT", 236, "2026-11-20", high=40),)
)


def make_app(**overrides: str) -> Flask:
    return create_app(
        {**AUTH_OFF, **overrides}, environ={}, clock=lambda: NOW, new_id=sequential_ids()
    )


def test_liveness_needs_no_jwt_even_with_auth_required(tmp_path: Path) -> None:
    app = create_app(auth_settings(tmp_path, ec_key()), environ={})
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert_response_matches_openapi(response, method="GET", path="/healthz")
    assert app.test_client().get("/cds-services").status_code == 401  # the rest still needs one


def test_readiness_reports_the_database() -> None:
    response = make_app().test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ready",
        "checks": {
            "configuration": "ok",
            "database": "ok",
            "replay_store": "not used",  # authentication off
            "metrics_directory": "not used",  # one process: metrics in memory
        },
    }
    assert_response_matches_openapi(response, method="GET", path="/readyz")


def test_not_ready_when_the_database_is_unreachable() -> None:
    app = make_app(DATABASE_URL="postgresql://cds@127.0.0.1:1/cds", DATABASE_TIMEOUT_SECONDS="0.5")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "unreachable"
    assert response.get_json()["failed"] == ["database"]
    assert_response_matches_openapi(response, method="GET", path="/readyz")


def test_metrics_are_off_without_a_token() -> None:
    response = make_app().test_client().get("/metrics", headers=SCRAPE)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": METRICS_TOKEN}],
    ids=["none", "wrong", "not-bearer"],
)
def test_metrics_need_their_token(headers: dict[str, str]) -> None:
    response = make_app(METRICS_TOKEN=METRICS_TOKEN).test_client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert METRICS_TOKEN not in response.get_data(as_text=True)


def _sample(text: str, name: str, **labels: str) -> float:
    """Return the value of one sample of the Prometheus text format."""
    matches = []
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        metric, _, label_text = sample.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if metric == name and found == labels:
            matches.append(float(value))
    (only,) = matches
    return only


@responses.activate
def test_metrics_count_hook_calls_decisions_412s_fetches_and_auth_failures() -> None:
    app = make_app(METRICS_TOKEN=METRICS_TOKEN)
    client = app.test_client()
    for _ in range(2):
        client.post(SIGN, data=json.dumps(SEVERE), content_type="application/json")
    missing = {**SEVERE, "prefetch": {}}
    client.post(SIGN, data=json.dumps(missing), content_type="application/json")
    responses.get("https://ehr.example.org/fhir/Condition", status=503)
    fetching = {**SEVERE, "fhirServer": "https://ehr.example.org/fhir"}
    fetching["prefetch"] = {k: v for k, v in SEVERE["prefetch"].items() if k != "conditions"}
    client.post(SIGN, data=json.dumps(fetching), content_type="application/json")
    client.post("/cds-services/no-such-service", json={})
    client.get("/metrics")  # refused: counted as an authentication failure
    response = client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    service = "mipomersen-order-sign"
    assert (
        _sample(text, "mipomersen_cds_decisions_total", service=service, decision="withhold") == 2
    )
    assert _sample(text, "mipomersen_cds_precondition_failed_total", service=service) == 2
    assert _sample(text, "mipomersen_cds_hook_duration_seconds_count", service=service) == 4
    assert _sample(text, "mipomersen_cds_fhir_fetch_failures_total", key="conditions") == 1
    assert _sample(text, "mipomersen_cds_fhir_fetch_duration_seconds_count", key="conditions") == 1
    assert _sample(text, "mipomersen_cds_auth_failures_total") == 1
    assert "no-such-service" not in text  # unknown ids never become label values


def test_an_audit_write_failure_is_counted() -> None:
    app = make_app(METRICS_TOKEN=METRICS_TOKEN)
    state = app.extensions[EXTENSION_NAME]
    state.database.engine.dispose()
    with state.database.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE audit_record")
    client = app.test_client()
    assert (
        client.post(SIGN, data=json.dumps(SEVERE), content_type="application/json").status_code
        == 200
    )
    text = client.get("/metrics", headers=SCRAPE).get_data(as_text=True)
    assert _sample(text, "mipomersen_cds_audit_write_failures_total") == 1


def test_a_read_only_sqlite_database_is_named_read_only(tmp_path: Path) -> None:
    make_app(DATA_DIR=str(tmp_path / "data")).extensions[EXTENSION_NAME].database.close()
    path = tmp_path / "data" / "mipomersen-cds.sqlite3"
    # Opened read-only (as on a read-only mount); chmod would not stop root.
    with Database(f"sqlite:///file:{path}?mode=ro&uri=true", timeout_seconds=1) as database:
        assert database_check(database) == "read-only"
    with Database(f"sqlite:///{path}", timeout_seconds=1) as database:
        assert database_check(database) == "ok"


def test_not_ready_names_an_unreachable_replay_store_and_a_missing_metrics_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = {
        **auth_settings(tmp_path, ec_key()),
        "REPLAY_STORE": f"redis://127.0.0.1:{free_port()}/0",
    }
    app = create_app(overrides, environ={})
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "gone"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["replay_store"] == "unreachable"
    assert body["checks"]["metrics_directory"] == "missing"
    assert body["failed"] == ["replay_store", "metrics_directory"]
    assert_response_matches_openapi(response, method="GET", path="/readyz")


def test_not_ready_when_a_disk_is_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(auth_settings(tmp_path, ec_key()), environ={})
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr("cds_service.disk.MIN_FREE_BYTES", 2**62)  # no disk has that much
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {
        "configuration": "ok",
        "database": "disk full",
        "replay_store": "disk full",
        "metrics_directory": "disk full",
    }
