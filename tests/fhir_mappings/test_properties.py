"""Invariants: a unit change or a reordering of the request never changes what the rules see."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_mappings import loinc_codes, supported_units
from fhir_mappings.values import Analyte, LabResult
from tests.conversions import from_canonical
from tests.fhir_builders import UCUM, observation, quantity, record_of

VALUES = st.floats(min_value=0.01, max_value=1e5, allow_nan=False, allow_infinity=False)


@st.composite
def _analyte_unit(draw: st.DrawFn) -> tuple[Analyte, str]:
    analyte = draw(st.sampled_from(list(Analyte)))
    return analyte, draw(st.sampled_from(supported_units(analyte)))


def _only_result(resource: dict[str, Any]) -> LabResult:
    (result,) = record_of(resource).lab_results
    return result


@given(_analyte_unit(), VALUES, VALUES)
def test_same_value_in_another_supported_unit_reads_the_same(
    pair: tuple[Analyte, str], value: float, high: float
) -> None:
    analyte, unit = pair
    loinc = loinc_codes([analyte])[0]
    canonical = _only_result(
        observation(
            loinc=loinc,
            valueQuantity=quantity(value, analyte.canonical_unit),
            referenceRange=[{"high": quantity(high, analyte.canonical_unit)}],
        )
    )

    converted = _only_result(
        observation(
            loinc=loinc,
            valueQuantity=quantity(from_canonical(analyte, value, unit), unit),
            referenceRange=[{"high": {"value": from_canonical(analyte, high, unit)}}],
        )
    )

    assert converted.value == pytest.approx(canonical.value, rel=1e-9)
    assert converted.reference_high == pytest.approx(canonical.reference_high, rel=1e-9)
    assert (converted.analyte, converted.bound, converted.effective) == (
        canonical.analyte,
        canonical.bound,
        canonical.effective,
    )


RESOURCES = [
    observation(id="alt"),
    observation("AST", id="ast", status="registered"),
    observation("TBIL", id="tbil", valueQuantity={"value": 20, "unit": "µmol/L", "system": UCUM}),
    {"resourceType": "Patient", "id": "p1"},
    {
        "resourceType": "MedicationRequest",
        "id": "mr",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationReference": {"reference": "Medication/kyn"},
    },
    {"resourceType": "Medication", "id": "kyn", "code": {"text": "Kynamro"}},
]


@given(st.permutations(RESOURCES))
def test_order_of_entries_never_changes_the_record(resources: list[dict[str, Any]]) -> None:
    baseline = record_of(*RESOURCES)

    record = record_of(*resources)

    def ids(values: tuple[Any, ...]) -> list[str]:
        return sorted(str(value.source.id) for value in values)

    assert ids(record.lab_results) == ids(baseline.lab_results) == ["alt", "tbil"]
    assert ids(record.unusable_results) == ids(baseline.unusable_results) == ["ast"]
    assert ids(record.medication_orders) == ids(baseline.medication_orders) == ["mr"]
