"""Withhold mipomersen for a transaminase elevation, or confirm the elevation first.

Implements the first two rows of the Kynamro PI §2.3 dose modification table and the boxed
warning ("withhold the dose if the ALT or AST is ≥3 times the ULN"), with project policies 1
(profiles), 2 (≥ thresholds) and 3 (confirmation).

When a current ALT or AST is ≥5× ULN
Then withhold, no confirmation step (both profiles).

When a current ALT or AST is ≥3× ULN and confirmed by an earlier ALT or AST ≥3× ULN at most
31 days before it, nothing below 3× ULN in between
Then withhold (both profiles); the confirming result is the supporting evidence.

When an earlier ALT or AST warranted withholding (≥5× ULN, or confirmed) and no ALT and AST
taken after it are both below 3× ULN
Then keep withholding (both profiles, policy 12), whatever the current level and however long
ago it began; `missing` names the transaminases not yet back below 3× ULN.

When the elevation is ≥3× and <5× ULN and not confirmed
Then, under the label profile, repeat the test within one week of it (due now if that week has
passed); under the conservative profile, withhold now pending that repeat (seed guide 003).

A withhold also asks for the liver tests "not already done (e.g. total bilirubin, alkaline
phosphatase, INR)": the hepatic function panel when total bilirubin or ALP has no usable result
taken at most one week before the elevation (or after it), INR when INR has none in that span
(the brief left INR's span open; a years-old INR is not "already done" for this episode), due
one week from now. The conservative pending withhold always asks for the panel, which carries the
repeat ALT/AST, and is due when the repeat is.
"""

from __future__ import annotations

from datetime import datetime

from cds_service.rules.chart import Chart
from cds_service.rules.decision import AssessedResult, Finding, FollowUpTest, Rule, rule
from cds_service.rules.transaminases import confirmed_elevation, elevations, is_severe_elevation
from fhir_mappings.values import BASELINE_ANALYTES, TRANSAMINASES, Analyte

WITHHOLD_SEVERE = rule(
    "label-2.3-withhold-5x-uln",
    "Kynamro PI boxed warning and §2.3 dose modification table (ALT or AST ≥5× ULN: withhold, "
    "no confirmation step); project policy 2",
    reason_code="transaminase-5x-uln",
)
WITHHOLD_CONFIRMED = rule(
    "policy-3-confirmed-elevation",
    "Kynamro PI §2.3 dose modification table (ALT or AST ≥3× ULN confirmed by a repeat "
    "measurement: withhold); project policy 3",
    reason_code="confirmed-transaminase-3x-uln",
)
WITHHOLD_UNTIL_RESOLVED = rule(
    "policy-12-withhold-until-resolved",
    "Kynamro PI §2.3 dose modification table (resume only after transaminases resolve to "
    "<3× ULN); project policy 12",
    reason_code="transaminase-not-resolved",
)
WITHHOLD_PENDING_REPEAT = rule(
    "conservative-withhold-3x-uln",
    "Seed guide 003 (pause at ALT or AST ≥3× ULN, repeat within one week); project policy 1",
    reason_code="transaminase-3x-uln-pending-repeat",
)
CONFIRM_ELEVATION = rule(
    "label-2.3-confirm-3x-uln",
    "Kynamro PI §2.3 dose modification table (ALT or AST ≥3× and <5× ULN: confirm with a repeat "
    "measurement within one week); project policy 3",
    reason_code="confirm-transaminase-3x-uln",
)
RULES: tuple[Rule, ...] = (
    WITHHOLD_SEVERE,
    WITHHOLD_CONFIRMED,
    WITHHOLD_UNTIL_RESOLVED,
    WITHHOLD_PENDING_REPEAT,
    CONFIRM_ELEVATION,
)


# PI §2.3 "additional liver-related tests not already done": the baseline tests besides ALT/AST.
_PANEL_ANALYTES = tuple(a for a in BASELINE_ANALYTES if a not in TRANSAMINASES)


def has_result_since(chart: Chart, analyte: Analyte, since: datetime) -> bool:
    """Return True when the analyte has a usable result taken at or after `since`."""
    return any(a.result.effective >= since for a in chart.current_of(analyte))


def additional_tests(chart: Chart, elevation: AssessedResult) -> tuple[FollowUpTest, ...]:
    """Return the §2.3 follow-up tests not already done around the elevation."""
    since = elevation.result.effective - chart.config.repeat_within
    tests: list[FollowUpTest] = []
    if not all(has_result_since(chart, analyte, since) for analyte in _PANEL_ANALYTES):
        tests.append(FollowUpTest.HEPATIC_FUNCTION_PANEL)
    if not has_result_since(chart, Analyte.INR, since):
        tests.append(FollowUpTest.INR)
    return tuple(tests)


def repeat_due(chart: Chart, elevation: AssessedResult) -> datetime:
    """Return when the confirming repeat is due: a week after the elevation, or now if passed."""
    return max(elevation.result.effective + chart.config.repeat_within, chart.now)


def findings(chart: Chart) -> list[Finding]:
    """Return the withhold or confirm-first finding for the current transaminase level."""
    if chart.transaminases is None:
        return []
    config = chart.config
    elevated = elevations(chart.transaminases, config)
    if not elevated:
        return _until_resolved(chart)
    deciding = elevated[0]
    if is_severe_elevation(deciding, config):
        return [_withhold(chart, WITHHOLD_SEVERE, deciding)]
    confirmed = confirmed_elevation(chart.transaminases, chart.current_results, config)
    if confirmed is not None:
        elevation, confirming = confirmed
        return [
            _withhold(
                chart,
                WITHHOLD_CONFIRMED,
                elevation,
                supporting=(confirming,),
            )
        ]
    if chart.is_withholding:
        return _until_resolved(chart)
    if chart.is_conservative:
        tests = additional_tests(chart, deciding)
        if FollowUpTest.HEPATIC_FUNCTION_PANEL not in tests:
            tests = (FollowUpTest.HEPATIC_FUNCTION_PANEL, *tests)
        rule = WITHHOLD_PENDING_REPEAT
        return [
            rule.finding(
                deciding=deciding,
                follow_up=tests,
                due=repeat_due(chart, deciding),
            )
        ]
    rule = CONFIRM_ELEVATION
    return [
        rule.finding(
            deciding=deciding,
            follow_up=(FollowUpTest.HEPATIC_FUNCTION_PANEL,),
            due=repeat_due(chart, deciding),
        )
    ]


def _until_resolved(chart: Chart) -> list[Finding]:
    """Return the withhold that lasts until ALT and AST are both below 3× ULN (policy 12)."""
    episode = chart.withhold_episode
    if episode is None or episode.resolved:
        return []
    tests = additional_tests(chart, episode.began_with)
    if FollowUpTest.HEPATIC_FUNCTION_PANEL not in tests:  # the panel carries ALT and AST
        tests = (FollowUpTest.HEPATIC_FUNCTION_PANEL, *tests)
    rule = WITHHOLD_UNTIL_RESOLVED
    return [
        rule.finding(
            deciding=episode.began_with,
            supporting=tuple(reversed(episode.since)),
            missing=episode.unresolved_analytes(chart.config),
            follow_up=tests,
            due=chart.now + chart.config.repeat_within,
        )
    ]


def _withhold(
    chart: Chart,
    rule: Rule,
    deciding: AssessedResult,
    *,
    supporting: tuple[AssessedResult, ...] = (),
) -> Finding:
    return rule.finding(
        deciding=deciding,
        supporting=supporting,
        follow_up=additional_tests(chart, deciding),
        due=chart.now + chart.config.repeat_within,
    )
