"""The typed values produced by the package expose what cards need."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_mappings.values import Analyte, Bound, LabResult, ResourceRef


def test_resource_ref_gives_a_relative_reference_only_with_an_id() -> None:
    assert ResourceRef("Observation", "o1", "p").reference == "Observation/o1"
    assert ResourceRef("Observation", None, "p").reference is None


def test_lab_result_unit_is_the_canonical_unit() -> None:
    result = LabResult(
        Analyte.TOTAL_BILIRUBIN,
        "1975-2",
        1.0,
        Bound.EXACT,
        datetime(2026, 1, 1, tzinfo=UTC),
        ResourceRef("Observation", "o1", "p"),
    )

    assert result.unit == "mg/dL"
