"""Validation with fhir.resources R4B: only resources the rules use, errors at a dotted path."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_mappings import FhirItem, read_patient_record, read_resources
from fhir_mappings import _record as record_module
from fhir_mappings._ordinary_observations import OrdinaryRead, OrdinaryReader
from fhir_mappings._validation import _short, dotted_path, validation_problem
from fhir_mappings.values import Analyte, SkippedResource, UnusableReason
from tests.fhir_builders import (
    ATC,
    DROP,
    ICD_10_CM,
    bundle,
    condition,
    load,
    medication,
    medication_request,
    observation,
    quantity,
    record_of,
)

JORDAN = "Jordan_Cruickshank_5de38439-d320-46d3-854d-3c098e88de4c.json"
ITEM = "prefetch.labs.entry[0].resource"
ATC_MIPOMERSEN = {"coding": [{"system": ATC, "code": "C10AX11"}]}


@pytest.mark.parametrize(
    ("overrides", "path", "message"),
    [
        pytest.param(
            {"valueQuantity": quantity("abc")},
            f"{ITEM}.valueQuantity.value",
            "Decimal value string does not match spec regex",
            id="value-not-decimal",
        ),
        pytest.param(
            {"valueQuantity": quantity(True)},
            f"{ITEM}.valueQuantity.value",
            "Decimal value string",
            id="value-boolean",
        ),
        pytest.param(
            {"referenceRange": [{"high": quantity("x")}]},
            f"{ITEM}.referenceRange[0].high.value",
            "Decimal value string",
            id="list-index",
        ),
        pytest.param({"status": DROP}, f"{ITEM}.status", "required", id="missing-status"),
        pytest.param({"vendorFlag": 1}, f"{ITEM}.vendorFlag", "Extra inputs", id="unknown-element"),
        pytest.param(
            {"valueQuantity": [quantity()]},
            f"{ITEM}.valueQuantity",
            "Quantity",
            id="root-of-element-dropped",
        ),
        pytest.param(
            {"effectiveDateTime": "2017-06-24T10:00:00"},
            f"{ITEM}.effectiveDateTime",
            "DateTime value string",
            id="naive-time-is-invalid-fhir",
        ),
        pytest.param(
            {"valueQuantity": quantity("abc"), "issued": "x"},
            f"{ITEM}.issued",
            "(and 1 more)",
            id="more-errors-counted",
        ),
    ],
)
def test_invalid_liver_observation_is_skipped_and_unusable(
    overrides: dict[str, Any], path: str, message: str
) -> None:
    resource = observation(id="obs-1", **overrides)

    record = read_patient_record(read_resources(bundle(resource), "prefetch.labs"))

    (skipped,) = record.skipped
    assert (skipped.resource_type, skipped.id, skipped.path) == ("Observation", "obs-1", path)
    assert message in skipped.message
    (unusable,) = record.unusable_results
    assert (unusable.analyte, unusable.reason) == (Analyte.ALT, UnusableReason.INVALID)
    assert unusable.detail.startswith(f"not valid FHIR at {path}: ")
    assert record.lab_results == ()


def test_invalid_listed_condition_is_skipped() -> None:
    record = record_of(condition("K70.30", ICD_10_CM, onsetDateTime="yesterday"))

    assert record.conditions == ()
    assert [s.path for s in record.skipped] == ["prefetch.p.entry[0].resource.onsetDateTime"]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        pytest.param({"intent": DROP}, "prefetch.p.entry[0].resource.intent", id="missing-intent"),
        pytest.param(
            {"medicationReference": {"reference": "Medication/x"}},
            "prefetch.p.entry[0].resource",
            id="two-medication-choices",
        ),
        pytest.param(
            {"contained": [{"resourceType": "Medication", "id": "m", "form": "pen"}]},
            "prefetch.p.entry[0].resource.contained[0].form",
            id="error-in-contained",
        ),
        pytest.param(
            {"contained": [{"resourceType": "Gadget", "id": "g"}]},
            "prefetch.p.entry[0].resource",
            id="unknown-contained-type-non-pydantic-error",
        ),
    ],
)
def test_invalid_mipomersen_request_still_counts_and_names_the_element(
    overrides: dict[str, Any], path: str
) -> None:
    """Policy 15: identity comes from the medication elements, before validation."""
    record = record_of(medication_request(medication=ATC_MIPOMERSEN, **overrides))

    (order,) = record.medication_orders
    assert order.matched_by == "ATC C10AX11"
    (skipped,) = record.skipped
    assert (skipped.resource_type, skipped.path, skipped.read_in_part) == (
        "MedicationRequest",
        path,
        True,
    )
    assert skipped.message
    assert order.problem == skipped


def test_invalid_referenced_medication_is_named_once_and_still_identifies_mipomersen() -> None:
    bad_medication = medication(ATC_MIPOMERSEN, form={"text": "pen"}, status=7)
    by_code_only = medication_request(
        medication=None, medicationReference={"reference": "Medication/med-1"}
    )
    named_too = medication_request(
        "mr-2",
        medication=None,
        medicationReference={"reference": "Medication/med-1", "display": "Kynamro"},
    )

    record = record_of(by_code_only, named_too, bad_medication)

    assert record.skipped == (
        SkippedResource(
            "Medication",
            "med-1",
            "prefetch.p.entry[2].resource.status",
            "Input should be a valid string",
        ),
    )
    assert [(o.source.id, o.matched_by) for o in record.medication_orders] == [
        ("mr-1", "ATC C10AX11"),
        ("mr-2", "ATC C10AX11"),
    ]
    assert {o.problem for o in record.medication_orders} == set(record.skipped)


def test_valid_referenced_medication_is_validated_once() -> None:
    record = record_of(
        medication_request(medication=None, medicationReference={"reference": "Medication/med-1"}),
        medication_request(
            "mr-2", medication=None, medicationReference={"reference": "Medication/med-1"}
        ),
        medication(ATC_MIPOMERSEN),
    )

    assert len(record.medication_orders) == 2 and record.skipped == ()


IRRELEVANT_INVALID = [
    pytest.param(
        observation(loinc="2345-7", valueQuantity=quantity("abc")), id="glucose-observation"
    ),
    pytest.param(observation(code={"text": "ALT"}, status=5), id="uncoded-observation"),
    pytest.param({"resourceType": "Patient", "birthDate": 5, "vendorFlag": 1}, id="patient"),
    pytest.param(
        medication_request(medication={"text": "simvastatin"}, intent=DROP, status=3),
        id="other-drug-request",
    ),
    pytest.param(condition("44054006", vendorFlag=1), id="unlisted-condition"),
    pytest.param(medication(ATC_MIPOMERSEN, status=7), id="unreferenced-medication"),
    pytest.param({"resourceType": "Gadget", "id": 1}, id="unknown-resource-type"),
]


@pytest.mark.parametrize("resource", IRRELEVANT_INVALID)
def test_irrelevant_invalid_resources_are_not_validated(resource: dict[str, Any]) -> None:
    assert record_of(resource) == record_of()


def test_only_resources_the_rules_use_are_validated_in_a_whole_patient_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    validated: list[str] = []

    def spy(item: FhirItem) -> SkippedResource | None:
        validated.append(f"{item.resource_type} {item.path}")
        return validation_problem(item)

    class SpyReader(OrdinaryReader):  # the one-walk reader validates as it reads
        def read(self, item: FhirItem, analyte: Analyte, loinc: str) -> OrdinaryRead | None:
            validated.append(f"{item.resource_type} {item.path}")
            return super().read(item, analyte, loinc)

    monkeypatch.setattr(record_module, "validation_problem", spy)
    monkeypatch.setattr(record_module, "OrdinaryReader", SpyReader)

    read_patient_record(read_resources(load(JORDAN), "prefetch.patient"))

    assert validated == [
        f"Observation prefetch.patient.entry[{index}].resource" for index in (184, 185, 186, 199)
    ]


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        pytest.param((), "r", id="resource"),
        pytest.param(("valueQuantity", "value"), "r.valueQuantity.value", id="nested"),
        pytest.param(("referenceRange", 0, "high"), "r.referenceRange[0].high", id="list"),
        pytest.param(("valueQuantity", "root"), "r.valueQuantity", id="root"),
    ],
)
def test_dotted_path(loc: tuple[int | str, ...], path: str) -> None:
    assert dotted_path("r", loc) == path


def test_long_messages_are_shortened_to_one_line() -> None:
    assert _short("a\n  b") == "a b"
    assert _short("x" * 300) == "x" * 199 + "…"
