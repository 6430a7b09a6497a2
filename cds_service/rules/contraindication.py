"""Contraindication: no new mipomersen order for a patient with active liver disease.

Implements Kynamro PI §4 Contraindications (active liver disease, including unexplained persistent
elevations of serum transaminases; moderate or severe hepatic impairment) and REFERENCE.md project
policy 10 ("new orders").

When a mipomersen order is being placed (order-select, order-sign) and the patient has an active
Condition for active liver disease or hepatic impairment
Then mipomersen is contraindicated (one finding, naming the most recently recorded condition).

Not on chart review: policy 10 speaks of new orders; a patient already on therapy with active
liver disease and a transaminase elevation is handled by `discontinuation` (policy 9).
"""

from __future__ import annotations

from fhir_mappings.values import LiverCondition, LiverConditionKind

from . import catalogue
from .chart import Chart
from .decision import DecisionKind, Finding, Occasion, Reason


def active_liver_disease(chart: Chart) -> LiverCondition | None:
    """Return the most recently recorded active liver disease condition, if any."""
    return next(iter(chart.conditions_of(LiverConditionKind.ACTIVE_LIVER_DISEASE)), None)


def is_contraindicated(chart: Chart) -> bool:
    """Return True when a new order meets an active liver disease condition (policy 10)."""
    return chart.occasion is Occasion.ORDERING and active_liver_disease(chart) is not None


def findings(chart: Chart) -> list[Finding]:
    """Return the contraindication finding, if the rule applies."""
    condition = active_liver_disease(chart)
    if condition is None or not is_contraindicated(chart):
        return []
    rule = catalogue.CONTRAINDICATED_ACTIVE_LIVER_DISEASE
    return [
        Finding(
            kind=DecisionKind.CONTRAINDICATED,
            reason=Reason.ACTIVE_LIVER_DISEASE,
            rule=rule.id,
            source=rule.source,
            condition=condition,
        )
    ]
