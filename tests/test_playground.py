"""The playground API and settings, without a browser (the browser tests are beside it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service import create_app
from cds_service.errors import ConfigurationError
from cds_service.records.storage.repository import audit_records
from cds_service.rules import RuleConfig
from cds_service.settings import load_settings
from cds_service.web.card_html import markdown_to_html
from cds_service.web.timeline import timeline_points, timeline_svg
from fhir_mappings import read_resources
from tests.conftest import AUTH_OFF, NOW
from tests.tokens import auth_settings, ec_key

ROOT = Path(__file__).parent.parent
WITHHOLD = json.loads((ROOT / "examples" / "withhold-alt-5x-uln.json").read_text())
SYNTHEA = (
    ROOT
    / "tests"
    / "data"
    / "fhir"
    / "Jordan_Cruickshank_5de38439-d320-46d3-854d-3c098e88de4c.json"
)


def evaluate(client: FlaskClient, **form: Any) -> dict[str, Any]:
    response = client.post("/playground/api/evaluate", json=form)
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


@pytest.mark.parametrize(
    ("environ", "served"),
    [
        ({"MIPOMERSEN_CDS_AUTH": "off"}, True),
        ({"MIPOMERSEN_CDS_AUTH": "off", "MIPOMERSEN_CDS_PLAYGROUND": "off"}, False),
        ({"MIPOMERSEN_CDS_AUTH": "off", "MIPOMERSEN_CDS_PLAYGROUND": "ON"}, True),
        ({}, False),
    ],
    ids=["auth-off-default-on", "auth-off-switched-off", "auth-off-on", "auth-on-default-off"],
)
def test_playground_default_follows_authentication(environ: dict[str, str], served: bool) -> None:
    assert load_settings(environ).playground is served


def test_playground_on_with_authentication_on_stops_start_up() -> None:
    with pytest.raises(ConfigurationError, match="PLAYGROUND=on needs MIPOMERSEN_CDS_AUTH=off"):
        load_settings({"MIPOMERSEN_CDS_PLAYGROUND": "on"})


def test_playground_setting_must_be_on_or_off() -> None:
    with pytest.raises(ConfigurationError, match="on or off"):
        load_settings({"MIPOMERSEN_CDS_AUTH": "off", "MIPOMERSEN_CDS_PLAYGROUND": "maybe"})


def test_a_service_with_authentication_has_no_playground_route_to_pin_time(tmp_path: Path) -> None:
    app = create_app(auth_settings(tmp_path, ec_key()), environ={})
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    assert not any(rule.startswith("/playground") for rule in rules)


def test_playground_switched_off_answers_404() -> None:
    app = create_app({**AUTH_OFF, "PLAYGROUND": "off"}, environ={})
    assert app.test_client().get("/playground").status_code == 404
    assert app.test_client().post("/playground/api/evaluate", json={}).status_code == 404


def test_the_page_allows_only_its_own_scripts_and_styles(client: FlaskClient) -> None:
    response = client.get("/playground")
    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    page = response.get_data(as_text=True)
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    for asset in ("playground.js", "playground.css"):
        served = client.get(f"/playground/static/{asset}")
        assert served.status_code == 200
        assert "https://" not in served.get_data(as_text=True)


def test_examples_are_listed_with_their_service(client: FlaskClient) -> None:
    listed = client.get("/playground/api/examples").get_json()["examples"]
    by_name = {example["name"]: example for example in listed}
    assert by_name["withhold-alt-5x-uln"]["service"] == "mipomersen-order-sign"
    assert by_name["bundle-new-order-baseline-complete"]["kind"] == "bundle"
    assert client.get("/playground/api/examples/withhold-alt-5x-uln").get_json() == WITHHOLD
    assert client.get("/playground/api/examples/no-such").status_code == 404


def test_a_pinned_time_decides_and_the_audit_record_is_named(client: FlaskClient) -> None:
    body = evaluate(client, input=WITHHOLD, now="2026-11-23T12:00:00Z")
    assert body["status"] == 200
    assert body["decision"]["kind"] == "withhold"
    assert body["decision"]["rule"] == "label-2.3-withhold-5x-uln"
    assert body["decision"]["values"][0] == {
        "role": "deciding",
        "analyte": "ALT",
        "reported": "236 U/L",
        "result": "236 U/L",
        "value": 236.0,
        "unit": "U/L",
        "uln": 40.0,
        "multiple": 5.9,
        "date": "2026-11-20",
    }
    state = client.application.extensions["mipomersen_cds"]
    with state.database.session() as session:
        records = {record.id: record for record in audit_records(session)}
    record = records[body["auditRecordId"]]
    assert record.card_uuid == body["response"]["cards"][0]["uuid"]
    assert [p["deciding"] for p in body["timeline"]["points"]].count(True) == 1


def test_a_later_pinned_time_finds_monitoring_overdue(client: FlaskClient) -> None:
    normal = json.loads(
        (ROOT / "examples" / "no-card-monitoring-current-and-normal.json").read_text()
    )
    assert evaluate(client, input=normal, now="2026-11-23T12:00:00Z")["decision"]["kind"] == "none"
    later = evaluate(client, input=normal, now="2027-06-01T12:00:00Z")
    assert later["now"] == "2027-06-01T12:00:00Z"
    assert later["decision"]["reason"] == "monitoring-overdue"


@pytest.mark.parametrize("now", ["2026-11-23", "yesterday", 5], ids=["date-only", "word", "number"])
def test_a_pinned_time_must_be_a_date_time_with_offset(client: FlaskClient, now: Any) -> None:
    response = client.post("/playground/api/evaluate", json={"input": WITHHOLD, "now": now})
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["now"]


def test_a_refused_hook_call_is_shown_with_its_operation_outcome(client: FlaskClient) -> None:
    body = evaluate(client, input=WITHHOLD, service="mipomersen-patient-view")
    assert body["status"] == 400
    assert body["response"]["resourceType"] == "OperationOutcome"


def test_a_bundle_without_a_patient_is_a_400_naming_the_input(client: FlaskClient) -> None:
    response = client.post(
        "/playground/api/evaluate",
        json={"input": {"resourceType": "Bundle", "type": "collection", "entry": []}},
    )
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["input"]


@pytest.mark.parametrize(
    ("form", "path"),
    [
        ({"input": []}, "input"),
        ({"input": {"hook": "nope"}}, "service"),
        ({"input": WITHHOLD, "service": "no-such-service"}, "service"),
    ],
    ids=["not-an-object", "unknown-hook", "unknown-service"],
)
def test_unusable_playground_forms_are_400(
    client: FlaskClient, form: dict[str, Any], path: str
) -> None:
    response = client.post("/playground/api/evaluate", json=form)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == [path]


def test_a_synthea_bundle_with_a_draft_order_is_evaluated_as_order_sign(
    client: FlaskClient,
) -> None:
    synthea = json.loads(SYNTHEA.read_text())
    without = evaluate(client, input=synthea, now="2026-11-23T12:00:00Z")
    assert without["request"]["hook"] == "patient-view"
    assert without["decision"]["kind"] is None  # not on mipomersen
    body = evaluate(client, input=synthea, addDraftOrder=True, now="2017-06-25T12:00:00Z")
    assert body["request"]["hook"] == "order-sign"
    assert body["decision"]["reason"] == "confirm-transaminase-3x-uln"
    assert len(body["timeline"]["points"]) >= 2


def test_script_in_card_markdown_is_escaped() -> None:
    html = markdown_to_html(
        "Order: <img src=x onerror=alert(1)> [x](javascript:alert(1)) [label](https://example.org)"
    )
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="javascript' not in html
    assert '<a href="https://example.org" target="_blank" rel="noopener noreferrer">' in html


def test_a_medication_text_with_markup_reaches_the_page_escaped(client: FlaskClient) -> None:
    request = json.loads(json.dumps(WITHHOLD))
    draft = request["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"]["text"] = "<script>alert(1)</script> Kynamro"
    body = evaluate(client, input=request, now="2026-11-23T12:00:00Z")
    detail = body["cards"][0]["detailHtml"]
    assert "<script>" not in detail and "&lt;script&gt;" in detail


def test_the_timeline_marks_the_deciding_result_and_escapes_its_text() -> None:
    items = read_resources(WITHHOLD["prefetch"]["liverLabs"], "prefetch.liverLabs")
    points = timeline_points(items, rules=RuleConfig(), evaluation=None)
    assert {point.analyte.value for point in points} >= {"ALT", "AST", "total bilirubin"}
    svg = timeline_svg(points)
    assert svg.startswith("<svg") and svg.count('class="point"') == len(points)
    assert "3× ULN" in svg and "5× ULN" in svg
    assert "data-deciding" not in svg  # no evaluation, nothing decided


def test_an_empty_timeline_says_so() -> None:
    assert "No ALT, AST or total bilirubin results" in timeline_svg([])


def test_the_clock_is_the_servers_when_nothing_is_pinned(client: FlaskClient) -> None:
    body = evaluate(client, input=WITHHOLD)
    assert body["now"] == NOW.isoformat().replace("+00:00", "Z")


def test_without_chromium_the_browser_tests_say_why_they_are_skipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests import browser

    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")
    reason = browser.why_no_browser()
    assert reason is not None and "Chromium is not installed" in reason


def test_a_hook_request_meets_the_apis_limits_in_the_playground(client: FlaskClient) -> None:
    request = json.loads(json.dumps(WITHHOLD))
    labs = request["prefetch"]["liverLabs"]
    labs["entry"] = labs["entry"] * (1001 // len(labs["entry"]) + 1)
    body = evaluate(client, input=request, now="2026-11-23T12:00:00Z")
    api = client.post("/cds-services/mipomersen-order-sign", json=request)
    assert body["status"] == api.status_code == 400
    assert body["response"] == api.get_json()
