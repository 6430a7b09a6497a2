"""Baseline liver tests before the first dose, and the ALT/AST monitoring cadence after it.

Implements Kynamro PI W&P 5.1 (baseline ALT, AST, alkaline phosphatase and total bilirubin; if
abnormal, start only after work-up; liver tests monthly in the first year, at least every
3 months after it) as made concrete by project policy 7, and the conservative
profile's weekly cadence (policy 1, seed guide 003 Protocol 1).

When a first mipomersen order is being placed (no prior order)
and ALT, AST, ALP or total bilirubin has no usable result within 30 days before now
Then repeat tests: the baseline is missing (due now).

When a first mipomersen order is being placed and the latest baseline ALT, AST, ALP or total
bilirubin is above its ULN
Then obtain the work-up tests (a warning, policy 14): start only after the abnormality is
explained or resolved.

When the patient is on therapy (a prior order, or chart review)
and ALT or AST has no usable result within the monitoring interval before now
Then repeat tests: monitoring is overdue (due now). The interval is 31 days in the first year of
therapy (or when the start is unknown: the safer, shorter cadence), 92 days after it; under the
conservative profile 7 days in the first 31 days of therapy (or when the start is unknown) and
within 31 days after any ALT/AST ≥3× ULN.

Edges: "within" includes its bound (a result exactly 30 or 31 days old counts); the first year
ends at exactly 365 days. `last_tested` is None when an overdue analyte was never tested.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cds_service.rules.chart import Chart
from cds_service.rules.decision import AssessedResult, Finding, FollowUpTest, Rule, rule
from cds_service.rules.transaminases import (
    by_multiple_descending,
    is_elevation,
    is_transaminase,
    latest_result,
)
from cds_service.rules.uln import is_above_uln
from fhir_mappings.values import BASELINE_ANALYTES, TRANSAMINASES, Analyte

BASELINE = rule(
    "policy-7-baseline",
    "Kynamro PI W&P 5.1 (baseline ALT, AST, alkaline phosphatase and total bilirubin before the "
    "first dose); project policy 7",
    reason_code="baseline-missing",
)
BASELINE_ABNORMAL = rule(
    "label-5.1-baseline-abnormal",
    "Kynamro PI W&P 5.1 (abnormal baseline liver tests: start only after work-up); "
    "project policies 7 and 14",
    reason_code="baseline-abnormal",
)
MONITORING_FIRST_YEAR = rule(
    "policy-7-monitoring-first-year",
    "Kynamro PI W&P 5.1 (ALT and AST monthly during the first year); project policy 7",
    reason_code="monitoring-overdue",
)
MONITORING_AFTER_FIRST_YEAR = rule(
    "policy-7-monitoring-after-first-year",
    "Kynamro PI W&P 5.1 (ALT and AST at least every 3 months after the first year); "
    "project policy 7",
    reason_code="monitoring-overdue",
)
MONITORING_CONSERVATIVE = rule(
    "conservative-weekly-monitoring",
    "Seed guide 003 Protocol 1 (weekly ALT and AST in the first month and after an "
    "elevation); project policy 1",
    reason_code="monitoring-overdue",
)
RULES: tuple[Rule, ...] = (
    BASELINE,
    BASELINE_ABNORMAL,
    MONITORING_FIRST_YEAR,
    MONITORING_AFTER_FIRST_YEAR,
    MONITORING_CONSERVATIVE,
)


def is_within_before(taken: datetime, now: datetime, window: timedelta) -> bool:
    """Return True when `taken` is at most `window` before now (later results count too)."""
    return now - taken <= window


def baseline_results(chart: Chart, analyte: Analyte) -> tuple[AssessedResult, ...]:
    """Return the analyte's usable results within the baseline window, newest first."""
    window = chart.config.baseline_window
    return tuple(
        a
        for a in chart.results_of(analyte)
        if is_within_before(a.result.effective, chart.now, window)
    )


def has_baseline_within(chart: Chart, analyte: Analyte) -> bool:
    """Return True when the analyte has a usable result within the baseline window (30 days)."""
    return bool(baseline_results(chart, analyte))


