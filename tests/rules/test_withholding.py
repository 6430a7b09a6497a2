"""Kynamro PI §2.3 rows ≥3× and ≥5× ULN, confirmation (policy 3) and both profiles (policy 1).

Every row is a patient on therapy (a prior order 200 days ago) with ALT and AST current, so only
the transaminase rules speak. Values in U/L against the default ULN of 40 unless `uln=` is given.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.rules import FollowUpTest, RuleConfig
from fhir_mappings.values import Analyte, Bound, LabResult

from .builders import CONSERVATIVE, LABEL, NOW, ago, alp, alt, ast, inr, order, reasons, run, tbili

ON_THERAPY = order(200)

WITHHOLD_5X = "withhold/transaminase-5x-uln"
WITHHOLD_CONFIRMED = "withhold/confirmed-transaminase-3x-uln"
WITHHOLD_PENDING = "withhold/transaminase-3x-uln-pending-repeat"
CONFIRM = "repeat-test/confirm-transaminase-3x-uln"
ABOVE_ULN = "monitor-closely/transaminase-above-uln"


@pytest.mark.parametrize(
    ("config", "labs", "expected"),
    [
        # ≥5× ULN: withhold, no confirmation step.
        pytest.param(LABEL, [alt(200), ast(30)], [WITHHOLD_5X], id="label: ALT exactly 5.0x"),
        pytest.param(LABEL, [alt(30), ast(200)], [WITHHOLD_5X], id="label: AST exactly 5.0x"),
        pytest.param(LABEL, [alt(199.9), ast(30)], [CONFIRM], id="label: ALT just below 5x"),
        pytest.param(
            LABEL, [alt(1000, bound=Bound.AT_LEAST), ast(30)], [WITHHOLD_5X], id="label: ALT >1000"
        ),
        # ≥3× and <5× ULN: confirm with a repeat within one week.
        pytest.param(LABEL, [alt(120), ast(30)], [CONFIRM], id="label: ALT exactly 3.0x"),
        pytest.param(LABEL, [alt(119.9), ast(30)], [ABOVE_ULN], id="label: ALT just below 3x"),
        pytest.param(
            LABEL,
            [alt(100, uln=33), ast(30)],
            [CONFIRM],
            id="label: range-high ULN 33 makes 100 U/L 3.03x",
        ),
        pytest.param(
            LABEL, [alt(100), ast(30)], [ABOVE_ULN], id="label: default ULN 40 makes 100 U/L 2.5x"
        ),
        pytest.param(
            LABEL,
            [alt(130), alt(125, 7), ast(30), ast(30, 7)],
            [WITHHOLD_CONFIRMED],
            id="label: confirmed by ALT exactly 7 days earlier",
        ),
        pytest.param(
            LABEL,
            [alt(130), alt(125, 31, minutes_ago=1), ast(30)],
            [CONFIRM],
            id="label: 31 days + 1 minute earlier does not confirm",
        ),
        pytest.param(
            LABEL,
            [alt(130), alt(125, 8), ast(30)],
            [WITHHOLD_CONFIRMED],
            id="policy 3: a repeat 8 days later still confirms",
        ),
        pytest.param(
            LABEL,
            [alt(130), ast(130, 3)],
            [WITHHOLD_CONFIRMED],
            id="label: ALT confirmed by an AST 3x three days earlier",
        ),
        pytest.param(
            LABEL,
            [alt(130), alt(100, 2), alt(130, 4), ast(30)],
            [CONFIRM],
            id="label: a result below 3x in between breaks confirmation",
        ),
        pytest.param(
            LABEL,
            [alt(130), ast(100, 2), alt(130, 4), ast(30, 4)],
            [CONFIRM],
            id="label: an AST below 3x in between breaks confirmation too",
        ),
        pytest.param(
            LABEL,
            [alt(130), ast(130)],
            [CONFIRM],
            id="label: ALT and AST of one specimen do not confirm each other",
        ),
        pytest.param(
            LABEL,
            [alt(130), alt(130, 2), ast(100, 2)],
            [WITHHOLD_CONFIRMED],
            id="label: below-3x AST at the confirming instant is not in between",
        ),
        pytest.param(
            LABEL,
            [alt(150), alt(20, 1), ast(130, 2), ast(130, 5)],
            [WITHHOLD_CONFIRMED],
            id="label: a higher unconfirmed ALT does not hide a confirmed AST",
        ),
        pytest.param(
            LABEL,
            [alt(130, 20), ast(30)],
            ["repeat-test/confirm-transaminase-3x-uln"],
            id="label: ALT 3x never repeated stays current beside a newer normal AST",
        ),
        # Conservative profile: withhold at any ≥3× pending the repeat.
        pytest.param(
            CONSERVATIVE, [alt(120), ast(30)], [WITHHOLD_PENDING], id="conservative: exactly 3.0x"
        ),
        pytest.param(
            CONSERVATIVE, [alt(119.9), ast(30)], [ABOVE_ULN], id="conservative: just below 3x"
        ),
        pytest.param(
            CONSERVATIVE, [alt(200), ast(30)], [WITHHOLD_5X], id="conservative: exactly 5.0x"
        ),
        pytest.param(
            CONSERVATIVE,
            [alt(130), alt(125, 7), ast(30), ast(30, 7)],
            [WITHHOLD_CONFIRMED],
            id="conservative: confirmed",
        ),
    ],
)
def test_dose_modification_table(
    config: RuleConfig, labs: list[LabResult], expected: list[str]
) -> None:
    assert reasons(run(ON_THERAPY, *labs, config=config)) == expected


def test_withhold_names_the_evidence() -> None:
    earlier = alt(125, 7)
    latest = alt(130)
    finding = run(ON_THERAPY, latest, earlier, ast(30), ast(30, 7)).findings[0]
    assert finding.rule == "policy-3-confirmed-elevation"
    assert "§2.3" in finding.source
    assert finding.deciding is not None and finding.deciding.result == latest
    assert [s.result for s in finding.supporting] == [earlier]


@pytest.mark.parametrize(
    ("extra", "follow_up"),
    [
        pytest.param([], (FollowUpTest.HEPATIC_FUNCTION_PANEL, FollowUpTest.INR), id="none done"),
        pytest.param([tbili(0.5, 7), alp(90, 7), inr(1.0, 7)], (), id="all done a week before"),
        pytest.param([tbili(0.5, -1), alp(90, -1), inr(1.0, -1)], (), id="all done after it"),
        pytest.param(
            [tbili(0.5, 8), alp(90, 1), inr(1.0, 1)],
            (FollowUpTest.HEPATIC_FUNCTION_PANEL,),
            id="bilirubin 8 days before: panel",
        ),
        pytest.param(
            [tbili(0.5, 1), inr(1.0, 1)], (FollowUpTest.HEPATIC_FUNCTION_PANEL,), id="no ALP: panel"
        ),
        pytest.param(
            [tbili(0.5, 1), alp(90, 1), inr(1.0, 30)], (FollowUpTest.INR,), id="old INR: INR"
        ),
    ],
)
def test_withhold_asks_for_tests_not_already_done(
    extra: list[LabResult], follow_up: tuple[FollowUpTest, ...]
) -> None:
    finding = run(ON_THERAPY, alt(250), ast(30), *extra).findings[0]
    assert finding.follow_up == follow_up
    assert finding.due == NOW + timedelta(days=7)


@pytest.mark.parametrize(
    ("days_ago", "due"),
    [
        pytest.param(2, ago(-5), id="elevation 2 days ago: due in 5 days"),
        pytest.param(7, NOW, id="elevation exactly 7 days ago: due now"),
        pytest.param(10, NOW, id="week passed: due now"),
    ],
)
def test_confirming_repeat_is_due_within_a_week(days_ago: float, due: object) -> None:
    finding = run(ON_THERAPY, alt(130, days_ago), ast(30, days_ago)).findings[0]
    assert finding.rule == "label-2.3-confirm-3x-uln"
    assert finding.due == due
    assert finding.follow_up == (FollowUpTest.HEPATIC_FUNCTION_PANEL,)


def test_conservative_pending_withhold_orders_the_repeat_and_missing_tests() -> None:
    finding = run(ON_THERAPY, alt(130, 2), ast(30, 2), config=CONSERVATIVE).findings[0]
    assert finding.rule == "conservative-withhold-3x-uln"
    assert finding.follow_up == (FollowUpTest.HEPATIC_FUNCTION_PANEL, FollowUpTest.INR)
    assert finding.due == ago(-5)
    done = run(
        ON_THERAPY, alt(130), ast(30), tbili(0.5), alp(90), inr(1.0), config=CONSERVATIVE
    ).findings[0]
    assert done.follow_up == (FollowUpTest.HEPATIC_FUNCTION_PANEL,)


def test_deciding_result_is_the_highest_multiple_alt_first_on_a_tie() -> None:
    tie = run(ON_THERAPY, alt(240), ast(240)).findings[0]
    assert tie.deciding is not None and tie.deciding.result.analyte is Analyte.ALT
    higher_ast = run(ON_THERAPY, alt(210), ast(240)).findings[0]
    assert higher_ast.deciding is not None and higher_ast.deciding.result.analyte is Analyte.AST


def test_two_results_of_one_analyte_at_one_instant_the_higher_counts() -> None:
    assert reasons(run(ON_THERAPY, alt(30), alt(210), ast(30))) == [WITHHOLD_5X]
