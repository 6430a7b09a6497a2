"""Fetching what the prefetch lacks from the EHR's FHIR server (mocked with `responses`).

One row per situation of CDS Hooks 2.0.1 § Prefetch: absent, partial, null, OperationOutcome and
paged keys; each failure of the server; retries; and the token going nowhere but fhirServer.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from flask import Flask

from cds_service import create_app
from cds_service.errors import FhirFetchError
from cds_service.hooks.fhir_client import _REQUESTS_ERRORS, map_requests_error
from tests.conftest import AUTH_OFF, NOW, sequential_ids

BASE = "https://ehr.example.org/fhir"
TOKEN = "ehr-access-token-7f3a"
EXAMPLE = json.loads(
    (Path(__file__).parent.parent / "examples" / "withhold-alt-5x-uln.json").read_text()
)
SIGN = "/cds-services/mipomersen-order-sign"
PATIENT_URL = f"{BASE}/Patient/pat-1001"
SEARCH_URLS = {
    "liverLabs": f"{BASE}/Observation",
    "medications": f"{BASE}/MedicationRequest",
    "conditions": f"{BASE}/Condition",
}


def make_app(**overrides: str) -> Flask:
    settings = {**AUTH_OFF, "FHIR_BACKOFF_SECONDS": "0.001", **overrides}
    return create_app(settings, environ={}, clock=lambda: NOW, new_id=sequential_ids())


def request_without(*keys: str, authorize: bool = True, **changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    for key in keys:
        del body["prefetch"][key]
    body["fhirServer"] = BASE
    if authorize:
        body["fhirAuthorization"] = {
            "access_token": TOKEN,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/Observation.read patient/MedicationRequest.read",
            "subject": "mipomersen-cds",
            "patient": "pat-1001",
        }
    body.update(changes)
    return body


def serve_everything(mock: responses.RequestsMock) -> None:
    """Serve the example's prefetch data as the EHR's FHIR server would."""
    mock.get(PATIENT_URL, json=EXAMPLE["prefetch"]["patient"])
    for key, url in SEARCH_URLS.items():
        mock.get(url, json=EXAMPLE["prefetch"][key])


def call(app: Flask, body: dict[str, Any]) -> Any:
    return app.test_client().post(SIGN, data=json.dumps(body), content_type="application/json")


def expected_body() -> Any:
    return call(make_app(), copy.deepcopy(EXAMPLE)).get_json()


@responses.activate
def test_no_prefetch_at_all_gives_the_same_card_as_full_prefetch() -> None:
    serve_everything(responses.mock)
    response = call(
        make_app(), request_without("patient", "liverLabs", "medications", "conditions")
    )
    assert response.status_code == 200
    assert response.get_json() == expected_body()
    fetched = sorted(call.request.url.split("?")[0] for call in responses.calls)
    assert fetched == sorted([PATIENT_URL, *SEARCH_URLS.values()])


@responses.activate
def test_templates_are_rendered_for_the_patient_in_context() -> None:
    serve_everything(responses.mock)
    call(make_app(), request_without("liverLabs", "conditions"))
    urls = sorted(requests.utils.unquote(call.request.url) for call in responses.calls)
    assert urls[0] == f"{BASE}/Condition?patient=pat-1001"
    assert urls[1].startswith(f"{BASE}/Observation?patient=pat-1001&code=http://loinc.org|1742-6,")
    assert urls[1].endswith("&_sort=-date&_count=500")


@responses.activate
def test_only_the_absent_key_is_fetched_and_sent_data_never_again() -> None:
    serve_everything(responses.mock)
    response = call(make_app(), request_without("conditions"))
    assert response.get_json() == expected_body()
    assert [call.request.url for call in responses.calls] == [
        f"{SEARCH_URLS['conditions']}?patient=pat-1001"
    ]


@responses.activate
def test_null_means_no_data_and_is_not_fetched() -> None:
    body = request_without()
    body["prefetch"]["conditions"] = None
    assert call(make_app(), body).status_code == 200
    assert len(responses.calls) == 0


@responses.activate
def test_operation_outcome_in_place_of_a_key_is_fetched() -> None:
    serve_everything(responses.mock)
    body = request_without()
    body["prefetch"]["liverLabs"] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "too-costly"}],
    }
    assert call(make_app(), body).get_json() == expected_body()
    assert [c.request.url.split("?")[0] for c in responses.calls] == [SEARCH_URLS["liverLabs"]]


def paged_labs(next_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split the example's lab Bundle in two pages, the first pointing at `next_url`."""
    labs = EXAMPLE["prefetch"]["liverLabs"]
    first = {**labs, "entry": labs["entry"][:2], "link": [{"relation": "next", "url": next_url}]}
    second = {**labs, "entry": labs["entry"][2:]}
    return first, second


