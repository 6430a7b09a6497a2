"""Mipomersen MedicationRequests (REFERENCE.md policy 6): ATC, configured codes, names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_mappings import FhirItem, read_patient_record, read_resources
from fhir_mappings.values import MedicationCodes, MedicationOrder, ResourceRef
from tests.fhir_builders import ATC, DROP, RXNORM, bundle, medication, medication_request, record_of

ATC_MIPOMERSEN = {"coding": [{"system": ATC, "code": "C10AX11"}]}
SIMVASTATIN = {
    "coding": [{"system": RXNORM, "code": "316672", "display": "Simvastatin 10 MG Oral Tablet"}],
    "text": "Simvastatin 10 MG Oral Tablet",
}
LOCAL_CODE = ("urn:oid:1.2.3.4", "KYN-200")
ACTIVE_SINCE_OCTOBER = {"status": "active", "authoredOn": "2026-10-01"}


def _only_order(record_orders: tuple[MedicationOrder, ...]) -> MedicationOrder:
    (order,) = record_orders
    return order


@pytest.mark.parametrize(
    ("concept", "matched_by", "name"),
    [
        pytest.param(ATC_MIPOMERSEN, "ATC C10AX11", "mipomersen", id="ATC"),
        pytest.param(
            {"coding": [{"system": "urn:oid:2.16.840.1.113883.6.73", "code": "C10AX11"}]},
            "ATC C10AX11",
            "mipomersen",
            id="ATC-by-OID",
        ),
        pytest.param(
            {"text": "Kynamro 200 mg/mL injection"},
            "text 'Kynamro'",
            "Kynamro 200 mg/mL injection",
            id="brand-in-text",
        ),
        pytest.param(
            {"coding": [{"system": "urn:x", "code": "1", "display": "MIPOMERSEN SODIUM 200 MG"}]},
            "text 'mipomersen'",
            "MIPOMERSEN SODIUM 200 MG",
            id="name-in-display-any-case",
        ),
        pytest.param(
            {"coding": [{"system": LOCAL_CODE[0], "code": LOCAL_CODE[1]}]},
            f"code {LOCAL_CODE[0]}|{LOCAL_CODE[1]}",
            "mipomersen",
            id="configured-code",
        ),
        pytest.param(
            {
                "coding": [
                    {"system": LOCAL_CODE[0], "code": LOCAL_CODE[1], "display": "Kynamro"},
                    {"system": ATC, "code": "C10AX11"},
                ]
            },
            "ATC C10AX11",
            "Kynamro",
            id="ATC-before-code-and-text",
        ),
        pytest.param(
            {"coding": [{"system": LOCAL_CODE[0], "code": LOCAL_CODE[1]}], "text": "Kynamro"},
            f"code {LOCAL_CODE[0]}|{LOCAL_CODE[1]}",
            "Kynamro",
            id="code-before-text",
        ),
    ],
)
def test_mipomersen_is_recognised(concept: dict[str, Any], matched_by: str, name: str) -> None:
    order = _only_order(
        record_of(medication_request(medication=concept), codes=[LOCAL_CODE]).medication_orders
    )

    assert (order.matched_by, order.medication) == (matched_by, name)


@pytest.mark.parametrize(
    "concept",
    [
        pytest.param(SIMVASTATIN, id="simvastatin"),
        pytest.param(
            {"coding": [{"system": "http://local", "code": "C10AX11"}]}, id="ATC-code-other-system"
        ),
        pytest.param({"coding": [{"system": ATC, "code": "C10AX12"}]}, id="lomitapide-ATC"),
        pytest.param(
            {"coding": [{"system": "urn:other", "code": "KYN-200"}]}, id="code-other-system"
        ),
        pytest.param({"text": "Juxtapid"}, id="sister-drug"),
    ],
)
def test_other_medications_are_dropped(concept: dict[str, Any]) -> None:
    assert (
        record_of(medication_request(medication=concept), codes=[LOCAL_CODE]).medication_orders
        == ()
    )


def test_default_medication_codes_are_empty() -> None:
    local = medication_request(
        medication={"coding": [{"system": LOCAL_CODE[0], "code": LOCAL_CODE[1]}]}
    )

    assert read_patient_record(read_resources(local, "p")).medication_orders == ()


KYNAMRO_MEDICATION = medication({"coding": [{"system": ATC, "code": "C10AX11"}], "text": "Kynamro"})


@pytest.mark.parametrize(
    ("reference", "full_url"),
    [
        pytest.param("Medication/med-1", None, id="relative-reference"),
        pytest.param(
            "Medication/med-1", "http://ehr/fhir/Medication/med-1", id="relative-to-full-url"
        ),
        pytest.param(
            "urn:uuid:5f3c1a2e-0000-4000-8000-000000000001",
            "urn:uuid:5f3c1a2e-0000-4000-8000-000000000001",
            id="urn-uuid-full-url",
        ),
        pytest.param("http://ehr/fhir/Medication/med-1", None, id="absolute-reference"),
        pytest.param("Medication/med-1/_history/2", None, id="versioned-reference"),
    ],
)
def test_referenced_medication_elsewhere_is_resolved(reference: str, full_url: str | None) -> None:
    request = medication_request(medication=None, medicationReference={"reference": reference})
    prefetch = bundle(request, KYNAMRO_MEDICATION, full_urls=[None, full_url])

    record = read_patient_record(read_resources(prefetch, "prefetch.meds"))

    order = _only_order(record.medication_orders)
    assert (order.matched_by, order.medication) == ("ATC C10AX11", "Kynamro")


def test_medication_in_draft_orders_resolves_prefetch_request_and_back() -> None:
    draft = medication_request(
        "draft", medication=None, medicationReference={"reference": "Medication/med-1"}
    )

    record = record_of(
        medication_request(
            "old",
            medication=None,
            status="active",
            medicationReference={"reference": "Medication/med-2"},
        ),
        medication({"text": "Kynamro"}, id="med-1"),
        drafts=[
            draft,
            medication({"text": "mipomersen"}, id="med-2"),
            {"resourceType": "Observation"},
        ],
    )

    assert [(o.source.id, o.is_draft_order, o.matched_by) for o in record.medication_orders] == [
        ("old", False, "text 'mipomersen'"),
        ("draft", True, "text 'Kynamro'"),
    ]
    assert [o.source.id for o in record.draft_orders] == ["draft"]


def test_contained_medication_is_resolved() -> None:
    request = medication_request(
        medication=None,
        contained=[
            {"resourceType": "Medication", "id": "other", "code": SIMVASTATIN},
            {
                "resourceType": "Medication",
                "id": "m",
                "code": {"coding": [{"system": ATC, "code": "C10AX11", "display": "mipomersen"}]},
            },
        ],
        medicationReference={"reference": "#m"},
    )

    order = _only_order(record_of(request).medication_orders)

    assert (order.matched_by, order.medication) == ("ATC C10AX11", "mipomersen")


@pytest.mark.parametrize(
    ("reference", "matched_by"),
    [
        pytest.param(
            {"reference": "#missing", "display": "Kynamro 200 mg"},
            "text 'Kynamro'",
            id="missing-contained-but-display",
        ),
        pytest.param(
            {"reference": "Medication/unknown", "display": "mipomersen"},
            "text 'mipomersen'",
            id="unresolved-but-display",
        ),
        pytest.param({"reference": "Medication/unknown"}, None, id="unresolved-no-display"),
        pytest.param({"display": "Kynamro"}, "text 'Kynamro'", id="display-only"),
    ],
)
def test_reference_display_names_the_drug_when_nothing_resolves(
    reference: dict[str, Any], matched_by: str | None
) -> None:
    record = record_of(medication_request(medication=None, medicationReference=reference))

    assert [order.matched_by for order in record.medication_orders] == (
        [matched_by] if matched_by else []
    )


@pytest.mark.parametrize(
    ("overrides", "status", "authored_on"),
    [
        pytest.param(
            {"status": "active"}, "active", datetime(2026, 10, 1, tzinfo=UTC), id="active"
        ),
        pytest.param(
            {"status": "on-hold"}, "on-hold", datetime(2026, 10, 1, tzinfo=UTC), id="on-hold"
        ),
        pytest.param(
            {"status": "stopped"}, "stopped", datetime(2026, 10, 1, tzinfo=UTC), id="stopped"
        ),
        pytest.param(
            {"status": "entered-in-error"},
            "entered-in-error",
            datetime(2026, 10, 1, tzinfo=UTC),
            id="entered-in-error",
        ),
        pytest.param(
            {"authoredOn": "2026-10-01T10:00:00-02:00"},
            "active",
            datetime(2026, 10, 1, 12, tzinfo=UTC),
            id="authored-with-offset",
        ),
        pytest.param({"authoredOn": "2026-10"}, "active", None, id="authored-year-month"),
        pytest.param({"authoredOn": DROP}, "active", None, id="no-authored"),
    ],
)
def test_orders_of_any_status_are_kept_for_the_rules(
    overrides: dict[str, Any], status: str, authored_on: datetime | None
) -> None:
    request = medication_request(medication=ATC_MIPOMERSEN, **(ACTIVE_SINCE_OCTOBER | overrides))

    order = _only_order(record_of(request).medication_orders)

    assert (order.status, order.authored_on) == (status, authored_on)


def test_order_carries_its_source_subject_and_intent() -> None:
    request = medication_request(
        "mr-9",
        medication=ATC_MIPOMERSEN,
        meta={"versionId": "4"},
        intent="plan",
        **ACTIVE_SINCE_OCTOBER,
    )

    (order,) = read_patient_record(
        [FhirItem("context.draftOrders.entry[2].resource", request)]
    ).medication_orders

    assert order == MedicationOrder(
        source=ResourceRef(
            "MedicationRequest", "mr-9", "context.draftOrders.entry[2].resource", "4"
        ),
        status="active",
        intent="plan",
        authored_on=datetime(2026, 10, 1, tzinfo=UTC),
        subject="Patient/p1",
        medication="mipomersen",
        matched_by="ATC C10AX11",
        is_draft_order=False,
    )


def test_subject_without_reference_reads_as_none() -> None:
    request = medication_request(medication=ATC_MIPOMERSEN, subject={"display": "Amy Shaw"})

    assert _only_order(record_of(request).medication_orders).subject is None


def test_two_medications_with_one_key_first_wins() -> None:
    record = record_of(
        medication_request(medication=None, medicationReference={"reference": "Medication/med-1"}),
        medication({"text": "Kynamro"}),
        medication({"text": "aspirin"}),
    )

    assert _only_order(record.medication_orders).medication == "Kynamro"


def test_medication_codes_are_configurable_per_call() -> None:
    request = medication_request(medication={"coding": [{"system": RXNORM, "code": "999"}]})

    record = read_patient_record(
        read_resources(request, "p"), medication_codes=MedicationCodes(frozenset({(RXNORM, "999")}))
    )

    assert _only_order(record.medication_orders).matched_by == f"code {RXNORM}|999"
