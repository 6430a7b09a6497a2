"""ULN source and censored values (policy 4) and exact "≥" boundaries (policy 2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cds_service.rules.decision import AssessedResult
from cds_service.rules.uln import (
    _ALMOST_ONE,
    _EXACT,
    assess_result,
    exact,
    is_above_uln,
    reaches_multiple,
)
from fhir_mappings.decimals import DecimalLiteral
from fhir_mappings.values import Bound, LabResult, UnusableReason, UnusableResult

from .builders import LABEL, alp, alt, inr, tbili


@pytest.mark.parametrize(
    ("result", "uln", "uln_is_default"),
    [
        pytest.param(alt(30), 40.0, True, id="ALT without range: default 40 U/L"),
        pytest.param(alt(30, uln=33), 33.0, False, id="ALT with its own range high"),
        pytest.param(alt(30, uln=0), 40.0, True, id="range high 0 is ignored: default"),
        pytest.param(alt(30, uln=float("inf")), 40.0, True, id="infinite range high: default"),
        pytest.param(tbili(0.5), 1.2, True, id="total bilirubin default 1.2 mg/dL"),
        pytest.param(alp(80), 120.0, True, id="ALP default 120 U/L"),
        pytest.param(inr(1.1), None, False, id="INR has no ULN"),
        pytest.param(inr(1.1, uln=1.2), 1.2, False, id="INR with a range high keeps it"),
    ],
)
def test_uln_source(result: LabResult, uln: float | None, uln_is_default: bool) -> None:
    assessed = assess_result(result, LABEL)
    assert assessed == AssessedResult(result, uln, uln_is_default)


@pytest.mark.parametrize(
    ("result", "usable"),
    [
        pytest.param(alt(30, bound=Bound.AT_MOST), True, id="ALT <=30: normal"),
        pytest.param(alt(40, bound=Bound.AT_MOST), True, id="ALT <=40 (at ULN): normal"),
        pytest.param(alt(41, bound=Bound.AT_MOST), False, id="ALT <=41 (above ULN): ambiguous"),
        pytest.param(alt(1000, bound=Bound.AT_LEAST), True, id="ALT >=1000: floor 25x used"),
        pytest.param(alt(120, bound=Bound.AT_LEAST), True, id="ALT >=120: floor exactly 3x"),
        pytest.param(alt(119, bound=Bound.AT_LEAST), False, id="ALT >=119: below 3x ambiguous"),
        pytest.param(tbili(2.4, bound=Bound.AT_LEAST), True, id="TBili >=2.4: floor 2x used"),
        pytest.param(tbili(2.3, bound=Bound.AT_LEAST), False, id="TBili >=2.3: ambiguous"),
        pytest.param(alp(121, bound=Bound.AT_LEAST), True, id="ALP >=121: above ULN"),
        pytest.param(alp(120, bound=Bound.AT_LEAST), False, id="ALP >=120: ambiguous"),
        pytest.param(inr(6, bound=Bound.AT_LEAST), True, id="INR >=6: no ULN, kept"),
        pytest.param(inr(1, bound=Bound.AT_MOST), True, id="INR <=1: no ULN, kept"),
    ],
)
def test_censored_values(result: LabResult, usable: bool) -> None:
    assessed = assess_result(result, LABEL)
    if usable:
        assert isinstance(assessed, AssessedResult)
        return
    assert isinstance(assessed, UnusableResult)
    assert assessed.reason is UnusableReason.AMBIGUOUS
    assert assessed.source == result.source
    assert assessed.effective == result.effective
    assert "unknown" in assessed.detail


def test_ambiguous_detail_names_the_bound_and_the_uln() -> None:
    at_most = assess_result(alt(200, bound=Bound.AT_MOST), LABEL)
    at_least = assess_result(alt(100, bound=Bound.AT_LEAST), LABEL)
    floor_alp = assess_result(alp(100, bound=Bound.AT_LEAST), LABEL)
    assert isinstance(at_most, UnusableResult)
    assert isinstance(at_least, UnusableResult)
    assert isinstance(floor_alp, UnusableResult)
    assert (
        at_most.detail
        == "reported as at most 200 U/L, above the ULN of 40 U/L: the level is unknown"
    )
    assert at_least.detail == (
        "reported as at least 100 U/L with a ULN of 40 U/L: whether it reaches 3× ULN is unknown"
    )
    assert floor_alp.detail.endswith("whether it reaches the ULN is unknown")


def test_non_finite_value_is_invalid() -> None:
    assessed = assess_result(alt(float("nan")), LABEL)
    assert isinstance(assessed, UnusableResult)
    assert assessed.reason is UnusableReason.INVALID


@pytest.mark.parametrize(
    ("value", "uln", "multiple", "reaches"),
    [
        pytest.param(120, 40, 3.0, True, id="120/40 is exactly 3.0x"),
        pytest.param(119.99, 40, 3.0, False, id="119.99/40 is below 3x"),
        pytest.param(200, 40, 5.0, True, id="200/40 is exactly 5.0x"),
        pytest.param(199.99, 40, 5.0, False, id="199.99/40 is below 5x"),
        pytest.param(0.36, 0.12, 3.0, True, id="0.36/0.12 is exactly 3x (no float drift)"),
        pytest.param(3 * 0.1, 0.1, 3.0, True, id="3*0.1 against 0.1 is 3x"),
        pytest.param(2.4, 1.2, 2.0, True, id="bilirubin 2.4/1.2 is exactly 2x"),
        pytest.param(2.39, 1.2, 2.0, False, id="bilirubin 2.39/1.2 is below 2x"),
        pytest.param(359.99999999999994, 120, 3.0, True, id="conversion noise at 3x counts"),
        pytest.param(99, 33, 3.0, True, id="99 against a range high of 33 is 3x"),
    ],
)
def test_reaches_multiple(value: float, uln: float, multiple: float, reaches: bool) -> None:
    assessed = AssessedResult(alt(value, uln=uln), uln)
    assert reaches_multiple(assessed, multiple) is reaches


def test_without_uln_nothing_is_reached_or_above() -> None:
    assessed = AssessedResult(inr(9), None)
    assert not reaches_multiple(assessed, 1.0)
    assert not is_above_uln(assessed)
    assert assessed.multiple is None


@pytest.mark.parametrize(
    ("value", "above"),
    [
        pytest.param(40, False, id="at ULN: normal"),
        pytest.param(40.01, True, id="just above ULN"),
    ],
)
def test_is_above_uln(value: float, above: bool) -> None:
    assert is_above_uln(AssessedResult(alt(value), 40.0)) is above


def _decimal_reaches(value: float, uln: float, multiple: float) -> bool:
    """Policy 2's "≥" worked out in decimals only, as before the float shortcut."""
    threshold = _EXACT.multiply(exact(multiple), exact(uln))
    return exact(value) >= _EXACT.multiply(threshold, _ALMOST_ONE)


