"""A FHIR decimal is compared as written: no binary rounding at a threshold (issue 13)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cds_service.hooks.json_limits import load_checked
from cds_service.rules.decision import AssessedResult
from cds_service.rules.uln import reaches_multiple
from fhir_mappings._json import number_at
from fhir_mappings.decimals import DecimalLiteral, exact_decimal
from fhir_mappings.values import Analyte, Bound, LabResult, ResourceRef

# 3 × 40 U/L less the rules' relative tolerance of 1e-9 is 119.99999988: the edge of "≥ 3×".
EDGE = "119.99999988"
JUST_BELOW = "119.9999998799999999999"  # a float rounds it to the edge itself


def _decoded_value(literal: str) -> float:
    body = f'{{"valueQuantity":{{"value":{literal}}}}}'.encode()
    decoded = load_checked(body.decode(), body, parse_constant=None)
    value = number_at(decoded["valueQuantity"], "value")
    assert value is not None
    return value


def _reaches_three_times(value: float) -> bool:
    result = LabResult(
        Analyte.ALT,
        "1742-6",
        value,
        Bound.EXACT,
        datetime(2026, 11, 1, tzinfo=UTC),
        ResourceRef("Observation", "o", "r"),
    )
    return reaches_multiple(AssessedResult(result=result, uln=40.0, uln_is_default=False), 3.0)


@pytest.mark.parametrize(
    ("literal", "reaches"),
    [
        pytest.param("120", True, id="exactly-3x"),
        pytest.param("120.0", True, id="exactly-3x-decimal"),
        pytest.param(EDGE, True, id="at-the-tolerance-edge"),
        pytest.param(JUST_BELOW, False, id="below-the-edge-by-1e-19"),
    ],
)
def test_a_value_at_the_3x_boundary_is_compared_as_written(literal: str, reaches: bool) -> None:
    assert float(JUST_BELOW) == float(EDGE)  # what a binary float would have compared
    assert _reaches_three_times(_decoded_value(literal)) is reaches


def test_a_long_literal_keeps_its_digits_and_a_short_one_is_a_plain_float() -> None:
    long_value = _decoded_value(JUST_BELOW)
    assert isinstance(long_value, DecimalLiteral)
    assert exact_decimal(long_value) == Decimal(JUST_BELOW)
    short_value = _decoded_value("0.36")
    assert type(short_value) is float and exact_decimal(short_value) == Decimal("0.36")
