"""Policy 15: only this patient's record decides; another patient's data is refused, never used.

One row per way a resource can name its patient (FHIR R4 §2.3.0 References): relative,
absolute on the `fhirServer` base, `urn:uuid:` through a Bundle entry's `fullUrl`, and the ways
it can fail to (another patient, another server, a Group, no subject, an unresolvable reference).
A resource of another patient is refused with 400 naming it; one that names nobody is left out
and named on the card; neither is ever used.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cds_service import create_app
from cds_service.records.storage import AuditRecord
from tests.conftest import AUTH_OFF, NOW, sequential_ids
from tests.databases import state
from tests.fhir_builders import (
    PATIENT_ID,
    bundle,
    condition,
    hook_request,
    medication_request,
    observation,
)

SIGN = "/cds-services/mipomersen-order-sign"
VIEW = "/cds-services/mipomersen-patient-view"
BASE = "https://ehr.example.org/fhir"
PATIENT_URN = "urn:uuid:7b1e6c52-3f0c-4a8e-9d0c-1f2e3d4c5b6a"
NORMAL = (
    observation("AST", 30, "2026-11-20"),
    observation("ALP", 80, "2026-11-20"),
    observation("TBIL", 0.5, "2026-11-20"),
)
DRAFT = medication_request("draft-1")


def alt_900(subject: dict[str, Any] | None) -> dict[str, Any]:
    """Return ALT 900 U/L (22.5× ULN) naming `subject` (None: no subject at all)."""
    resource = observation("ALT", 900, "2026-11-20")
    if subject is None:
        del resource["subject"]
    else:
        resource["subject"] = subject
    return resource


def sign_request(lab: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = hook_request(drafts=(DRAFT,), labs=(lab, *NORMAL))
    body["prefetch"]["patient"] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": PATIENT_URN, "resource": {"resourceType": "Patient", "id": PATIENT_ID}},
        ],
    }
    body.update(changes)
    return body


def post(client: FlaskClient, body: Any, path: str = SIGN) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def decision(response: Any) -> str:
    cards = response.get_json()["cards"]
    return cards[0]["extension"]["io.github.mipomersen-cds"]["decision"] if cards else "none"


LAB_PATH = "prefetch.liverLabs.entry[0].resource.subject"


@pytest.mark.parametrize(
    ("subject", "changes", "expected_decision"),
    [
        pytest.param({"reference": f"Patient/{PATIENT_ID}"}, {}, "withhold", id="relative"),
        pytest.param(
            {"reference": f"Patient/{PATIENT_ID}/_history/3"}, {}, "withhold", id="versioned"
        ),
        pytest.param(
            {"reference": f"{BASE}/Patient/{PATIENT_ID}"},
            {"fhirServer": BASE},
            "withhold",
            id="absolute-on-fhirServer-base",
        ),
        pytest.param(
            {"reference": f"{BASE}/Patient/{PATIENT_ID}"},
            {},
            "withhold",
            id="absolute-without-fhirServer",
        ),
        pytest.param({"reference": PATIENT_URN}, {}, "withhold", id="urn-uuid-of-this-patient"),
    ],
)
def test_a_reference_to_this_patient_is_used(
    client: FlaskClient, subject: dict[str, Any], changes: dict[str, Any], expected_decision: str
) -> None:
    response = post(client, sign_request(alt_900(subject), **changes))

    assert response.status_code == 200
    assert decision(response) == expected_decision
    assert "ALT 900 U/L" in response.get_json()["cards"][0]["summary"]


@pytest.mark.parametrize(
    ("subject", "changes", "message"),
    [
        pytest.param(
            {"reference": "Patient/someone-else"}, {}, "different patient", id="other-patient"
        ),
        pytest.param(
            {"reference": "https://other-ehr.example.org/fhir/Patient/p1"},
            {"fhirServer": BASE},
            "another server",
            id="absolute-on-another-server",
        ),
        pytest.param(
            {"reference": "Group/g1"}, {}, "something other than a Patient", id="group-subject"
        ),
    ],
)
def test_another_patients_result_is_refused_naming_it(
    client: FlaskClient, subject: dict[str, Any], changes: dict[str, Any], message: str
) -> None:
    response = post(client, sign_request(alt_900(subject), **changes))

    assert response.status_code == 400
    (issue,) = response.get_json()["issue"]
    assert issue["expression"] == [f"{LAB_PATH}.reference"]
    assert message in issue["diagnostics"]
    assert "someone-else" not in issue["diagnostics"]  # never echo another patient's id


@pytest.mark.parametrize(
    ("subject", "path", "why"),
    [
        pytest.param(None, LAB_PATH, "has no subject", id="no-subject"),
        pytest.param(
            {"display": "Jane Doe"}, LAB_PATH, "subject has no reference", id="display-only"
        ),
        pytest.param(
            {"reference": "urn:uuid:00000000-0000-4000-8000-00000000dead"},
            f"{LAB_PATH}.reference",
            "refers to no Patient entry",
            id="urn-uuid-unresolvable",
        ),
    ],
)
def test_a_result_naming_no_patient_is_left_out_and_named(
    client: FlaskClient, subject: dict[str, Any] | None, path: str, why: str
) -> None:
    response = post(client, sign_request(alt_900(subject)))

    assert response.status_code == 200
    (card,) = response.get_json()["cards"]
    assert decision(response) == "repeat-test"  # the only ALT is unusable, never assumed normal
    assert "900" not in card["summary"]
    assert why in card["detail"]


def test_another_patients_cirrhosis_is_refused(client: FlaskClient) -> None:
    cirrhosis = {**condition("19943007"), "subject": {"reference": "Patient/someone-else"}}
    body = hook_request(drafts=(DRAFT,), labs=NORMAL, conditions=(cirrhosis,))

    response = post(client, body)

    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == [
        "prefetch.conditions.entry[0].resource.subject.reference"
    ]


def test_another_patients_mipomersen_course_is_refused_on_patient_view(
    client: FlaskClient,
) -> None:
    course = {
        **medication_request("mr-1", status="active", authoredOn="2026-06-01"),
        "subject": {"reference": "Patient/someone-else"},
    }
    body = hook_request("patient-view", labs=NORMAL, medications=(course,))

    response = post(client, body, VIEW)

    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == [
        "prefetch.medications.entry[0].resource.subject.reference"
    ]


def test_another_patients_patient_resource_is_refused(client: FlaskClient) -> None:
    body = hook_request(drafts=(DRAFT,), labs=NORMAL)
    body["prefetch"]["patient"] = {"resourceType": "Patient", "id": "someone-else"}

    response = post(client, body)

    assert response.status_code == 400
    assert response.get_json()["issue"][0]["expression"] == ["prefetch.patient.id"]


def test_a_draft_order_without_subject_belongs_to_the_patient_in_context(
    client: FlaskClient,
) -> None:
    draft = {key: value for key, value in DRAFT.items() if key != "subject"}
    body = hook_request(drafts=(draft,), labs=(alt_900({"reference": f"Patient/{PATIENT_ID}"}),))

    response = post(client, body)

    assert decision(response) == "withhold"
    assert (
        "context.draftOrders.entry[0].resource.subject" in response.get_json()["cards"][0]["detail"]
    )  # MedicationRequest.subject is required: the card names it, the order still counts


@responses.activate
def test_another_patients_result_from_the_fhir_server_gives_412() -> None:
    app = create_app(AUTH_OFF, environ={}, clock=lambda: NOW, new_id=sequential_ids())
    body = hook_request(drafts=(DRAFT,))
    del body["prefetch"]["liverLabs"]
    body["fhirServer"] = BASE
    foreign = alt_900({"reference": "Patient/someone-else"})
    responses.get(f"{BASE}/Observation", json=bundle(foreign, *NORMAL))

    response = post(app.test_client(), body)

    assert response.status_code == 412
    (issue,) = response.get_json()["issue"]
    assert issue["expression"] == ["prefetch.liverLabs"]
    assert "another patient" in issue["diagnostics"]


def test_the_audit_record_names_what_was_refused_and_what_was_left_out(app: Flask) -> None:
    client = app.test_client()
    post(client, sign_request(alt_900({"reference": "Patient/someone-else"})))
    post(client, sign_request(alt_900(None)))

    with state(app).database.session() as session:
        refused, answered = session.scalars(select(AuditRecord).order_by(AuditRecord.id))
    assert refused.status == 400
    assert refused.issues == [{"code": "invalid", "expression": [f"{LAB_PATH}.reference"]}]
    assert answered.status == 200
    assert {"role": "excluded", "type": "Observation", "id": ALT_ID_OF(answered)} in (
        answered.resources
    )


def ALT_ID_OF(record: AuditRecord) -> str:  # noqa: N802 - reads as the row's column
    return next(r["id"] for r in record.resources if r["role"] == "excluded")


# --- property: moving a resource to another patient never changes the decision, or refuses ---

LABS = st.lists(
    st.tuples(
        st.sampled_from(["ALT", "AST", "TBIL", "ALP"]),
        st.integers(min_value=5, max_value=400),
        st.integers(min_value=0, max_value=40),
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.slow  # hypothesis, 40 requests
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(labs=LABS, data=st.data())
def test_moving_any_resource_to_another_patient_never_changes_the_decision_except_to_refuse(
    client: FlaskClient, labs: list[tuple[str, int, int]], data: st.DataObject
) -> None:
    observations = [
        observation(test, value, f"2026-11-{23 - days % 23:02d}") for test, value, days in labs
    ]
    encounter = {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
    }
    body = hook_request(
        drafts=(DRAFT,),
        labs=(*observations, encounter),
        medications=(medication_request("mr-0", status="completed", authoredOn="2025-01-01"),),
        conditions=(condition("19943007"),),
    )
    places = [("liverLabs", index) for index in range(len(observations) + 1)] + [
        ("medications", 0),
        ("conditions", 0),
    ]
    key, index = data.draw(st.sampled_from(places))
    moved_body = copy.deepcopy(body)
    moved_body["prefetch"][key]["entry"][index]["resource"]["subject"] = {
        "reference": data.draw(st.sampled_from(["Patient/someone-else", "Group/g1"]))
    }

    before, after = post(client, body), post(client, moved_body)

    assert before.status_code == 200
    if after.status_code != 400:
        assert what_it_says(after) == what_it_says(before)


def what_it_says(response: Any) -> list[tuple[str, str, Any]]:
    """Return each card's words and decision, without its per-call uuids."""
    return [(c["summary"], c["detail"], c["extension"]) for c in response.get_json()["cards"]]
