"""The HTTP surface: discovery, hook calls, and a clear OperationOutcome for every bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service import create_app
from cds_service.errors import ConfigurationError
from tests.conformance import discovery_problems, response_problems
from tests.conftest import AUTH_OFF
from tests.fhir_builders import (
    PATIENT_ID,
    bundle,
    hook_request,
    medication_request,
    observation,
)
from tests.openapi_contract import assert_response_matches_openapi

SIGN = "/cds-services/mipomersen-order-sign"
DRAFT = medication_request("draft-1")
NORMAL_LABS = (
    observation("ALT", 20, "2026-11-20"),
    observation("AST", 20, "2026-11-20"),
    observation("ALP", 80, "2026-11-20"),
    observation("TBIL", 0.5, "2026-11-20"),
)


def post(client: FlaskClient, path: str, body: Any, **kwargs: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    kwargs.setdefault("content_type", "application/json")
    response = client.post(path, data=data, **kwargs)
    assert_response_matches_openapi(
        response, method="POST", path=path, request_body=data, content_type=kwargs["content_type"]
    )
    return response


def test_discovery_lists_three_conformant_services(client: FlaskClient) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    assert_response_matches_openapi(response, method="GET", path="/cds-services")
    body = response.get_json()
    assert discovery_problems(body) == []
    assert [(s["id"], s["hook"]) for s in body["services"]] == [
        ("mipomersen-order-select", "order-select"),
        ("mipomersen-order-sign", "order-sign"),
        ("mipomersen-patient-view", "patient-view"),
    ]
    labs = body["services"][0]["prefetch"]["liverLabs"]
    assert labs.startswith("Observation?patient={{context.patientId}}&code=")
    assert "http://loinc.org|1742-6" in labs and "http://loinc.org|1920-8" in labs


def test_withhold_card_is_conformant_and_deletes_the_draft(client: FlaskClient) -> None:
    labs = (observation("ALT", 236, "2026-11-20T08:00:00-05:00", high=40),) + NORMAL_LABS[1:]
    response = post(client, SIGN, hook_request(drafts=(DRAFT,), labs=labs))
    assert response.status_code == 200
    body = response.get_json()
    assert response_problems(body) == []
    (card,) = body["cards"]
    assert card["summary"] == "Withhold mipomersen: ALT 236 U/L = 5.9× ULN on 2026-11-20"
    assert card["indicator"] == "critical"
    assert card["extension"]["io.github.mipomersen-cds"]["decision"] == "withhold"
    delete = card["suggestions"][0]["actions"][0]
    assert delete == {
        "type": "delete",
        "description": delete["description"],
        "resourceId": "MedicationRequest/draft-1",
    }


def test_no_card_when_everything_is_current_and_normal(client: FlaskClient) -> None:
    response = post(client, SIGN, hook_request(drafts=(DRAFT,), labs=NORMAL_LABS))
    assert response.get_json() == {"cards": []}


def test_no_card_and_no_412_when_the_order_is_not_mipomersen(client: FlaskClient) -> None:
    statin = medication_request("statin", medication={"text": "atorvastatin 40 mg"})
    response = post(client, SIGN, hook_request(drafts=(statin,), prefetch={}))
    assert response.status_code == 200
    assert response.get_json() == {"cards": []}


def test_order_select_evaluates_only_the_selected_orders(client: FlaskClient) -> None:
    labs = (observation("ALT", 236, "2026-11-20", high=40),)
    unselected = hook_request(
        "order-select", drafts=(DRAFT,), labs=labs, selections=["ServiceRequest/other"]
    )
    assert post(client, "/cds-services/mipomersen-order-select", unselected).get_json() == {
        "cards": []
    }
    selected = hook_request("order-select", drafts=(DRAFT,), labs=labs)
    (card,) = post(client, "/cds-services/mipomersen-order-select", selected).get_json()["cards"]
    assert card["summary"].startswith("Withhold mipomersen")


def test_patient_view_needs_an_active_mipomersen_prescription(client: FlaskClient) -> None:
    labs = (observation("ALT", 236, "2026-11-20", high=40),)
    path = "/cds-services/mipomersen-patient-view"
    stopped = medication_request("old", status="stopped", authoredOn="2025-01-01")
    body = hook_request("patient-view", labs=labs, medications=(stopped,))
    assert post(client, path, body).get_json() == {"cards": []}
    active = medication_request("current", status="active", authoredOn="2026-01-01")
    body = hook_request("patient-view", labs=labs, medications=(active,))
    (card,) = post(client, path, body).get_json()["cards"]
    assert "suggestions" not in card or all(
        action["type"] != "delete" for s in card["suggestions"] for action in s["actions"]
    )


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        pytest.param(b"{not json", None, "not valid JSON", id="malformed-json"),
        pytest.param(b'{"hook": "\xff"}', None, "not valid UTF-8", id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, None, "nested too deeply", id="deep"),
        pytest.param(b'{"hook": NaN}', None, "not a JSON number", id="nan"),
        pytest.param([], None, "JSON object", id="array-body"),
        pytest.param(
            {k: v for k, v in hook_request().items() if k != "hook"},
            "hook",
            "hook is required",
            id="no-hook",
        ),
        pytest.param({**hook_request(), "hook": 7}, "hook", "non-empty string", id="hook-number"),
        pytest.param(
            {**hook_request(), "hook": "patient-view"}, "hook", "does not match", id="wrong-hook"
        ),
        pytest.param(
            {k: v for k, v in hook_request().items() if k != "hookInstance"},
            "hookInstance",
            "hookInstance is required",
            id="no-hookInstance",
        ),
        pytest.param(
            {k: v for k, v in hook_request().items() if k != "context"},
            "context",
            "context is required",
            id="no-context",
        ),
        pytest.param({**hook_request(), "context": "p1"}, "context", "object", id="context-string"),
        pytest.param(
            {**hook_request(), "context": {"userId": "Practitioner/u1", "draftOrders": bundle()}},
            "context.patientId",
            "is required",
            id="no-patientId",
        ),
        pytest.param(
            {**hook_request(), "context": {"patientId": "", "draftOrders": bundle()}},
            "context.patientId",
            "non-empty string",
            id="empty-patientId",
        ),
        pytest.param(
            {**hook_request(), "context": {"patientId": PATIENT_ID}},
            "context.draftOrders",
            "required",
            id="no-draftOrders",
        ),
        pytest.param(
            {**hook_request(), "context": {"patientId": PATIENT_ID, "draftOrders": []}},
            "context.draftOrders",
            "Bundle",
            id="draftOrders-not-bundle",
        ),
        pytest.param(
            hook_request(drafts=({**DRAFT, "subject": {"reference": "Patient/someone-else"}},)),
            "context.draftOrders.entry[0].resource.subject.reference",
            "different patient",
            id="draft-for-another-patient",
        ),
        pytest.param(
            {**hook_request(), "prefetch": []}, "prefetch", "JSON object", id="prefetch-array"
        ),
        pytest.param(
            {**hook_request(), "prefetch": {"liverLabs": {"entry": []}}},
            "prefetch.liverLabs.resourceType",
            "resourceType",
            id="prefetch-not-fhir",
        ),
        pytest.param(
            {
                **hook_request(),
                "fhirAuthorization": {
                    "access_token": "secret-token",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "patient/*.read",
                    "subject": "cds",
                },
            },
            "fhirServer",
            "required when fhirAuthorization",
            id="authorization-without-fhirServer",
        ),
    ],
)
def test_bad_requests_get_400_with_the_field_named(
    client: FlaskClient, body: Any, path: str | None, message: str
) -> None:
    response = post(client, SIGN, body)
    assert response.status_code == 400
    outcome = response.get_json()
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert message in issue["diagnostics"]
    assert issue.get("expression", [None]) == [path]
    assert "secret-token" not in response.get_data(as_text=True)


def test_every_problem_of_a_request_is_listed_in_one_operation_outcome(
    client: FlaskClient,
) -> None:
    body = {"context": {"userId": 7}, "prefetch": []}
    response = post(client, SIGN, body)
    assert response.status_code == 400
    issues = response.get_json()["issue"]
    assert [issue["expression"] for issue in issues] == [
        ["hook"],
        ["hookInstance"],
        ["context.patientId"],
        ["context.draftOrders"],
        ["context.userId"],
        ["prefetch"],
    ]
    assert all(issue["code"] == "invalid" for issue in issues)


def test_a_bundle_posted_to_a_hook_is_told_what_to_send_instead(client: FlaskClient) -> None:
    bundle_body = {"resourceType": "Bundle", "type": "collection", "entry": []}
    response = post(client, SIGN, bundle_body)
    assert response.status_code == 400
    (issue,) = response.get_json()["issue"]
    assert "is a FHIR Bundle, not a CDS Hooks request" in issue["diagnostics"]
    assert "mipomersen-cds evaluate" in issue["diagnostics"]
    assert "playground" in issue["diagnostics"]


def test_an_unknown_service_is_404_listing_the_valid_ids(client: FlaskClient) -> None:
    response = post(client, "/cds-services/mipomersen", hook_request())
    assert response.status_code == 404
    (issue,) = response.get_json()["issue"]
    for service_id in (
        "mipomersen-order-select",
        "mipomersen-order-sign",
        "mipomersen-patient-view",
    ):
        assert service_id in issue["diagnostics"]


def test_order_select_without_selections_is_400(client: FlaskClient) -> None:
    body = hook_request("order-select", drafts=(DRAFT,))
    del body["context"]["selections"]
    response = post(client, "/cds-services/mipomersen-order-select", body)
    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["context.selections"]


@pytest.mark.parametrize(
    ("prefetch", "missing"),
    [
        pytest.param({}, ["liverLabs", "medications", "conditions"], id="no-prefetch"),
        pytest.param(
            {"liverLabs": bundle(), "conditions": bundle()}, ["medications"], id="one-key-absent"
        ),
        pytest.param(
            {
                "liverLabs": {"resourceType": "OperationOutcome", "issue": []},
                "medications": bundle(),
                "conditions": bundle(),
            },
            ["liverLabs"],
            id="operation-outcome-in-place-of-data",
        ),
    ],
)
def test_missing_required_prefetch_is_412(
    client: FlaskClient, prefetch: dict[str, Any], missing: list[str]
) -> None:
    response = post(client, SIGN, hook_request(drafts=(DRAFT,), prefetch=prefetch))
    assert response.status_code == 412
    expressions = [issue["expression"][0] for issue in response.get_json()["issue"]]
    assert expressions == [f"prefetch.{key}" for key in missing]


def test_null_prefetch_means_no_data_not_missing(client: FlaskClient) -> None:
    body = hook_request(
        drafts=(DRAFT,), prefetch={"liverLabs": None, "medications": None, "conditions": None}
    )
    (card,) = post(client, SIGN, body).get_json()["cards"]
    assert card["extension"]["io.github.mipomersen-cds"]["reason"] == "baseline-missing"


def test_patient_view_without_medications_is_412(client: FlaskClient) -> None:
    body = hook_request("patient-view", prefetch={"liverLabs": bundle(), "conditions": bundle()})
    response = post(client, "/cds-services/mipomersen-patient-view", body)
    assert response.status_code == 412


def test_unknown_service_is_404(client: FlaskClient) -> None:
    response = post(client, "/cds-services/nope", hook_request())
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["code"] == "not-found"


def test_unknown_path_is_404_json(client: FlaskClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        pytest.param("GET", SIGN, "OPTIONS, POST", id="get-on-service"),
        pytest.param("POST", "/cds-services", "GET, HEAD, OPTIONS", id="post-on-discovery"),
        pytest.param("DELETE", SIGN, "OPTIONS, POST", id="delete-on-service"),
    ],
)
def test_wrong_method_is_405_with_allow(
    client: FlaskClient, method: str, path: str, allowed: str
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.get_json()["resourceType"] == "OperationOutcome"
    assert_response_matches_openapi(response, method=method, path=path)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", ""], ids=repr
)
def test_non_json_content_type_is_415(client: FlaskClient, content_type: str) -> None:
    response = client.post(SIGN, data=json.dumps(hook_request()), content_type=content_type)
    assert response.status_code == 415
    assert response.get_json()["issue"][0]["code"] == "not-supported"


def test_fhir_json_content_type_is_accepted(client: FlaskClient) -> None:
    response = post(
        client,
        SIGN,
        hook_request(drafts=(DRAFT,), labs=NORMAL_LABS),
        content_type="application/fhir+json; charset=utf-8",
    )
    assert response.status_code == 200


def test_body_over_the_limit_is_413() -> None:
    app = create_app({"MAX_BODY_BYTES": "1000", **AUTH_OFF}, environ={})
    response = app.test_client().post(
        SIGN, data=json.dumps(hook_request(labs=NORMAL_LABS * 10)), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.get_json()["issue"][0]["code"] == "too-long"


def test_unexpected_error_is_500_without_internals(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("cds_service.web.routes.answer_hook", explode)
    response = client.post(SIGN, data=json.dumps(hook_request()), content_type="application/json")
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "Traceback" not in text
    assert response.get_json()["issue"][0]["code"] == "exception"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        pytest.param({"PROFILE": "strict"}, "MIPOMERSEN_CDS_PROFILE", id="profile"),
        pytest.param({"DEFAULT_ULN_ALT": "-1"}, "MIPOMERSEN_CDS_DEFAULT_ULN_ALT", id="uln"),
        pytest.param({"MAX_BODY_BYTES": "lots"}, "MIPOMERSEN_CDS_MAX_BODY_BYTES", id="size"),
    ],
)
def test_bad_configuration_stops_start_up_naming_the_variable(
    overrides: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        create_app(overrides, environ={})


def test_environment_configures_the_profile() -> None:
    app = create_app(AUTH_OFF, environ={"MIPOMERSEN_CDS_PROFILE": "conservative"})
    labs = (observation("ALT", 130, "2026-11-20", high=40),) + NORMAL_LABS[1:]
    response = app.test_client().post(
        SIGN,
        data=json.dumps(hook_request(drafts=(DRAFT,), labs=labs)),
        content_type="application/json",
    )
    (card,) = response.get_json()["cards"]
    assert card["extension"]["io.github.mipomersen-cds"]["profile"] == "conservative"
    assert card["extension"]["io.github.mipomersen-cds"]["decision"] == "withhold"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.slow  # hypothesis, 150 requests
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mutation=st.sampled_from(
        ["hook", "hookInstance", "context", "prefetch", "draftOrders", "fhirServer"]
    ),
    value=_json_values,
)
def test_no_json_value_in_any_field_gives_a_500(
    client: FlaskClient, mutation: str, value: Any
) -> None:
    body = hook_request(drafts=(DRAFT,), labs=NORMAL_LABS)
    if mutation == "draftOrders":
        body["context"]["draftOrders"] = value
    else:
        body[mutation] = value
    response = client.post(SIGN, data=json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 400, 412), response.get_data(as_text=True)
