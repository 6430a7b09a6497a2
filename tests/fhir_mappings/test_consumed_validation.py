"""The fast path validates exactly what fhir.resources validates of the consumed elements.

Differential property test (issue 13): for generated and mutated Observations,
MedicationRequests and Conditions, validation in the `consumed` scope gives the same verdict,
and for an invalid resource the same dotted path, as the full R4B model applied to the resource
restricted to its consumed elements (`consumed_part`; a MedicationRequest is validated whole);
the hand-written checker never passes a resource the models refuse.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bench.workload import order_sign_request
from fhir_mappings import FhirItem, ValidationScope, read_patient_record, read_resources
from fhir_mappings._consumed import CONSUMED, consumed_part, is_certainly_valid
from fhir_mappings._validation import (
    dotted_path,
    model_of,
    validation_problem,
    validation_scope,
)
from tests.fhir_builders import (
    ATC,
    ICD_10_CM,
    condition,
    load,
    medication_request,
    observation,
    quantity,
)

ROOT = Path(__file__).resolve().parents[2]
PATH = "prefetch.p.entry[0].resource"
EXAMPLES = 2500  # generated resources per run of the differential test
TYPES = ("Observation", "MedicationRequest", "Condition")


def _real_resources() -> list[dict[str, Any]]:
    """Resources as EHRs send them: Synthea, the examples, the benchmark's history."""
    found: list[dict[str, Any]] = []
    jordan = load("Jordan_Cruickshank_5de38439-d320-46d3-854d-3c098e88de4c.json")
    found += [entry["resource"] for entry in jordan["entry"]]
    for path in sorted((ROOT / "examples").glob("*.json")):
        request = json.loads(path.read_text())
        for value in [
            request.get("context", {}).get("draftOrders"),
            *request.get("prefetch", {}).values(),
        ]:
            if isinstance(value, dict):
                found += [e["resource"] for e in value.get("entry", []) if "resource" in e]
    bench = order_sign_request(40)
    found += [e["resource"] for e in bench["prefetch"]["liverLabs"]["entry"]]
    found += [e["resource"] for e in bench["prefetch"]["medications"]["entry"]]
    return [r for r in found if r.get("resourceType") in TYPES]


REAL = _real_resources()
ACTIVE_SINCE_OCTOBER = {"status": "active", "authoredOn": "2026-10-01"}
BUILT = [
    observation(),
    observation(
        valueQuantity=quantity(3.9, "ukat/L"),
        referenceRange=[{"high": quantity(0.6, "ukat/L"), "type": {"text": "normal"}}],
        issued="2026-11-01T10:00:00.123+01:00",
        meta={"versionId": "2", "lastUpdated": "2026-11-01T10:00:00Z"},
    ),
    medication_request(
        medication={"coding": [{"system": ATC, "code": "C10AX11"}]}, **ACTIVE_SINCE_OCTOBER
    ),
    medication_request(
        medication=None,
        **ACTIVE_SINCE_OCTOBER,
        medicationReference={"reference": "#m"},
        contained=[{"resourceType": "Medication", "id": "m", "code": {"text": "Kynamro"}}],
    ),
    condition("K70.30", ICD_10_CM, onsetDateTime="2020-03", recordedDate="2020-04-01"),
]
BASES = BUILT + REAL

# Values that sit on the edges of the FHIR primitive types and of pydantic's coercions.
ODD_VALUES: list[Any] = [
    None,
    "",
    " ",
    "x",
    " x",
    "x ",
    "a  b",
    "x\n",
    "\x0bx",
    "\x0b",
    "\u00a0",
    "é",
    "ü x",
    "final",
    "<=",
    "=",
    "5.0",
    "abc",
    "obs-1",
    "a" * 65,
    "Patient/p1",
    "urn:uuid:1",
    "http://loinc.org",
    "2026",
    "2026-02",
    "2026-13",
    "2026-02-30",
    "2024-02-29",
    "0000-01-01",
    "0999-01-01",
    "2026-11-01T08:30:00Z",
    "2026-11-01T08:30:00",
    "2026-11-01T08:30Z",
    "2026-11-01T08:30:00.1234567+01:00",
    "2026-11-01T08:30:00+14:00",
    "2026-11-01T08:30:00+14:30",
    "2016-12-31T23:59:60Z",
    "2026-11-01T24:00:00Z",
    0,
    -1,
    7,
    1.5,
    1e-7,
    1e16,
    -0.0,
    10**20,
    True,
    False,
    [],
    [None],
    ["x"],
    [{}],
    {},
    {"text": "x"},
    {"value": 1},
    {"reference": "Patient/p1"},
    {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},
    {"extension": [{"url": "http://x", "valueString": "y"}]},
    {"id": "a", "text": "x"},
]
ODD_KEYS = [
    "vendorFlag",
    "extension",
    "modifierExtension",
    "category",
    "text",
    "_status",
    "_effectiveDateTime",
    "valueString",
    "valueInteger",
    "effectivePeriod",
    "effectiveTiming",
    "medicationReference",
    "onsetString",
    "onsetAge",
    "intent",
    "issued",
    "id",
    "meta",
    "contained",
    "value",
    "system",
    "unit",
    "comparator",
    "coding",
    "display",
    "high",
    "type",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a JSON value (objects and arrays), the root excluded."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            found.append((*prefix, key))
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.append((*prefix, index))
            found += _paths(child, (*prefix, index))
    return found


def _parent(resource: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        resource = resource[step]
    return resource


@st.composite
def mutated_resources(draw: st.DrawFn) -> dict[str, Any]:
    """A real or built resource with one to three edits: replace, delete or add an element."""
    resource = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(resource) if p != ("resourceType",)]
        action = draw(st.sampled_from(("replace", "replace", "delete", "add")))
        if action == "add" or not paths:
            containers = [()] + [p for p in paths if isinstance(_nested(resource, p), dict)]
            where = draw(st.sampled_from(containers))
            _nested(resource, where)[draw(st.sampled_from(ODD_KEYS))] = draw(
                st.sampled_from(ODD_VALUES)
            )
            continue
        path = draw(st.sampled_from(paths))
        parent = _parent(resource, path)
        if action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(ODD_VALUES)))
    return resource


