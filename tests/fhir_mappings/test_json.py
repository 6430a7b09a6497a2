"""Raw JSON readers: wrongly typed elements read as absent, never raise."""

from __future__ import annotations

import pytest

from fhir_mappings._json import number_at, objects_at, str_at


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(5, 5.0, id="integer"),
        pytest.param(5.5, 5.5, id="float"),
        pytest.param("5.50", 5.5, id="decimal-string"),
        pytest.param(True, None, id="boolean"),
        pytest.param("five", None, id="text"),
        pytest.param(float("nan"), None, id="nan"),
        pytest.param("Infinity", None, id="infinity-string"),
        # plain `json.loads` gives a longer integer literal as an int no double holds
        pytest.param(10**400, None, id="integer-no-double-holds"),
        pytest.param(-(10**400), None, id="negative-integer-no-double-holds"),
        pytest.param([5], None, id="array"),
        pytest.param(None, None, id="null"),
    ],
)
def test_number_at(value: object, expected: float | None) -> None:
    assert number_at({"value": value}, "value") == expected


def test_str_at_reads_blank_or_non_string_as_absent() -> None:
    assert str_at({"a": " ", "b": 1, "c": "x"}, "a") is None
    assert str_at({"a": " ", "b": 1, "c": "x"}, "b") is None
    assert str_at({"a": " ", "b": 1, "c": "x"}, "c") == "x"


def test_objects_at_skips_non_objects() -> None:
    assert list(objects_at({"a": [{"x": 1}, 2, "y"]}, "a")) == [{"x": 1}]
    assert list(objects_at({"a": {"x": 1}}, "a")) == []
