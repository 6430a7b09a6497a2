"""The facts behind PI §2.3: current level, confirmation (policy 3) and resolution (policy 8)."""

from __future__ import annotations

import pytest

from cds_service.rules.decision import AssessedResult
from cds_service.rules.transaminases import (
    confirming_result,
    current_transaminases,
    earlier_elevation,
    highest,
)
from cds_service.rules.uln import assess_results
from fhir_mappings.values import LabResult

from .builders import LABEL, NOW, alt, ast, inr


def assessed(*labs: LabResult) -> tuple[AssessedResult, ...]:
    results, ambiguous = assess_results(labs, LABEL)
    assert not ambiguous
    return results


def test_current_level_takes_each_analytes_latest_within_the_window() -> None:
    results = assessed(alt(30), alt(130, 3), ast(90, 7), ast(200, 9))
    level = current_transaminases(results, LABEL)
    assert level is not None
    assert level.latest_time == NOW
    assert [a.result.value for a in level.current] == [30, 90]
    assert level.deciding.result.value == 90


def test_normal_latest_of_the_other_analyte_outside_the_window_is_not_current() -> None:
    level = current_transaminases(assessed(alt(200), ast(30, 7, minutes_ago=1)), LABEL)
    assert level is not None
    assert [a.result.value for a in level.current] == [200]


def test_elevated_latest_of_the_other_analyte_stays_current_however_old() -> None:
    level = current_transaminases(assessed(alt(30), ast(200, 7, minutes_ago=1)), LABEL)
    assert level is not None
    assert [a.result.value for a in level.current] == [30, 200]


def test_no_alt_or_ast_means_no_current_level() -> None:
    assert current_transaminases(assessed(inr(1.1)), LABEL) is None


@pytest.mark.parametrize(
    ("labs", "confirmed"),
    [
        pytest.param([alt(130), alt(120, 7)], True, id="7 days, exactly 3.0x"),
        pytest.param([alt(130), alt(120, 31)], True, id="policy 3: exactly 31 days confirms"),
        pytest.param([alt(130), alt(119.9, 7)], False, id="earlier just below 3x"),
        pytest.param([alt(130), alt(120, 7, minutes_ago=1)], True, id="policy 3: late repeat"),
        pytest.param([alt(130), alt(120, 31, minutes_ago=1)], False, id="31 days + 1 minute"),
        pytest.param([alt(119.9), alt(130, 2)], False, id="candidate below 3x"),
        pytest.param([alt(130)], False, id="no earlier result"),
    ],
)
def test_is_confirmed_elevation(labs: list[LabResult], confirmed: bool) -> None:
    results = assessed(*labs)
    candidate = next(a for a in results if a.result.effective == NOW)
    assert (confirming_result(candidate, results, LABEL) is not None) is confirmed


@pytest.mark.parametrize(
    ("labs", "resolved"),
    [
        pytest.param([alt(30), alt(130, 40)], True, id="normal after 3x"),
        pytest.param([alt(130), alt(130, 40)], False, id="still 3x"),
        pytest.param([alt(30), alt(110, 40)], False, id="never 3x"),
    ],
)
def test_has_resolved_after_elevation(labs: list[LabResult], resolved: bool) -> None:
    results = assessed(*labs)
    level = current_transaminases(results, LABEL)
    assert level is not None
    assert (earlier_elevation(level, results, LABEL) is not None) is resolved


def test_highest_ranks_results_without_uln_last() -> None:
    no_uln = AssessedResult(inr(9.0), None)
    with_uln = AssessedResult(alt(10), 40.0)
    assert highest([no_uln, with_uln]) is with_uln
    assert with_uln.multiple == 0.25
