"""Kynamro PI W&P 5.1 baseline and cadence as set by policy 7; the conservative cadence (policy 1).

Edges: a baseline result exactly 30 days old counts; ALT/AST exactly 31 days old (first year) or
92 days old (after it) are not overdue, one minute more is; the first year ends at 365 days.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from cds_service.rules import Occasion, RuleConfig
from fhir_mappings.values import Analyte, LabResult, MedicationOrder

from .builders import (
    CHART_REVIEW,
    CONSERVATIVE,
    LABEL,
    NOW,
    ORDERING,
    ago,
    alp,
    alt,
    ast,
    draft,
    normal_panel,
    order,
    reasons,
    run,
    tbili,
)

BASELINE_MISSING = "repeat-test/baseline-missing"
BASELINE_ABNORMAL = "repeat-test/baseline-abnormal"  # a warning since policy 14
OVERDUE = "repeat-test/monitoring-overdue"
ABOVE_ULN = "monitor-closely/transaminase-above-uln"
RESOLVED = "monitor-closely/resolved-after-elevation"

Entry = LabResult | MedicationOrder


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param([*normal_panel()], [], id="complete baseline today"),
        pytest.param([*normal_panel(30)], [], id="complete baseline exactly 30 days old"),
        pytest.param(
            [alt(25), ast(22), tbili(0.6), alp(80, 30, minutes_ago=1)],
            [BASELINE_MISSING],
            id="ALP 30 days + 1 minute old: stale",
        ),
        pytest.param([], [BASELINE_MISSING], id="no baseline at all"),
        pytest.param(
            [alt(25), ast(22), tbili(0.6), alp(121)], [BASELINE_ABNORMAL], id="ALP above ULN"
        ),
        pytest.param([alt(25), ast(22), tbili(0.6), alp(120)], [], id="ALP exactly at ULN"),
        pytest.param(
            [alt(25), ast(22), tbili(1.3), alp(80)], [BASELINE_ABNORMAL], id="bilirubin above ULN"
        ),
        pytest.param(
            [alt(25), ast(22), tbili(1.3, 2), tbili(0.9), alp(80)],
            [],
            id="bilirubin back to normal: latest counts",
        ),
        pytest.param(
            [alt(50), ast(22), tbili(0.6), alp(80)],
            [BASELINE_ABNORMAL, ABOVE_ULN],
            id="policy 14: ALT above ULN at baseline: work-up",
        ),
        pytest.param(
            [
                order(200, status="cancelled"),
                order(100, status="entered-in-error"),
                *normal_panel(),
            ],
            [],
            id="cancelled and entered-in-error orders are not prior therapy",
        ),
        pytest.param(
            [order(200, status="draft"), alt(25, 20), ast(22, 20)],
            [BASELINE_MISSING],
            id="a draft order in the history is not prior therapy",
        ),
        pytest.param(
            [order(200, status="stopped"), alt(25, 20), ast(22, 20)],
            [],
            id="a stopped prior order: ongoing therapy, no baseline needed",
        ),
    ],
)
def test_baseline_before_first_order(entries: list[Entry], expected: list[str]) -> None:
    assert reasons(run(*entries, draft(), occasion=ORDERING)) == expected


def test_baseline_missing_names_the_analytes_in_label_order() -> None:
    finding = run(tbili(0.6), ast(22), occasion=ORDERING).findings[0]
    assert finding.missing == (Analyte.ALT, Analyte.ALP)
    assert finding.rule == "policy-7-baseline"
    assert finding.due == NOW


def test_baseline_abnormal_quotes_the_highest_multiple_first() -> None:
    bilirubin, phosphatase = tbili(2.0), alp(130)
    finding = run(alt(25), ast(22), bilirubin, phosphatase, occasion=ORDERING).findings[0]
    assert finding.deciding is not None and finding.deciding.result == bilirubin
    assert [s.result for s in finding.supporting] == [phosphatase]


@pytest.mark.parametrize(
    ("config", "occasion", "entries", "expected"),
    [
        pytest.param(
            LABEL,
            CHART_REVIEW,
            [order(200), alt(25, 31), ast(22, 31)],
            [],
            id="first year: ALT/AST exactly 31 days old",
        ),
        pytest.param(
            LABEL,
            CHART_REVIEW,
            [order(200), alt(25, 31, minutes_ago=1), ast(22, 31, minutes_ago=1)],
            [OVERDUE],
            id="first year: 31 days + 1 minute",
        ),
        pytest.param(
            LABEL,
            CHART_REVIEW,
            [order(400), alt(25, 92), ast(22, 92)],
            [],
            id="after first year: exactly 92 days old",
        ),
        pytest.param(
            LABEL,
            CHART_REVIEW,
            [order(400), alt(25, 92, minutes_ago=1), ast(22, 20)],
            [OVERDUE],
            id="after first year: 92 days + 1 minute",
        ),
        pytest.param(
            LABEL,
            CHART_REVIEW,
            [order(365), alt(25, 40), ast(22, 40)],
            [],
            id="therapy exactly 365 days: 92-day cadence",
        ),
        pytest.param(
            LABEL,
            CHART_REVIEW,
            [order(364), alt(25, 40), ast(22, 40)],
            [OVERDUE],
            id="therapy 364 days: still 31-day cadence",
        ),
        pytest.param(
            LABEL,
            CHART_REVIEW,
            [order(None), alt(25, 40), ast(22, 40)],
            [OVERDUE],
            id="unknown therapy start: 31-day cadence",
        ),
        pytest.param(
            LABEL,
            CHART_REVIEW,
            [alt(25, 40), ast(22, 40)],
            [OVERDUE],
            id="chart review without prior order: cadence applies",
        ),
        pytest.param(
            LABEL,
            ORDERING,
            [order(400), alt(25, 60), ast(22, 60)],
            [],
            id="renewal after first year: cadence, no baseline",
        ),
        pytest.param(
            CONSERVATIVE,
            CHART_REVIEW,
            [order(10), alt(25, 7), ast(22, 7)],
            [],
            id="conservative first month: exactly 7 days",
        ),
        pytest.param(
            CONSERVATIVE,
            CHART_REVIEW,
            [order(10), alt(25, 7, minutes_ago=1), ast(22, 7, minutes_ago=1)],
            [OVERDUE],
            id="conservative first month: 7 days + 1 minute",
        ),
        pytest.param(
            CONSERVATIVE,
            CHART_REVIEW,
            [order(31), alt(25, 8), ast(22, 8)],
            [],
            id="conservative day 31: monthly again",
        ),
        pytest.param(
            CONSERVATIVE,
            CHART_REVIEW,
            [order(200), alt(130, 20), alt(25, 8), ast(22, 8)],
            [OVERDUE, RESOLVED],
            id="conservative: weekly within 31 days after an elevation",
        ),
        pytest.param(
            CONSERVATIVE,
            CHART_REVIEW,
            [order(200), alt(130, 32), alt(25, 8), ast(22, 8)],
            [RESOLVED],
            id="conservative: elevation 32 days ago, monthly again",
        ),
        pytest.param(
            CONSERVATIVE,
            CHART_REVIEW,
            [order(None), alt(25, 8), ast(22, 8)],
            [OVERDUE],
            id="conservative, unknown start: weekly",
        ),
    ],
)
def test_monitoring_cadence(
    config: RuleConfig, occasion: Occasion, entries: list[Entry], expected: list[str]
) -> None:
    assert reasons(run(*entries, draft(), occasion=occasion, config=config)) == expected


@pytest.mark.parametrize(
    ("entries", "missing", "last_tested"),
    [
        pytest.param([], (Analyte.ALT, Analyte.AST), None, id="never tested"),
        pytest.param([alt(25, 40), ast(22, 50)], (Analyte.ALT, Analyte.AST), ago(50), id="both"),
        pytest.param([alt(25, 3), ast(22, 50)], (Analyte.AST,), ago(50), id="AST only"),
        pytest.param([ast(22, 50)], (Analyte.ALT, Analyte.AST), None, id="ALT never tested"),
    ],
)
def test_overdue_names_the_analytes_and_last_test(
    entries: list[Entry], missing: tuple[Analyte, ...], last_tested: object
) -> None:
    finding = run(order(200), *entries).findings[0]
    assert finding.rule == "policy-7-monitoring-first-year"
    assert finding.missing == missing
    assert finding.last_tested == last_tested
    assert finding.due == NOW


@pytest.mark.parametrize(
    ("config", "start", "rule"),
    [
        pytest.param(LABEL, 100, "policy-7-monitoring-first-year", id="label first year"),
        pytest.param(LABEL, 500, "policy-7-monitoring-after-first-year", id="label after"),
        pytest.param(CONSERVATIVE, 5, "conservative-weekly-monitoring", id="conservative"),
    ],
)
def test_overdue_names_the_cadence_rule(config: RuleConfig, start: float, rule: str) -> None:
    assert run(order(start), config=config).findings[0].rule == rule


def test_therapy_start_is_the_earliest_authored_order() -> None:
    evaluation = run(order(300), order(None), order(100), *normal_panel())
    assert evaluation.therapy_start == ago(300)
    new = run(*normal_panel(), occasion=ORDERING)
    assert new.therapy_start == NOW
    unknown = run(*normal_panel(), orders=())
    assert unknown.therapy_start is None


def test_results_after_now_count() -> None:
    assert reasons(run(order(200), alt(25, -1), ast(22, -1), now=NOW)) == []
    assert reasons(run(order(200), alt(25), ast(22), now=NOW - timedelta(days=2))) == []
