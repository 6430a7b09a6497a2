"""Golden tests on public FHIR data copied verbatim into tests/data/fhir (tests/data/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_mappings import read_patient_record, read_resources
from fhir_mappings.values import (
    Analyte,
    Bound,
    LabResult,
    MedicationCodes,
    ResourceRef,
)
from tests.fhir_builders import RXNORM, load

JORDAN = "Jordan_Cruickshank_5de38439-d320-46d3-854d-3c098e88de4c.json"
NIZATIDINE = MedicationCodes(frozenset({(RXNORM, "582620")}))


def test_us_core_serum_total_bilirubin() -> None:
    record = read_patient_record(
        read_resources(load("serum-total-bilirubin.json"), "prefetch.labs")
    )

    assert record.lab_results == (
        LabResult(
            analyte=Analyte.TOTAL_BILIRUBIN,
            loinc="1975-2",
            value=8.6,
            bound=Bound.EXACT,
            effective=datetime(2005, 7, 7, tzinfo=UTC),
            source=ResourceRef("Observation", "serum-total-bilirubin", "prefetch.labs", "1364"),
            reference_high=7.0,
            preliminary=False,
            reported="8.6 mg/dL",
            date_only=True,
        ),
    )
    assert record.unusable_results == () and record.skipped == ()


def test_us_core_mo2_contained_medication_is_not_mipomersen_by_default() -> None:
    record = read_patient_record(read_resources(load("uscore-mo2.json"), "prefetch.medications"))

    assert record.medication_orders == () and record.skipped == ()


def test_us_core_mo2_code_is_read_from_the_contained_medication() -> None:
    resource = load("uscore-mo2.json")
    assert "medicationCodeableConcept" not in resource  # the code lives only in `contained`

    record = read_patient_record(
        read_resources(resource, "prefetch.medications"), medication_codes=NIZATIDINE
    )

    (order,) = record.medication_orders
    assert order.matched_by == f"code {RXNORM}|582620"
    assert order.medication == "Nizatidine 15 MG/ML Oral Solution [Axid]"
    assert (order.status, order.intent, order.subject) == ("active", "order", "Patient/example")
    assert order.authored_on == datetime(2008, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("as_draft_order", [False, True], ids=["prefetch", "draft-orders"])
def test_us_core_mo3_searchset_resolves_the_included_medication(as_draft_order: bool) -> None:
    path = "context.draftOrders" if as_draft_order else "prefetch.medications"
    items = list(read_resources(load("uscore-mo3.json"), path))
    assert [item.resource_type for item in items] == ["MedicationRequest", "Medication"]

    record = read_patient_record(
        () if as_draft_order else items,
        draft_orders=items if as_draft_order else (),
        medication_codes=NIZATIDINE,
    )

    (order,) = record.medication_orders
    assert order.source == ResourceRef(
        "MedicationRequest", "uscore-mo3", f"{path}.entry[0].resource"
    )
    assert order.matched_by == f"code {RXNORM}|582620"
    assert order.is_draft_order is as_draft_order


def test_us_core_mo3_without_configured_code_is_dropped() -> None:
    record = read_patient_record(read_resources(load("uscore-mo3.json"), "prefetch.medications"))

    assert record.medication_orders == ()


def test_synthea_whole_patient_transaction_bundle() -> None:
    record = read_patient_record(read_resources(load(JORDAN), "prefetch.patient"))

    summary = [
        (r.analyte, r.loinc, round(r.value, 1), r.reported.split()[-1], r.effective, r.date_only)
        for r in record.lab_results
    ]
    june_24 = datetime(2017, 6, 24, 13, 9, 9, tzinfo=UTC)
    assert summary == [
        (Analyte.TOTAL_BILIRUBIN, "42719-5", 1.2, "mg/dL", june_24, False),
        (Analyte.ALT, "1742-6", 142.3, "IU/L", june_24, False),
        (Analyte.AST, "1920-8", 163.4, "IU/L", june_24, False),
        (Analyte.ALP, "6768-6", 37.9, "IU/L", june_24, False),
    ]
    assert all(r.reference_high is None for r in record.lab_results)  # Synthea sends no ranges
    assert record.lab_results[1].source.path == "prefetch.patient.entry[185].resource"
    assert record.unusable_results == () and record.medication_orders == ()
    assert record.skipped == ()
    assert record.conditions == ()  # cholecystitis and cholelithiasis are neither listed nor active
