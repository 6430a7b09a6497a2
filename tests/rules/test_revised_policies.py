"""The clinical policy revised on 2026-11-30: policies 3, 10, 12, 13 and 14, one row a scenario.

Days are before NOW (2026-11-23 12:00 UTC); the ULN is the default 40 U/L for ALT and AST, so
120 U/L is 3× and 200 U/L is 5×. `order(d)` is a mipomersen prescription authored d days ago
(on therapy since then); `draft()` a new order with no earlier one (a new start).
"""

from __future__ import annotations

import pytest

from cds_service.rules import Occasion
from fhir_mappings.values import Analyte

from .builders import (
    CHART_REVIEW,
    ORDERING,
    Entry,
    alp,
    alt,
    ast,
    draft,
    liver_disease,
    normal_panel,
    order,
    reasons,
    run,
    tbili,
)

WITHHOLD_5X = "withhold/transaminase-5x-uln"
WITHHOLD_CONFIRMED = "withhold/confirmed-transaminase-3x-uln"
KEEP_WITHHOLDING = "withhold/transaminase-not-resolved"
CONFIRM = "repeat-test/confirm-transaminase-3x-uln"
RESOLVED = "monitor-closely/resolved-after-elevation"
BASELINE_MISSING = "repeat-test/baseline-missing"
BASELINE_ABNORMAL = "repeat-test/baseline-abnormal"
ABOVE_ULN = "monitor-closely/transaminase-above-uln"
REASSESS = "contraindicated/active-liver-disease-on-therapy"
CONTRAINDICATED = "contraindicated/active-liver-disease"
OVERDUE = "repeat-test/monitoring-overdue"
ON_THERAPY = order(400)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param(
            [ON_THERAPY, alt(240, 8), alt(136), ast(30)],
            [WITHHOLD_CONFIRMED],
            id="policy 3+12: ALT 6x 8 days ago then 3.4x today is withheld, not repeat-to-confirm",
        ),
        pytest.param(
            [ON_THERAPY, alt(130, 31), alt(130), ast(30)],
            [WITHHOLD_CONFIRMED],
            id="policy 3: a repeat 31 days later still confirms",
        ),
        pytest.param(
            [ON_THERAPY, alt(240, 40), alt(136), ast(30, 40)],
            [KEEP_WITHHOLDING],
            id="policy 12: ALT 6x 40 days ago, still 3.4x: keep withholding",
        ),
        pytest.param(
            [ON_THERAPY, alt(200, 8), alt(130), ast(30)],
            [WITHHOLD_CONFIRMED],
            id="policy 12 (question 3): 5x then 3.25x is withhold",
        ),
        pytest.param(
            [ON_THERAPY, alt(240, 10), ast(30, 10), alt(60)],
            [KEEP_WITHHOLDING],
            id="policy 12: ALT back below 3x but no AST since: keep withholding",
        ),
        pytest.param(
            [ON_THERAPY, alt(240, 10), ast(30, 10), alt(60), ast(30)],
            [RESOLVED],
            id="policy 12: a later ALT and a later AST below 3x: resolved, policy 8 applies",
        ),
        pytest.param(
            [ON_THERAPY, alt(240, 300), ast(30, 300), alt(60, 200), alt(130, 100), ast(20)],
            [KEEP_WITHHOLDING, OVERDUE],
            id="policy 12: a later result still >=3x keeps it however long ago it began",
        ),
        pytest.param(
            [ON_THERAPY, alt(240, 300), alt(60, 200), ast(25, 200), *normal_panel(5)],
            [],
            id="policy 12: resolved long ago, normal since: no card",
        ),
        pytest.param(
            [ON_THERAPY, alt(200, 10), alt(20, 5), ast(200, 5), ast(20)],
            [KEEP_WITHHOLDING],
            id="policy 12: AST 5x beside a normal ALT, then a normal AST: no ALT later, keep "
            "withholding",
        ),
        pytest.param(
            [ON_THERAPY, alt(200, 10), alt(20, 5), ast(200, 5), ast(20), alt(20)],
            [RESOLVED],
            id="policy 12: AST 5x beside a normal ALT, then a normal AST and ALT: resolved",
        ),
    ],
)
def test_a_withhold_lasts_until_resolution(entries: list[Entry], expected: list[str]) -> None:
    assert reasons(run(*entries, occasion=CHART_REVIEW)) == expected