_MULTIPLES = st.sampled_from([1.0, 2.0, 3.0, 5.0, 8.0])
_ULNS = st.one_of(
    st.sampled_from([0.12, 1.2, 33.0, 40.0, 120.0]),
    st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False),
)


@st.composite
def _near_and_far(draw: st.DrawFn) -> tuple[float, float, float]:
    """A value, ULN and multiple: the value often at the threshold, or within a hair of it."""
    uln, multiple = draw(_ULNS), draw(_MULTIPLES)
    threshold = multiple * uln
    value = draw(
        st.one_of(
            st.just(threshold),
            st.sampled_from([threshold * (1 + k * 1e-7) for k in (-20, -11, -10, -9, 9, 10, 11)]),
            st.floats(min_value=threshold * 0.999, max_value=threshold * 1.001),
            st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
            st.builds(DecimalLiteral, st.decimals(min_value=0, max_value=10_000, places=17).map(
                lambda number: f"{number:.17f}"
            )),
        )
    )  # fmt: skip
    return value, uln, multiple


@pytest.mark.slow  # hypothesis
@given(_near_and_far())
@hypothesis_settings(max_examples=300)
def test_the_float_shortcut_answers_as_decimals_do(case: tuple[float, float, float]) -> None:
    value, uln, multiple = case
    assessed = AssessedResult(alt(value, uln=uln), uln)
    assert reaches_multiple(assessed, multiple) is _decimal_reaches(value, uln, multiple)
    assert is_above_uln(assessed) is (exact(value) > exact(uln))