def missing_baseline(chart: Chart) -> tuple[Analyte, ...]:
    """Return the baseline analytes without a usable result within the window, in label order."""
    return tuple(a for a in BASELINE_ANALYTES if not has_baseline_within(chart, a))


def abnormal_baseline(chart: Chart) -> tuple[AssessedResult, ...]:
    """Return the latest baseline ALT, AST, ALP and total bilirubin above ULN, highest first."""
    abnormal: list[AssessedResult] = []
    for analyte in BASELINE_ANALYTES:
        latest = latest_result(baseline_results(chart, analyte), analyte)
        if latest is not None and is_above_uln(latest):
            abnormal.append(latest)
    return by_multiple_descending(abnormal)


def is_in_first_year(chart: Chart) -> bool:
    """Return True in the first year of therapy, or when the start is unknown."""
    start = chart.therapy_start
    return start is None or chart.now - start < chart.config.first_year


def is_in_conservative_first_month(chart: Chart) -> bool:
    """Return True in the conservative profile's first month, or when the start is unknown."""
    start = chart.therapy_start
    return start is None or chart.now - start < chart.config.conservative_first_month


def has_recent_elevation(chart: Chart) -> bool:
    """Return True when an ALT/AST ≥3× ULN was taken within 31 days before now (policy 1)."""
    window = chart.config.conservative_after_elevation
    return any(
        is_transaminase(a)
        and is_elevation(a, chart.config)
        and is_within_before(a.result.effective, chart.now, window)
        for a in chart.current_results
    )


def monitoring_interval(chart: Chart) -> tuple[timedelta, Rule]:
    """Return the longest allowed gap between ALT/AST tests now, and the rule setting it."""
    config = chart.config
    if chart.is_conservative and (
        is_in_conservative_first_month(chart) or has_recent_elevation(chart)
    ):
        return config.conservative_interval, MONITORING_CONSERVATIVE
    if is_in_first_year(chart):
        return config.first_year_interval, MONITORING_FIRST_YEAR
    return config.maintenance_interval, MONITORING_AFTER_FIRST_YEAR


def is_monitoring_overdue(
    latest: AssessedResult | None, now: datetime, interval: timedelta
) -> bool:
    """Return True when there is no usable result within the interval before now."""
    return latest is None or not is_within_before(latest.result.effective, now, interval)


def baseline_findings(chart: Chart) -> list[Finding]:
    """Return the missing- and abnormal-baseline findings for a first order."""
    found: list[Finding] = []
    missing = missing_baseline(chart)
    if missing:
        rule = BASELINE
        found.append(
            rule.finding(
                missing=missing,
                follow_up=(FollowUpTest.HEPATIC_FUNCTION_PANEL,),
                due=chart.now,
            )
        )
    abnormal = abnormal_baseline(chart)
    if abnormal:
        rule = BASELINE_ABNORMAL
        found.append(
            rule.finding(
                deciding=abnormal[0],
                supporting=abnormal[1:],
                follow_up=(FollowUpTest.HEPATIC_FUNCTION_PANEL, FollowUpTest.INR),
                due=chart.now,
            )
        )
    return found


def cadence_findings(chart: Chart) -> list[Finding]:
    """Return the overdue-monitoring finding for a patient on therapy."""
    interval, rule = monitoring_interval(chart)
    latest = {analyte: chart.latest(analyte) for analyte in TRANSAMINASES}
    overdue = tuple(
        analyte
        for analyte in TRANSAMINASES
        if is_monitoring_overdue(latest[analyte], chart.now, interval)
    )
    if not overdue:
        return []
    dates = [a.result.effective for analyte in overdue if (a := latest[analyte]) is not None]
    last_tested = min(dates) if len(dates) == len(overdue) else None  # None: never tested
    return [
        rule.finding(
            missing=overdue,
            last_tested=last_tested,
            follow_up=(FollowUpTest.HEPATIC_FUNCTION_PANEL,),
            due=chart.now,
        )
    ]


def findings(chart: Chart) -> list[Finding]:
    """Return the baseline findings on a first order, the cadence findings otherwise."""
    if chart.is_new_therapy:
        return baseline_findings(chart)
    return cadence_findings(chart)
