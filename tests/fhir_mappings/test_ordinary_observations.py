"""The one-walk reader agrees with the general path on every Observation it answers for.

It answers two questions: the result (validated), and, for results the window may leave
unread, whether it would read as usable (not validated, as `reads_as_usable`).

Differential property test (issue 13): sequences of generated and mutated liver-test
Observations are read by one `OrdinaryReader` (so what it remembers from one resource meets the
next) and by the general path: validation of the consumed elements (`validation_problem`), then
`read_lab_result` and `effective_day`. Whenever the reader answers, the general path finds the
resource valid and reads the same result, number for number (a `DecimalLiteral` keeps its
literal), and the same day. When it does not answer, the general path decides, as before.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_mappings import FhirItem
from fhir_mappings._observations import (
    effective_day,
    liver_test_code,
    read_lab_result,
    reads_as_usable,
)
from fhir_mappings._ordinary_observations import OrdinaryReader
from fhir_mappings._validation import validation_problem
from fhir_mappings.decimals import DecimalLiteral, exact_decimal
from fhir_mappings.values import LabResult, UnusableResult
from tests.fhir_builders import DROP, observation, quantity
from tests.fhir_mappings.test_consumed_validation import (
    ODD_KEYS,
    ODD_VALUES,
    REAL,
    _nested,
    _paths,
)

SEQUENCES = 800  # sequences of 1-6 resources per run
PATH = "prefetch.liverLabs.entry[{}].resource"

LIVER = [r for r in REAL if r["resourceType"] == "Observation" and liver_test_code(r)]
BUILT = [
    observation("ALT", 236, "2026-11-20T08:30:00Z", high=40),
    observation("AST", 20, "2026-11-20", high=40, comparator="<"),
    observation("TBIL", 1.1, "2026-11-20T08:30:00.123+05:30", status="preliminary"),
    observation("ALP", 3.9, "2026-11", unit="ukat/L", issued="2026-11-02T10:00:00Z"),
    observation("INR", 1.1, "2026-11-20", valueQuantity={"value": 1.1}),
    observation(
        "ALT",
        DecimalLiteral("120.00000000000000000001"),
        "2026-11-20",
        referenceRange=[
            {"low": quantity(0), "high": quantity(DecimalLiteral("40.000000000000000001"))},
            {"high": quantity(35), "type": {"coding": [{"system": "x", "code": "normal"}]}},
        ],
        meta={"versionId": "3", "lastUpdated": "2024-02-29T23:59:59.5-14:00"},
    ),
    observation("ALT", 80, "2026-11-20", status="entered-in-error"),
    observation("ALT", 80, "2026-11-20", status="registered"),
    observation("ALT", 80, "2026-11-20", unit="mmol/L"),
    observation("ALT", 80, "2026-11-20", effectiveDateTime="2026"),
    observation("AST", 90, "", effectiveDateTime=DROP, issued="2026-11-20T09:00:00Z", high=40),
    observation("INR", 1.4, "", effectiveDateTime=DROP, issued="2026-02-28T23:00:00-05:00"),
]
EXTRA_VALUES: list[Any] = [
    1,
    1.0,
    40,
    40.0,
    DecimalLiteral("40.000000000000000001"),
    "U/L",
    "ukat/L",
    "http://unitsofmeasure.org",
    "http://loinc.org",
    "1742-6",
    "preliminary",
    "cancelled",
    {"coding": [{"system": "http://loinc.org", "code": "1742-6", "userSelected": 1}]},
    {"coding": [{"system": "http://loinc.org", "code": "1742-6", "userSelected": True}]},
    [{"high": {"value": True, "unit": "U/L"}}],
    [{"high": {"value": 40, "unit": "U/L", "comparator": "<"}}],
]
VALUES = ODD_VALUES + EXTRA_VALUES
# Few values, each a trap for a reader that checks less than the models do.
LEAF_VALUES: list[Any] = [
    None, "", " ", "x ", "\u00a0", True, False, 0, 1, 1.0, -0.0, 40,
    DecimalLiteral("40.000000000000000001"), [], {}, ["x"], "2026-02-30",
    "2026-11-01T08:30:00", "2026-11-01T24:00:00Z", "2026-02-30T08:30:00Z", "<=", "ad", "U/L",
    "final", "cancelled", "Patient/p1",
]  # fmt: skip
KEYS = [*ODD_KEYS, "referenceRange", "valueQuantity", "dataAbsentReason", "userSelected"]
# The leaves the reader reads or checks itself: edited more often than the rest.
READ_LEAVES = frozenset(
    {
        "value", "unit", "code", "system", "comparator", "status", "effectiveDateTime",
        "issued", "display", "reference", "versionId", "lastUpdated", "userSelected", "id",
    }
)  # fmt: skip


@st.composite
def mutated_observation(draw: st.DrawFn) -> dict[str, Any]:
    """A real or built liver Observation, unchanged or with one to three edits."""
    resource = copy.deepcopy(draw(st.sampled_from(LIVER + BUILT)))
    for _ in range(draw(st.integers(0, 3))):
        places = [p for p in _paths(resource) if p[:1] not in (("resourceType",), ("code",))]
        action = draw(st.sampled_from(("replace", "replace", "delete", "add", "leaf", "leaf")))
        if action == "leaf":
            places = [p for p in places if p[-1] in READ_LEAVES] or places
        if action == "add" or not places:
            containers = [()] + [p for p in places if isinstance(_nested(resource, p), dict)]
            where = _nested(resource, draw(st.sampled_from(containers)))
            where[draw(st.sampled_from(KEYS))] = copy.deepcopy(draw(st.sampled_from(VALUES)))
            continue
        place = draw(st.sampled_from(places))
        parent = _nested(resource, place[:-1])
        if action == "delete":
            del parent[place[-1]]
        else:
            values = LEAF_VALUES if action == "leaf" else VALUES
            parent[place[-1]] = copy.deepcopy(draw(st.sampled_from(values)))
    return resource


def _exactly(
    first: LabResult | UnusableResult, second: LabResult | UnusableResult
) -> tuple[Any, ...]:
    """Both results' numbers as the decimals they stand for (equality alone mixes 40 and 40.0)."""

    def numbers(result: LabResult | UnusableResult) -> tuple[Any, ...]:
        if not isinstance(result, LabResult):
            return ()
        high = result.reference_high
        return (exact_decimal(result.value), None if high is None else exact_decimal(high))

    return numbers(first), numbers(second)


