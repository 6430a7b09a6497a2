"""Discontinue mipomersen for clinically significant liver toxicity.

Implements the last row of the Kynamro PI §2.3 dose modification table ("any elevation with
clinical symptoms of liver injury, bilirubin ≥2× ULN, or active liver disease: discontinue"),
the boxed warning ("discontinue for clinically significant liver toxicity") and
project policy 9, with the ≥ thresholds of policy 2.

When a current ALT or AST is ≥3× ULN
and a total bilirubin ≥2× ULN was taken within 14 days of it (before or after)
Then discontinue (reason: elevation with bilirubin).

When a current ALT or AST is ≥3× ULN
and an active Condition for a symptom of liver injury was recorded within 14 days of it, or has
no recorded date (active means present)
Then discontinue (reason: elevation with symptoms).

When a current ALT or AST is ≥3× ULN and the patient has an active liver disease Condition
Then discontinue (reason: elevation with liver disease).

Each path gives its own finding. Safer reading where the brief was silent: the 14 days are
measured from any current ALT/AST ≥3× ULN (highest first), not only from the deciding one, so a
newer, higher result of the other analyte never moves the window away from the bilirubin.
"""

from __future__ import annotations

from collections.abc import Sequence

from cds_service.rules.chart import Chart
from cds_service.rules.config import RuleConfig
from cds_service.rules.decision import AssessedResult, Finding, Rule, rule
from cds_service.rules.transaminases import elevations, highest, is_within
from cds_service.rules.uln import reaches_multiple
from fhir_mappings.values import Analyte, LiverCondition, LiverConditionKind

DISCONTINUE_WITH_BILIRUBIN = rule(
    "label-2.3-discontinue-bilirubin-2x-uln",
    "Kynamro PI §2.3 dose modification table (transaminase elevation with bilirubin ≥2× ULN); "
    "project policy 9",
    reason_code="transaminase-with-bilirubin",
)
DISCONTINUE_WITH_SYMPTOMS = rule(
    "label-2.3-discontinue-liver-injury-symptoms",
    "Kynamro PI §2.3 dose modification table (transaminase elevation with clinical symptoms of "
    "liver injury); project policy 9",
    reason_code="transaminase-with-symptoms",
)
DISCONTINUE_WITH_LIVER_DISEASE = rule(
    "label-2.3-discontinue-active-liver-disease",
    "Kynamro PI §2.3 dose modification table (transaminase elevation with active liver disease); "
    "project policy 9",
    reason_code="transaminase-with-liver-disease",
)
RULES: tuple[Rule, ...] = (
    DISCONTINUE_WITH_BILIRUBIN,
    DISCONTINUE_WITH_SYMPTOMS,
    DISCONTINUE_WITH_LIVER_DISEASE,
)


def is_bilirubin_elevation(assessed: AssessedResult, config: RuleConfig) -> bool:
    """Return True for a total bilirubin ≥2× ULN (policy 2)."""
    return reaches_multiple(assessed, config.bilirubin_multiple)


def is_symptom_near(
    condition: LiverCondition, elevation: AssessedResult, config: RuleConfig
) -> bool:
    """Return True when a liver-injury symptom was recorded within 14 days, or is undated."""
    return condition.recorded is None or is_within(
        condition.recorded, elevation.result.effective, config.discontinue_window
    )


def bilirubin_with_elevation(
    chart: Chart, elevated: Sequence[AssessedResult]
) -> tuple[AssessedResult, AssessedResult] | None:
    """Return the first elevation with a bilirubin ≥2× ULN within 14 days, and that bilirubin."""
    config = chart.config
    bilirubins = [
        assessed
        for assessed in chart.current_of(Analyte.TOTAL_BILIRUBIN)
        if is_bilirubin_elevation(assessed, config)
    ]
    for elevation in elevated:
        near = [
            bilirubin
            for bilirubin in bilirubins
            if is_within(
                bilirubin.result.effective, elevation.result.effective, config.discontinue_window
            )
        ]
        if near:
            return elevation, highest(near)
    return None


def symptom_with_elevation(
    chart: Chart, elevated: Sequence[AssessedResult]
) -> tuple[AssessedResult, LiverCondition] | None:
    """Return the first elevation with a liver-injury symptom near it, and that condition."""
    symptoms = chart.conditions_of(LiverConditionKind.LIVER_INJURY_SYMPTOM)
    for elevation in elevated:
        for condition in symptoms:
            if is_symptom_near(condition, elevation, chart.config):
                return elevation, condition
    return None


def findings(chart: Chart) -> list[Finding]:
    """Return a discontinue finding for each path of the §2.3 table that applies."""
    if chart.transaminases is None:
        return []
    elevated = elevations(chart.transaminases, chart.config)
    if not elevated:
        return []
    found: list[Finding] = []
    with_bilirubin = bilirubin_with_elevation(chart, elevated)
    if with_bilirubin is not None:
        elevation, bilirubin = with_bilirubin
        found.append(
            DISCONTINUE_WITH_BILIRUBIN.finding(
                deciding=elevation,
                supporting=(bilirubin,),
            )
        )
    with_symptom = symptom_with_elevation(chart, elevated)
    if with_symptom is not None:
        elevation, symptom = with_symptom
        found.append(
            DISCONTINUE_WITH_SYMPTOMS.finding(
                deciding=elevation,
                condition=symptom,
            )
        )
    liver_disease = chart.conditions_of(LiverConditionKind.ACTIVE_LIVER_DISEASE)
    if liver_disease:
        found.append(
            DISCONTINUE_WITH_LIVER_DISEASE.finding(
                deciding=elevated[0],
                condition=liver_disease[0],
            )
        )
    return found
