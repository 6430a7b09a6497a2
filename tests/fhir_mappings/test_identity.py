"""Policy 15: which patient a reference names, in each form FHIR R4 allows (§2.3.0 References)."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings import Attribution, FhirItem, PatientIdentity, attribute_items

BASE = "https://ehr.example.org/fhir"
URN = "urn:uuid:7b1e6c52-3f0c-4a8e-9d0c-1f2e3d4c5b6a"
OTHER_URN = "urn:uuid:0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
PATIENTS = (
    FhirItem("b.entry[0].resource", {"resourceType": "Patient", "id": "p1"}, URN),
    FhirItem("b.entry[1].resource", {"resourceType": "Patient", "id": "p2"}, OTHER_URN),
    FhirItem("b.entry[2].resource", {"resourceType": "Patient", "id": "p1"}, f"{BASE}/Patient/p1"),
)
THIS, OTHER, NOBODY = Attribution.THIS_PATIENT, Attribution.OTHER_PATIENT, Attribution.UNATTRIBUTED


@pytest.mark.parametrize(
    ("reference", "server", "expected"),
    [
        pytest.param("Patient/p1", None, THIS, id="relative"),
        pytest.param("Patient/p1/_history/4", None, THIS, id="relative-versioned"),
        pytest.param("Patient/p2", None, OTHER, id="relative-other"),
        pytest.param("Group/p1", None, OTHER, id="group-with-same-id"),
        pytest.param(f"{BASE}/Patient/p1", BASE, THIS, id="absolute-on-fhirServer"),
        pytest.param(f"{BASE}/Patient/p1", BASE + "/", THIS, id="fhirServer-trailing-slash"),
        pytest.param("https://other.example.org/Patient/p1", BASE, OTHER, id="absolute-elsewhere"),
        pytest.param("https://other.example.org/Patient/p1", None, THIS, id="absolute-no-server"),
        pytest.param(f"{BASE}/Patient/p2", BASE, OTHER, id="absolute-other-patient"),
        pytest.param(URN, None, THIS, id="urn-uuid-this"),
        pytest.param(OTHER_URN, None, OTHER, id="urn-uuid-other"),
        pytest.param("urn:uuid:00000000-0000-0000-0000-000000000000", None, NOBODY, id="urn-none"),
        pytest.param("#pat", None, NOBODY, id="contained"),
        pytest.param("p1", None, NOBODY, id="bare-id"),
    ],
)
def test_a_reference_is_attributed(
    reference: str, server: str | None, expected: Attribution
) -> None:
    identity = PatientIdentity.of_request("p1", PATIENTS, server_base=server)

    assert identity.attribute(reference)[0] is expected


@pytest.mark.parametrize(
    ("resource", "optional", "expected", "path"),
    [
        pytest.param({"resourceType": "Observation"}, False, NOBODY, "r.subject", id="no-subject"),
        pytest.param(
            {"resourceType": "MedicationRequest"}, True, None, None, id="draft-without-subject"
        ),
        pytest.param(
            {"resourceType": "MedicationRequest", "subject": "Patient/p1"},
            True,
            NOBODY,
            "r.subject",
            id="subject-not-an-object",
        ),
        pytest.param(
            {"resourceType": "Condition", "subject": {"identifier": {"value": "x"}}},
            False,
            NOBODY,
            "r.subject",
            id="identifier-only",
        ),
        pytest.param(
            {"resourceType": "Condition", "subject": {"reference": "Patient/p9"}},
            False,
            OTHER,
            "r.subject.reference",
            id="other-patient",
        ),
        pytest.param({"resourceType": "Patient", "id": "p9"}, False, OTHER, "r.id", id="patient"),
        pytest.param({"resourceType": "Medication"}, False, None, None, id="no-patient-element"),
    ],
)
def test_a_resource_names_its_problem(
    resource: dict[str, object], optional: bool, expected: Attribution | None, path: str | None
) -> None:
    identity = PatientIdentity.of_request("p1", ())

    problem = identity.problem(FhirItem("r", resource), subject_optional=optional)

    assert (problem.attribution if problem else None, problem.path if problem else None) == (
        expected,
        path,
    )


# --- the shortcut for `Patient/<patientId>` gives the answers of the full reading ---------------

IDS = ["p1", "p/1", "", " p1", "1"]
REFERENCES = [
    *(f"Patient/{patient_id}" for patient_id in IDS),
    *("Patient/p1/", "Patient/p1/_history/2", "Patient/p10", "Patient/p1 ", "patient/p1"),
    *("Group/p1", " ", URN, OTHER_URN, f"{BASE}/Patient/p1", "#p1", "p1"),
]
SUBJECTS: list[object] = [
    None,
    "Patient/p1",
    {"display": "p1"},
    *({"reference": reference} for reference in REFERENCES),
    *(MappingProxyType({"reference": reference}) for reference in REFERENCES),
]
TYPES = ["Observation", "Condition", "MedicationRequest", "Patient", "Medication", " "]


def _every_resource() -> list[dict[str, object]]:
    resources: list[dict[str, object]] = [{"id": "p1"}]
    for resource_type in TYPES:
        for patient_id in IDS:
            resources.append({"resourceType": resource_type, "id": patient_id})
        resources.extend({"resourceType": resource_type, "subject": s} for s in SUBJECTS)
    return resources


def _non_blank(value: object) -> str:
    return value if isinstance(value, str) and value.strip() else ""


@pytest.mark.parametrize("server", [None, BASE])
@pytest.mark.parametrize("optional", [False, True], ids=["subject-required", "draft-orders"])
@pytest.mark.parametrize("patient_id", IDS)
def test_items_are_sorted_as_their_problems_say(
    patient_id: str, optional: bool, server: str | None
) -> None:
    resources = _every_resource()
    items = [
        FhirItem(f"b.entry[{index}].resource", resource, f"urn:uuid:{index}" if index % 2 else None)
        for index, resource in enumerate(resources)
    ]
    identity = PatientIdentity.of_request(patient_id, items, server_base=server)
    problems = [identity.problem(item, subject_optional=optional) for item in items]

    attributed = attribute_items(items, identity, subject_optional=optional)

    assert attributed.own == tuple(item for item, p in zip(items, problems, strict=True) if not p)
    assert attributed.foreign == tuple(p for p in problems if p and p.attribution is OTHER)
    assert attributed.unattributed == tuple(
        (item, p) for item, p in zip(items, problems, strict=True) if p and p.attribution is NOBODY
    )
    # Bundle-local Patients: the entries of that type with a fullUrl, with their ids.
    assert identity.local_patients == tuple(
        (item.full_url, _non_blank(item.resource.get("id")))
        for item in items
        if item.full_url is not None and item.resource.get("resourceType") == "Patient"
    )


@pytest.mark.slow  # hypothesis
@settings(max_examples=500, deadline=None)
@given(
    patient_id=st.sampled_from(IDS) | st.text(alphabet="Patien/p1 ", max_size=5),
    reference=st.sampled_from(REFERENCES) | st.text(alphabet="Patien/p1 _history", max_size=14),
)
def test_a_plain_reference_is_only_ever_one_the_full_reading_calls_this_patients(
    patient_id: str, reference: str
) -> None:
    identity = PatientIdentity(patient_id)

    plainly_own = reference == identity.plain_reference

    assert plainly_own <= (identity.attribute(reference)[0] is THIS)
    assert plainly_own == (
        reference.startswith("Patient/")
        and reference.removeprefix("Patient/") == patient_id
        and patient_id != ""
        and "/" not in patient_id
    )