def _disagreement(reader: OrdinaryReader, resource: dict[str, Any], path: str) -> str | None:
    """Read `resource` both ways; say how the reader disagrees with the general path, if it does."""
    test = liver_test_code(resource)
    if test is None:
        return None
    item = FhirItem(path, resource)
    usable = reader.reads_as_usable(item, test[0])
    if usable is not None:
        TALLY["usable asked"] += 1
        if usable != reads_as_usable(item, test[0]):
            return f"reads as usable: {usable}, the general path disagrees"
    fast = reader.read(item, *test)
    TALLY["resources"] += 1
    if fast is None:
        TALLY["general path"] += 1
        return None
    TALLY["one walk"] += 1
    if validation_problem(item) is not None:
        return "the reader passed what validation refuses"
    general = read_lab_result(item, *test)
    TALLY["usable" if isinstance(general, LabResult) else "unusable"] += 1
    if fast.result != general or _exactly(fast.result, general)[0] != _exactly(general, general)[0]:
        return f"read {fast.result}, the general path {general}"
    if fast.day != effective_day(resource):
        return f"day {fast.day}, the general path {effective_day(resource)}"
    return None


TALLY: Counter[str] = Counter()


@pytest.mark.slow  # every leaf the reader reads, in every base, replaced by every trap value
def test_every_leaf_the_reader_reads_replaced_by_each_trap_value() -> None:
    disagreements: list[str] = []
    for base in LIVER + BUILT:
        leaves = [p for p in _paths(base) if p[-1] in READ_LEAVES and p[:1] != ("code",)]
        for place in leaves:
            for value in LEAF_VALUES:
                resource = copy.deepcopy(base)
                _nested(resource, place[:-1])[place[-1]] = copy.deepcopy(value)
                found = _disagreement(OrdinaryReader(), resource, PATH.format(0))
                if found is not None:
                    disagreements.append(f"{base.get('id')} {place} = {value!r}: {found}")
    assert disagreements == []