@responses.activate
def test_a_paged_prefetch_is_completed_from_its_next_link() -> None:
    first, second = paged_labs(f"{BASE}/Observation?page=2")
    responses.get(f"{BASE}/Observation", json=second)
    body = request_without()
    body["prefetch"]["liverLabs"] = first
    assert call(make_app(), body).get_json() == expected_body()
    assert [c.request.url for c in responses.calls] == [f"{BASE}/Observation?page=2"]


@responses.activate
def test_a_next_link_to_another_server_is_not_followed_and_said_on_the_card() -> None:
    first, _ = paged_labs("https://elsewhere.example.com/fhir/Observation?page=2")
    body = request_without()
    body["prefetch"]["liverLabs"] = first
    (card,) = call(make_app(), body).get_json()["cards"]
    assert len(responses.calls) == 0
    assert "a next link to another server was not followed" in card["detail"]


@responses.activate
def test_the_page_limit_is_said_on_the_card() -> None:
    first, second = paged_labs(f"{BASE}/Observation?page=2")
    second = {**second, "link": [{"relation": "next", "url": f"{BASE}/Observation?page=3"}]}
    responses.get(f"{BASE}/Observation", json=second)
    body = request_without()
    body["prefetch"]["liverLabs"] = first
    (card,) = call(make_app(FHIR_MAX_PAGES="2"), body).get_json()["cards"]
    assert "stopped after 2 pages (MIPOMERSEN\\_CDS\\_FHIR\\_MAX\\_PAGES)" in card["detail"]
    assert len(responses.calls) == 1


@responses.activate
def test_the_resource_limit_is_said_on_the_card() -> None:
    serve_everything(responses.mock)
    (card,) = call(make_app(FHIR_MAX_RESOURCES="3"), request_without("liverLabs")).get_json()[
        "cards"
    ]
    assert "stopped at 3 resources" in card["detail"]


@pytest.mark.parametrize(
    ("reply", "cause"),
    [
        pytest.param({"status": 401}, "access token was refused (401)", id="401"),
        pytest.param({"status": 403}, "does not allow this query (403)", id="403"),
        pytest.param({"status": 404}, "does not know this resource or query (404)", id="404"),
        pytest.param({"status": 500}, "failed (500)", id="500"),
        pytest.param({"status": 503}, "failed (503)", id="503-after-retries"),
        pytest.param(
            {"status": 302, "headers": {"Location": "https://elsewhere.example.com/"}},
            "redirects are not followed",
            id="redirect",
        ),
        pytest.param({"body": "<html>login</html>"}, "not JSON", id="html-not-json"),
        pytest.param({"json": [1, 2]}, "not a JSON object", id="json-array"),
        pytest.param(
            {"json": {"resourceType": "Patient", "id": "x"}}, "not a Bundle", id="wrong-type"
        ),
        pytest.param(
            {"json": {"resourceType": "Bundle", "entry": "x"}}, "not valid", id="broken-bundle"
        ),
        pytest.param(
            {"body": requests.exceptions.ConnectionError("refused")},
            "could not connect",
            id="connection-refused",
        ),
        pytest.param(
            {"body": requests.exceptions.ReadTimeout("slow")}, "did not answer", id="read-timeout"
        ),
    ],
)
@responses.activate
def test_a_required_key_that_cannot_be_fetched_gives_412_naming_key_and_cause(
    reply: dict[str, Any], cause: str
) -> None:
    responses.add(responses.GET, SEARCH_URLS["liverLabs"], **reply)
    response = call(make_app(), request_without("liverLabs"))
    assert response.status_code == 412
    (issue,) = response.get_json()["issue"]
    assert issue["expression"] == ["prefetch.liverLabs"]
    assert cause in issue["diagnostics"]
    assert TOKEN not in response.get_data(as_text=True)