def _nested(resource: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        resource = resource[step]
    return resource


def model_verdict(resource: dict[str, Any]) -> str | None:
    """The oracle: the full R4B model on the consumed part; None, or the first error's path."""
    try:
        model_of(resource["resourceType"]).model_validate(consumed_part(resource))
    except ValidationError as error:
        return dotted_path(PATH, error.errors(include_url=False)[0]["loc"])
    except (ValueError, TypeError, LookupError):
        return PATH
    return None


TALLY: Counter[str] = Counter()


@pytest.mark.slow  # hypothesis, 2,500 mutated resources checked against the models
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_resources())
def test_the_fast_path_agrees_with_the_models_on_the_consumed_elements(
    resource: dict[str, Any],
) -> None:
    expected = model_verdict(resource)
    fast = is_certainly_valid(resource)
    problem = validation_problem(FhirItem(PATH, resource))

    assert not (fast and expected is not None), f"fast path passed what {expected} refuses"
    assert (problem.path if problem else None) == expected
    TALLY["examples"] += 1
    TALLY["fast" if fast else "models"] += 1
    TALLY["invalid" if expected else "valid"] += 1


def test_the_differential_test_exercised_both_paths_and_both_verdicts() -> None:
    if TALLY["examples"] < EXAMPLES:  # run alone (-k): the property test has not run first
        pytest.skip("runs after the differential test")
    assert min(TALLY["fast"], TALLY["models"], TALLY["valid"], TALLY["invalid"]) >= EXAMPLES // 20


@pytest.mark.parametrize(
    "resource",
    [r for r in REAL if r["resourceType"] in CONSUMED],
    ids=lambda r: f"{r['resourceType']}-{r.get('id')}",
)
def test_resources_as_ehrs_send_them_take_the_fast_path(resource: dict[str, Any]) -> None:
    assert model_verdict(resource) is None
    assert is_certainly_valid(resource)


def test_full_scope_still_refuses_an_invalid_element_the_rules_never_read() -> None:
    lab = observation(category="laboratory")  # category is an array of CodeableConcepts

    consumed = read_patient_record(read_resources(lab, "prefetch.labs"))
    full = read_patient_record(
        read_resources(lab, "prefetch.labs"), validation=ValidationScope.FULL
    )

    assert consumed.skipped == () and len(consumed.lab_results) == 1
    assert [s.path for s in full.skipped] == ["prefetch.labs.category"]
    assert full.lab_results == ()


def test_an_element_no_fhir_type_defines_is_still_refused() -> None:
    lab = observation(valueQuantty=quantity())  # misspelt: not an Observation element
    with validation_scope(ValidationScope.CONSUMED):
        problem = validation_problem(FhirItem("r", lab))
    assert problem is not None and problem.path == "r.valueQuantty"


def test_consumed_elements_are_elements_of_their_type() -> None:
    for resource_type, elements in CONSUMED.items():
        fields = model_of(resource_type).model_fields
        declared = {field.alias or name for name, field in fields.items()}
        assert elements <= declared, resource_type


ORDINARY_ORDERS = [
    r for r in BASES if r["resourceType"] == "MedicationRequest" and "contained" not in r
]


@pytest.mark.parametrize("order", ORDINARY_ORDERS, ids=lambda r: f"MedicationRequest-{r['id']}")
def test_an_ordinary_order_is_validated_whole_by_the_fast_path(order: dict[str, Any]) -> None:
    assert model_verdict(order) is None  # consumed_part of a MedicationRequest is all of it
    assert is_certainly_valid(order)


def test_an_order_with_an_element_the_fast_path_does_not_know_goes_to_the_models() -> None:
    order = medication_request(dosageInstruction=[{"text": 5}])  # Dosage.text is a string
    assert not is_certainly_valid(order)
    problem = validation_problem(FhirItem(PATH, order))
    assert problem is not None and problem.path == f"{PATH}.dosageInstruction[0].text"
