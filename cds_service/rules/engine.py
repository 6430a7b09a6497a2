"""Apply every liver-safety rule to one patient record at one instant.

Implements project policies 1-15 (docs/clinical-policy.md) through the rule modules (each cites
its own label section) and orders what they find.

When the rules run for a mipomersen order (ordering) or a patient on mipomersen (chart review)
Then every finding is returned, most severe first (contraindicated, discontinue, withhold,
repeat-test, monitor-closely), and within one kind in a fixed priority of reasons; no finding
means no card (policy 11).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from cds_service.rules.catalogue import RULE_MODULES
from cds_service.rules.chart import read_chart
from cds_service.rules.config import RuleConfig
from cds_service.rules.decision import Evaluation, Finding, Occasion
from fhir_mappings.values import MedicationOrder, PatientRecord


def order_findings(findings: Sequence[Finding]) -> tuple[Finding, ...]:
    """Return the findings most severe first, then by reason priority, otherwise as given.

    The priority of a reason is its place in `reasons.toml`.
    """
    return tuple(sorted(findings, key=lambda f: (-f.kind.severity, f.reason.priority)))


def evaluate(
    record: PatientRecord,
    *,
    orders: Sequence[MedicationOrder],
    occasion: Occasion,
    config: RuleConfig,
    now: datetime,
) -> Evaluation:
    """Return every liver-safety finding for a patient and the results they rest on.

    `orders` are the mipomersen orders in scope: the draft orders on an order hook, the active
    ones on chart review. `now` must be timezone-aware, like every date in the record.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    chart = read_chart(record, orders=orders, occasion=occasion, config=config, now=now)
    findings = [finding for module in RULE_MODULES for finding in module.findings(chart)]
    return Evaluation(
        profile=config.profile,
        occasion=occasion,
        now=now,
        findings=order_findings(findings),
        results=chart.results,
        unusable=chart.unusable,
        skipped=chart.skipped,
        orders=chart.orders,
        therapy_start=chart.therapy_start,
        excluded=record.excluded,
        history=chart.history,
        history_before=chart.history_before,
    )