def _with_alt_literal(text: str, literal: str) -> str:
    """`text` with the ALT of 236 U/L written as `literal`, which `json.dumps` never writes."""
    assert text.count('"value": 236') == 1
    return text.replace('"value": 236', f'"value": {literal}')


def _labs_at_one_place(answer: Any) -> str:
    """The answer as JSON text, the place of the lab Bundle's results written alike wherever
    they came from (the prefetch, or the first page fetched; also as Markdown escapes it)."""
    text = json.dumps(answer)
    for place in ("prefetch.liverLabs.", "fhirServer.liverLabs.page[0].",
                  "fhirServer.liverLabs.page\\\\[0\\\\]."):  # fmt: skip
        text = text.replace(place, "LABS.")
    return text


# A FHIR server's answer is read as a request body is: a number no double holds is no finite
# number, so the ALT holding one is unusable and the card says so (a 400-digit integer was a
# 500, a 5,000-digit one "not JSON").
@pytest.mark.parametrize(
    "literal",
    ["1" + "0" * 400, "-" + "9" * 5001, "1e999"],
    ids=["400-digits", "5001-digits", "1e999"],
)
@responses.activate
def test_a_number_no_double_holds_from_the_server_reads_as_in_the_prefetch(literal: str) -> None:
    labs = _with_alt_literal(json.dumps(EXAMPLE["prefetch"]["liverLabs"]), literal)
    responses.get(SEARCH_URLS["liverLabs"], body=labs, content_type="application/fhir+json")
    fetched = call(make_app(), request_without("liverLabs"))
    sent_body = _with_alt_literal(json.dumps(EXAMPLE), literal)
    sent = make_app().test_client().post(SIGN, data=sent_body, content_type="application/json")
    assert fetched.status_code == sent.status_code == 200
    assert _labs_at_one_place(fetched.get_json()) == _labs_at_one_place(sent.get_json())
    (card,) = fetched.get_json()["cards"]
    assert "page\\[0\\].entry\\[0\\].resource.valueQuantity.value" in card["detail"]
    assert "latest ALT is unusable" in card["detail"]


@responses.activate
def test_a_response_larger_than_the_limit_is_refused() -> None:
    responses.get(SEARCH_URLS["liverLabs"], json=EXAMPLE["prefetch"]["liverLabs"])
    response = call(make_app(FHIR_MAX_RESPONSE_BYTES="500"), request_without("liverLabs"))
    assert response.status_code == 412
    assert "larger than 500 bytes" in response.get_json()["issue"][0]["diagnostics"]


@responses.activate
def test_optional_patient_that_fails_is_noted_on_the_card() -> None:
    responses.get(PATIENT_URL, status=404)
    response = call(make_app(), request_without("patient"))
    assert response.status_code == 200
    (card,) = response.get_json()["cards"]
    assert "patient could not be obtained" in card["detail"]


@responses.activate
def test_retries_after_503_and_a_connection_error_then_succeeds() -> None:
    responses.get(SEARCH_URLS["liverLabs"], status=503)
    responses.get(SEARCH_URLS["liverLabs"], body=requests.exceptions.ConnectionError("reset"))
    responses.get(SEARCH_URLS["liverLabs"], json=EXAMPLE["prefetch"]["liverLabs"])
    response = call(make_app(), request_without("liverLabs"))
    assert response.get_json() == expected_body()
    assert len(responses.calls) == 3


@responses.activate
def test_no_retry_on_404_or_401() -> None:
    responses.get(SEARCH_URLS["liverLabs"], status=401)
    assert call(make_app(), request_without("liverLabs")).status_code == 412
    assert len(responses.calls) == 1


@responses.activate
def test_retry_after_beyond_the_deadline_is_not_waited_for() -> None:
    responses.get(SEARCH_URLS["liverLabs"], status=503, headers={"Retry-After": "30"})
    response = call(make_app(), request_without("liverLabs"))
    assert response.status_code == 412
    assert len(responses.calls) == 1


