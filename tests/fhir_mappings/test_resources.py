"""read_resources: every Bundle type and single resources, and errors that name their path."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_mappings import FhirItem, FhirMappingError, read_resources

PATIENT = {"resourceType": "Patient", "id": "p1"}
OBSERVATION = {"resourceType": "Observation", "id": "o1"}


@pytest.mark.parametrize("bundle_type", ["collection", "searchset", "transaction", None])
def test_bundle_of_any_type_yields_each_entry_with_path_and_full_url(
    bundle_type: str | None,
) -> None:
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": PATIENT},
            {"resource": OBSERVATION, "search": {"mode": "match"}},
        ],
    }
    if bundle_type is not None:
        bundle["type"] = bundle_type

    assert list(read_resources(bundle, "prefetch.labs")) == [
        FhirItem("prefetch.labs.entry[0].resource", PATIENT, "urn:uuid:1"),
        FhirItem("prefetch.labs.entry[1].resource", OBSERVATION, None),
    ]


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([{"fullUrl": "urn:uuid:2", "response": {"status": "201"}}], id="no-resource"),
        pytest.param([{"resource": None}], id="null-resource"),
        pytest.param([], id="empty-entry"),
    ],
)
def test_entries_without_resource_are_skipped(entries: list[Any]) -> None:
    bundle = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}

    assert list(read_resources(bundle, "prefetch.x")) == []


def test_bundle_without_entry_is_empty() -> None:
    assert list(read_resources({"resourceType": "Bundle", "type": "searchset"}, "p")) == []


def test_single_resource_yields_itself_at_the_given_path() -> None:
    (item,) = read_resources(PATIENT, "prefetch.patient")

    assert item == FhirItem("prefetch.patient", PATIENT)
    assert item.resource_type == "Patient"


def test_non_string_full_url_is_ignored() -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"fullUrl": 7, "resource": PATIENT}]}

    (item,) = read_resources(bundle, "b")

    assert item.full_url is None


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        pytest.param([], "prefetch.labs", "expected a JSON object, got array", id="array"),
        pytest.param(None, "prefetch.labs", "expected a JSON object, got null", id="null"),
        pytest.param("x", "prefetch.labs", "expected a JSON object, got string", id="string"),
        pytest.param(True, "prefetch.labs", "expected a JSON object, got boolean", id="boolean"),
        pytest.param(3.5, "prefetch.labs", "expected a JSON object, got number", id="number"),
        pytest.param(
            {"id": "x"}, "prefetch.labs.resourceType", "expected a resource type", id="no-type"
        ),
        pytest.param(
            {"resourceType": 4},
            "prefetch.labs.resourceType",
            "expected a resource type",
            id="numeric-type",
        ),
        pytest.param(
            {"resourceType": ""},
            "prefetch.labs.resourceType",
            "expected a resource type",
            id="empty-type",
        ),
        pytest.param(
            {"resourceType": "Bundle", "entry": {}},
            "prefetch.labs.entry",
            "expected a JSON array",
            id="entry-not-array",
        ),
        pytest.param(
            {"resourceType": "Bundle", "entry": [{"resource": PATIENT}, "x"]},
            "prefetch.labs.entry[1]",
            "expected a JSON object, got string",
            id="entry-not-object",
        ),
        pytest.param(
            {"resourceType": "Bundle", "entry": [{"resource": [1]}]},
            "prefetch.labs.entry[0].resource",
            "expected a JSON object, got array",
            id="resource-not-object",
        ),
        pytest.param(
            {"resourceType": "Bundle", "entry": [{"resource": {"id": "1"}}]},
            "prefetch.labs.entry[0].resource.resourceType",
            "expected a resource type",
            id="entry-resource-without-type",
        ),
    ],
)
def test_malformed_json_raises_with_exact_path(value: object, path: str, message: str) -> None:
    with pytest.raises(FhirMappingError) as raised:
        read_resources(value, "prefetch.labs")

    assert raised.value.path == path
    assert str(raised.value).startswith(f"{path}: {message}")
    assert isinstance(raised.value, ValueError)


def test_error_is_raised_at_the_call_not_while_iterating() -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": PATIENT}, 1]}

    with pytest.raises(FhirMappingError):
        read_resources(bundle, "b")


def test_error_message_does_not_quote_the_value() -> None:
    with pytest.raises(FhirMappingError) as raised:
        read_resources({"resourceType": "Bundle", "entry": ["Jane Doe 1970-01-01"]}, "b")

    assert "Jane" not in str(raised.value)


def test_other_json_values_are_named_by_python_type() -> None:
    with pytest.raises(FhirMappingError, match="got tuple"):
        read_resources((1, 2), "p")


# --- the loop over entries reads every entry as `FhirItem(...)` and `_resource` would ------------


def _reference_items(bundle: dict[str, Any], path: str) -> list[FhirItem]:
    """The plain reading: each entry checked as a mapping, its resource as one with a type."""
    items = []
    for index, entry in enumerate(bundle["entry"]):
        entry_path = f"{path}.entry[{index}]"
        if not isinstance(entry, Mapping):
            raise FhirMappingError(entry_path, "expected a JSON object")
        if entry.get("resource") is None:
            continue
        resource = entry["resource"]
        if not isinstance(resource, Mapping):
            raise FhirMappingError(f"{entry_path}.resource", "expected a JSON object")
        if not isinstance(resource.get("resourceType"), str) or not resource["resourceType"]:
            raise FhirMappingError(f"{entry_path}.resource.resourceType", "expected a type")
        full_url = entry.get("fullUrl")
        items.append(
            FhirItem(
                f"{entry_path}.resource", resource, full_url if isinstance(full_url, str) else None
            )
        )
    return items


_types = st.sampled_from(["Observation", "Patient", " ", "", "\t Condition", 4, None, ["x"]])
_inner = st.one_of(
    st.none(),
    st.builds(lambda t: {"resourceType": t, "id": "1"}, _types),
    st.builds(lambda t: MappingProxyType({"resourceType": t}), _types),
    st.just({"id": "1"}),
    st.sampled_from([[1], "Observation", 3]),
)
_entries = st.one_of(
    st.builds(
        lambda inner, url: (
            {"resource": inner} if url == "absent" else {"resource": inner, "fullUrl": url}
        ),
        _inner,
        st.sampled_from(["absent", "urn:uuid:1", "", 7, None]),
    ),
    st.builds(lambda inner: MappingProxyType({"resource": inner}), _inner),
    st.sampled_from([{}, "x", None, [1]]),
)


@pytest.mark.slow  # hypothesis
@settings(max_examples=500, deadline=None)
@given(entries=st.lists(_entries, max_size=6))
def test_every_entry_is_read_as_the_plain_reading_reads_it(entries: list[Any]) -> None:
    bundle = {"resourceType": "Bundle", "entry": entries}
    try:
        expected: list[FhirItem] | str = _reference_items(bundle, "p")
    except FhirMappingError as error:
        expected = error.path

    try:
        found: list[FhirItem] | str = list(read_resources(bundle, "p"))
    except FhirMappingError as error:
        found = error.path

    assert found == expected
    if isinstance(found, list) and isinstance(expected, list):
        assert [item.resource_type for item in found] == [item.resource_type for item in expected]
