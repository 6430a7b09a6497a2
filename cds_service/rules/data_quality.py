"""Never give an all clear on data the service could not use.

Implements project policy 5 (a result whose unit is not recognised is unusable and
named on the card, never guessed), policy 11 read the other way round (no card only when all
required results are current and normal, so an unusable result is never silently ignored), and
the ambiguous censored values of policy 4 (see `uln`).

When an ALT or AST result (and, on a first order, an ALP or total bilirubin result) is unusable,
not retracted by the lab, and either undated, at least as recent as that analyte's latest usable
result, or the analyte has no usable result at all
Then repeat the test (one finding per such result, due now).

When a Condition or MedicationRequest could not be read (failed validation)
Then monitor closely: the unreadable record may hide active liver disease, a liver-injury
symptom or the therapy start (one finding naming all of them).

Retracted results (entered-in-error, cancelled) never trigger anything. Unreadable Observations
are left to the mapping layer, which reports them as unusable results of their analyte.
"""

from __future__ import annotations

from cds_service.rules.chart import Chart
from cds_service.rules.decision import Finding, FollowUpTest, Rule, rule
from cds_service.rules.ordering import newest_first, unusable_key
from fhir_mappings.values import (
    BASELINE_ANALYTES,
    TRANSAMINASES,
    Analyte,
    SkippedResource,
    UnusableResult,
)

RESULT_UNUSABLE = rule(
    "data-quality-result-unusable",
    "Project policies 5, 11 and 15 (an unusable result, or one naming no patient, is named, never "
    "guessed, and never gives an all clear)",
    reason_code="latest-result-unusable",
)
RECORD_UNREADABLE = rule(
    "data-quality-record-unreadable",
    "Project policies 9, 10, 11 and 15 (an unreadable Condition or MedicationRequest may hide a "
    "contraindication or the therapy start; a mipomersen order is read in part, never ignored)",
    reason_code="record-unreadable",
)
RULES: tuple[Rule, ...] = (
    RESULT_UNUSABLE,
    RECORD_UNREADABLE,
)


OBSERVATION = "Observation"


def checked_analytes(chart: Chart) -> tuple[Analyte, ...]:
    """Return the analytes whose unusable results count: ALT/AST, plus the baseline ones."""
    if chart.is_new_therapy:
        return BASELINE_ANALYTES
    return TRANSAMINASES


def is_unusable_latest(chart: Chart, unusable: UnusableResult) -> bool:
    """Return True when a non-retracted unusable result stands where a current result should."""
    if unusable.is_retracted:
        return False
    latest = chart.latest(unusable.analyte)
    return (
        unusable.effective is None
        or latest is None
        or unusable.effective >= latest.result.effective
    )


def is_unreadable_record(skipped: SkippedResource) -> bool:
    """Return True for a skipped resource other than an Observation."""
    return skipped.resource_type != OBSERVATION


def unusable_findings(chart: Chart) -> list[Finding]:
    """Return one repeat-test finding per unusable result that stands as the latest."""
    rule = RESULT_UNUSABLE
    found: list[Finding] = []
    for analyte in checked_analytes(chart):
        standing = newest_first(
            (u for u in chart.unusable if u.analyte is analyte and is_unusable_latest(chart, u)),
            when=lambda unusable: unusable.effective,
            key=unusable_key,
            undated_first=True,
        )
        found.extend(
            rule.finding(
                unusable=unusable,
                follow_up=(FollowUpTest.HEPATIC_FUNCTION_PANEL,),
                due=chart.now,
            )
            for unusable in standing
        )
    return found


def unreadable_findings(chart: Chart) -> list[Finding]:
    """Return one monitor-closely finding naming every unreadable Condition or MedicationRequest."""
    unreadable = tuple(
        sorted(
            (s for s in chart.skipped if is_unreadable_record(s)),
            key=lambda s: (s.resource_type, s.path, s.id or "", s.message),
        )
    )
    if not unreadable:
        return []
    rule = RECORD_UNREADABLE
    return [
        rule.finding(
            skipped=unreadable,
        )
    ]


def findings(chart: Chart) -> list[Finding]:
    """Return the data-quality findings."""
    return unusable_findings(chart) + unreadable_findings(chart)
