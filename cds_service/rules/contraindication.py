"""Contraindication: no new mipomersen order for a patient with active liver disease.

Implements Kynamro PI §4 Contraindications (active liver disease, including unexplained persistent
elevations of serum transaminases; moderate or severe hepatic impairment) and project
policy 10 (revised 2026-11-30).

When a mipomersen order is being placed (order-select, order-sign) and the patient has an active
Condition for active liver disease or hepatic impairment
Then mipomersen is contraindicated (one finding, naming the most recently recorded condition).

When the chart of a patient on an active mipomersen course is opened (patient-view) and the
patient has such a Condition
Then mipomersen is contraindicated too: reassess therapy (critical, its own rule). A transaminase
elevation on top of it also gives `discontinuation`'s finding (policy 9), listed beside it.
"""

from __future__ import annotations

from cds_service.rules.chart import Chart
from cds_service.rules.decision import Finding, Occasion, Rule, rule
from fhir_mappings.values import LiverCondition, LiverConditionKind

CONTRAINDICATED_ACTIVE_LIVER_DISEASE = rule(
    "label-4-contraindicated-active-liver-disease",
    "Kynamro PI §4 Contraindications (active liver disease, moderate or severe hepatic "
    "impairment); project policy 10",
    reason_code="active-liver-disease",
)
CONTRAINDICATED_ON_THERAPY = rule(
    "policy-10-contraindicated-on-therapy",
    "Kynamro PI §4 Contraindications (active liver disease, moderate or severe hepatic "
    "impairment) for a patient on an active course: reassess therapy; project policy 10",
    reason_code="active-liver-disease-on-therapy",
)
RULES: tuple[Rule, ...] = (
    CONTRAINDICATED_ACTIVE_LIVER_DISEASE,
    CONTRAINDICATED_ON_THERAPY,
)


def active_liver_disease(chart: Chart) -> LiverCondition | None:
    """Return the most recently recorded active liver disease condition, if any."""
    return next(iter(chart.conditions_of(LiverConditionKind.ACTIVE_LIVER_DISEASE)), None)


def is_contraindicated(chart: Chart) -> bool:
    """Return True when an order or an active course meets active liver disease (policy 10)."""
    return active_liver_disease(chart) is not None


def findings(chart: Chart) -> list[Finding]:
    """Return the contraindication finding, if the rule applies."""
    condition = active_liver_disease(chart)
    if condition is None:
        return []
    on_therapy = chart.occasion is Occasion.CHART_REVIEW
    rule = CONTRAINDICATED_ON_THERAPY if on_therapy else CONTRAINDICATED_ACTIVE_LIVER_DISEASE
    return [rule.finding(condition=condition)]