@responses.activate
def test_the_token_goes_only_to_fhir_server_and_nowhere_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = paged_labs(f"{BASE}/Observation?page=2")
    responses.get(f"{BASE}/Observation", json=second)
    responses.get(f"{BASE}/Condition", json=EXAMPLE["prefetch"]["conditions"])
    body = request_without("conditions")
    body["prefetch"]["liverLabs"] = first
    response = call(make_app(), body)
    assert response.status_code == 200
    for sent in responses.calls:
        assert sent.request.url.startswith(BASE + "/")
        assert sent.request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert sent.request.headers["Accept"] == "application/fhir+json"
    assert TOKEN not in response.get_data(as_text=True)
    assert TOKEN not in caplog.text


@responses.activate
def test_without_fhir_authorization_no_authorization_header_is_sent() -> None:
    serve_everything(responses.mock)
    call(make_app(), request_without("conditions", authorize=False))
    assert "Authorization" not in responses.calls[0].request.headers


@pytest.mark.parametrize(
    ("overrides", "server", "cause"),
    [
        pytest.param({}, "http://ehr.example.org/fhir", "must use https", id="plain-http"),
        pytest.param(
            {"FHIR_SERVER_ALLOWLIST": "https://other.example.org/fhir"},
            BASE,
            "not in MIPOMERSEN_CDS_FHIR_SERVER_ALLOWLIST",
            id="not-allowlisted",
        ),
        pytest.param({}, "ftp://ehr.example.org/fhir", "not an http(s) URL", id="ftp"),
    ],
)
@responses.activate
def test_fhir_servers_the_service_may_not_call_give_412(
    overrides: dict[str, str], server: str, cause: str
) -> None:
    response = call(make_app(**overrides), request_without("liverLabs", fhirServer=server))
    assert response.status_code == 412
    assert cause in response.get_json()["issue"][0]["diagnostics"]
    assert len(responses.calls) == 0


@responses.activate
def test_allowlisted_server_and_allowed_http_are_fetched() -> None:
    responses.get("http://localhost:8081/fhir/Condition", json=EXAMPLE["prefetch"]["conditions"])
    app = make_app(
        ALLOW_HTTP_FHIR_SERVER="true", FHIR_SERVER_ALLOWLIST="http://localhost:8081/fhir/"
    )
    body = request_without("conditions", fhirServer="http://localhost:8081/fhir")
    assert call(app, body).status_code == 200


def test_missing_data_without_fhir_server_names_the_reason() -> None:
    body = request_without("medications")
    del body["fhirServer"], body["fhirAuthorization"]
    response = call(make_app(), body)
    assert response.status_code == 412
    assert "no fhirServer" in response.get_json()["issue"][0]["diagnostics"]


@responses.activate
def test_patient_view_fetches_the_rest_only_for_a_patient_on_mipomersen() -> None:
    responses.get(SEARCH_URLS["medications"], json={"resourceType": "Bundle", "type": "searchset"})
    body = request_without("liverLabs", "medications", "conditions", "patient")
    body["hook"] = "patient-view"
    del body["context"]["draftOrders"]
    response = (
        make_app()
        .test_client()
        .post(
            "/cds-services/mipomersen-patient-view",
            data=json.dumps(body),
            content_type="application/json",
        )
    )
    assert response.get_json() == {"cards": []}
    assert [c.request.url.split("?")[0] for c in responses.calls] == [SEARCH_URLS["medications"]]


@responses.activate
def test_order_hook_for_another_drug_fetches_nothing() -> None:
    body = request_without("liverLabs", "medications", "conditions", "patient")
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {"text": "atorvastatin 40 mg"}
    assert call(make_app(), body).get_json() == {"cards": []}
    assert len(responses.calls) == 0


def _all_subclasses(kind: type) -> set[type]:
    found = set(kind.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


@pytest.mark.parametrize(
    "kind",
    sorted(_all_subclasses(requests.RequestException), key=lambda k: k.__name__),
    ids=lambda kind: kind.__name__,
)
def test_every_requests_exception_maps_to_a_specific_error_of_ours(kind: type) -> None:
    try:
        error = kind("boom")
    except TypeError:  # requests' JSONDecodeError takes json.JSONDecodeError's arguments
        error = kind("boom", "{", 0)
    mapped = map_requests_error(error)
    assert isinstance(mapped, FhirFetchError)
    specific = [row for row, _ in _REQUESTS_ERRORS[:-1] if isinstance(error, row)]
    assert specific, f"{kind.__name__} falls through to the generic row"
    assert "boom" not in str(mapped)