@pytest.mark.slow  # hypothesis: 800 sequences of mutated Observations against the general path
@settings(
    max_examples=SEQUENCES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(mutated_observation(), min_size=1, max_size=6))
def test_the_one_walk_reader_agrees_with_the_general_path(
    resources: list[dict[str, Any]],
) -> None:
    reader = OrdinaryReader()  # one reader for the sequence: what it remembers meets the next
    for index, resource in enumerate(resources):
        assert _disagreement(reader, resource, PATH.format(index)) is None


def test_the_differential_test_exercised_both_paths() -> None:
    if TALLY["resources"] < SEQUENCES:  # run alone (-k): the differential tests have not run
        pytest.skip("runs after the differential tests")
    least = TALLY["resources"] // 20
    counts = ("one walk", "general path", "unusable", "usable asked")
    assert min(TALLY[count] for count in counts) >= least, TALLY


@pytest.mark.parametrize("resource", LIVER, ids=lambda r: f"Observation-{r.get('id')}")
def test_liver_results_as_ehrs_send_them_take_the_one_walk(resource: dict[str, Any]) -> None:
    item = FhirItem(PATH.format(0), resource)
    fast = OrdinaryReader().read(item, *liver_test_code(resource))  # type: ignore[misc]
    assert fast is not None
    assert fast.result == read_lab_result(item, *liver_test_code(resource))  # type: ignore[misc]


CHECKED_CODE = {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]}
# Rows: an element equal by Python's `==` to one already checked, but not the same JSON.
LOOK_ALIKES = [
    (
        "userSelected-1-after-true",
        {"coding": [{"system": "http://loinc.org", "code": "1742-6", "userSelected": True}]},
        {"coding": [{"system": "http://loinc.org", "code": "1742-6", "userSelected": 1}]},
    ),
    (
        "display-as-a-number-after-text",
        {"coding": [{**CHECKED_CODE["coding"][0], "display": "1"}]},
        {"coding": [{**CHECKED_CODE["coding"][0], "display": 1}]},
    ),
]


@pytest.mark.parametrize(
    ("checked", "look_alike"), [pytest.param(a, b, id=name) for name, a, b in LOOK_ALIKES]
)
def test_a_look_alike_of_a_checked_element_is_checked_again(
    checked: dict[str, Any], look_alike: dict[str, Any]
) -> None:
    reader = OrdinaryReader()
    first = observation("ALT", 20, "2026-11-20", code=checked)
    second = observation("ALT", 20, "2026-11-20", code=look_alike)
    assert reader.read(FhirItem("a", first), *liver_test_code(first)) is not None  # type: ignore[misc]
    assert reader.read(FhirItem("b", second), *liver_test_code(second)) is None  # type: ignore[misc]


# Plain `json.loads` gives an integer literal of 309 digits or more as an int no double holds
# (the service's decoders give an infinity). The reader leaves such a value to the general
# path, which reads it as no number: the result unusable, or the reference range unused.
@pytest.mark.parametrize("number", [10**400, -(10**400)], ids=["huge", "huge-negative"])
@pytest.mark.parametrize("where", ["value", "reference range high"])
def test_an_integer_no_double_holds_is_left_to_the_general_path(number: int, where: str) -> None:
    resource = copy.deepcopy(BUILT[0])
    if where == "value":
        resource["valueQuantity"]["value"] = number
    else:
        resource["referenceRange"] = [{"high": quantity(number, "U/L")}]
    item = FhirItem(PATH.format(0), resource)
    analyte, loinc = liver_test_code(resource)  # type: ignore[misc]
    reader = OrdinaryReader()
    assert reader.read(item, analyte, loinc) is None
    assert validation_problem(item) is None  # a valid FHIR decimal, as the models say
    general = read_lab_result(item, analyte, loinc)
    if where == "value":
        assert isinstance(general, UnusableResult)
        assert reader.reads_as_usable(item, analyte) is None
        assert reads_as_usable(item, analyte) is False
    else:
        assert isinstance(general, LabResult) and general.reference_high is None