def test_keep_withholding_names_the_result_it_began_with_and_what_is_unresolved() -> None:
    began = alt(240, 10)
    finding = run(ON_THERAPY, began, ast(30, 10), alt(60), occasion=CHART_REVIEW).findings[0]

    assert finding.rule == "policy-12-withhold-until-resolved"
    assert finding.deciding is not None and finding.deciding.result == began
    assert finding.missing == (Analyte.AST,)


def test_a_normal_alt_beside_a_later_5x_ast_does_not_resolve_the_withhold() -> None:
    """The ALT was taken with the AST still 5×: only an ALT later than that AST can resolve."""
    finding = run(
        ON_THERAPY, alt(200, 10), alt(20, 5), ast(200, 5), ast(20), occasion=CHART_REVIEW
    ).findings[0]

    assert finding.rule == "policy-12-withhold-until-resolved"
    assert finding.missing == (Analyte.ALT,)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param(
            [draft(), alt(100, 3000), ast(163, 3000)],
            [BASELINE_MISSING],
            id="policy 13: new start, 9-year-old AST 4x: the decision is the missing baseline",
        ),
        pytest.param(
            [draft(), alt(300, 31), ast(300, 31), *normal_panel(1)],
            [],
            id="policy 13: new start, 5x older than 30 days, normal baseline: no card",
        ),
        pytest.param(
            [draft(), tbili(2.6, 40), alt(130), ast(30), alp(80), tbili(0.6)],
            [CONFIRM, BASELINE_ABNORMAL],
            id="policy 13: old bilirubin 2x never makes a new start's 3x a discontinue",
        ),
        pytest.param(
            [order(20), alt(240, 25), ast(30, 25), *normal_panel(1)],
            [],
            id="policy 13: on therapy, 6x before the course began is history",
        ),
    ],
)
def test_history_never_decides(entries: list[Entry], expected: list[str]) -> None:
    assert reasons(run(*entries, occasion=ORDERING)) == expected


def test_history_is_listed_as_abnormal_results_before_therapy() -> None:
    old_ast = ast(163, 3000)
    evaluation = run(draft(), alt(30, 3000), old_ast, occasion=ORDERING)

    assert [row.result for row in evaluation.history] == [old_ast]
    assert evaluation.history_before is not None


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param(
            [draft(), alt(60), ast(30), alp(80), tbili(0.6)],
            [BASELINE_ABNORMAL, ABOVE_ULN],
            id="policy 14: ALT 1.5x at baseline",
        ),
        pytest.param(
            [draft(), alt(30), ast(50), alp(80), tbili(0.6)],
            [BASELINE_ABNORMAL, ABOVE_ULN],
            id="policy 14: AST 1.25x at baseline",
        ),
        pytest.param(
            [draft(), alt(30), ast(30), alp(130), tbili(0.6)],
            [BASELINE_ABNORMAL],
            id="policy 14: ALP above ULN at baseline",
        ),
        pytest.param(
            [draft(), alt(30), ast(30), alp(80), tbili(1.3)],
            [BASELINE_ABNORMAL],
            id="policy 14: total bilirubin above ULN at baseline",
        ),
    ],
)
def test_an_abnormal_baseline_is_a_warning_with_work_up_tests(
    entries: list[Entry], expected: list[str]
) -> None:
    evaluation = run(*entries, occasion=ORDERING)

    assert reasons(evaluation) == expected
    finding = evaluation.findings[0]
    assert [test.value for test in finding.follow_up] == ["24325-3", "6301-6"]


@pytest.mark.parametrize(
    ("occasion", "entries", "expected"),
    [
        pytest.param(
            CHART_REVIEW,
            [order(100), *normal_panel(1), liver_disease()],
            [REASSESS],
            id="policy 10: patient-view, on mipomersen with cirrhosis: reassess therapy",
        ),
        pytest.param(
            ORDERING,
            [draft(), *normal_panel(1), liver_disease()],
            [CONTRAINDICATED],
            id="policy 10: a new order with cirrhosis: contraindicated",
        ),
    ],
)
def test_contraindicated_on_orders_and_active_courses(
    occasion: Occasion, entries: list[Entry], expected: list[str]
) -> None:
    assert reasons(run(*entries, occasion=occasion)) == expected
