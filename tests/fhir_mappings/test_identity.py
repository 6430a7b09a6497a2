"""Policy 15: which patient a reference names, in each form FHIR R4 allows (§2.3.0 References)."""

from __future__ import annotations

import pytest

from fhir_mappings import Attribution, FhirItem, PatientIdentity

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
