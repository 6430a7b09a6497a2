"""Build rule inputs in one line: `alt(120, days_ago=3)`, `symptom(days_ago=2)`, `order(400)`.

Every date is relative to the fixed `NOW`, never the wall clock. Values are in the analyte's
canonical unit (U/L, mg/dL); `uln=` sets the result's own reference range high (policy 4),
otherwise the configured default ULN applies (ALT/AST 40 U/L, total bilirubin 1.2 mg/dL,
ALP 120 U/L).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial

from cds_service.rules import Evaluation, Occasion, Profile, RuleConfig, evaluate
from fhir_mappings.values import (
    Analyte,
    Bound,
    Coding,
    LabResult,
    LiverCondition,
    LiverConditionKind,
    MedicationOrder,
    PatientRecord,
    ResourceRef,
    SkippedResource,
    UnusableReason,
    UnusableResult,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LABEL = RuleConfig()
CONSERVATIVE = RuleConfig(profile=Profile.CONSERVATIVE)
ORDERING = Occasion.ORDERING
CHART_REVIEW = Occasion.CHART_REVIEW

_LOINC = {
    Analyte.ALT: "1742-6",
    Analyte.AST: "1920-8",
    Analyte.TOTAL_BILIRUBIN: "1975-2",
    Analyte.DIRECT_BILIRUBIN: "1968-7",
    Analyte.ALP: "6768-6",
    Analyte.GGT: "2324-2",
    Analyte.INR: "6301-6",
}
_ids = itertools.count(1)

Entry = LabResult | UnusableResult | LiverCondition | MedicationOrder | SkippedResource
_ENTRY_TYPES = (LabResult, UnusableResult, LiverCondition, MedicationOrder, SkippedResource)


def ago(days: float = 0, minutes: float = 0) -> datetime:
    """Return the instant `days` and `minutes` before NOW (negative: after NOW)."""
    return NOW - timedelta(days=days, minutes=minutes)


def _ref(resource_type: str) -> ResourceRef:
    number = next(_ids)
    return ResourceRef(resource_type, f"{resource_type.lower()}-{number}", f"prefetch.{number}")


def lab(
    analyte: Analyte,
    value: float,
    days_ago: float = 0,
    *,
    minutes_ago: float = 0,
    uln: float | None = None,
    bound: Bound = Bound.EXACT,
) -> LabResult:
    """Return a usable result of `analyte` taken `days_ago` (plus `minutes_ago`) before NOW."""
    return LabResult(
        analyte=analyte,
        loinc=_LOINC[analyte],
        value=value,
        bound=bound,
        effective=ago(days_ago, minutes_ago),
        source=_ref("Observation"),
        reference_high=uln,
    )


alt = partial(lab, Analyte.ALT)  # U/L
ast = partial(lab, Analyte.AST)  # U/L
tbili = partial(lab, Analyte.TOTAL_BILIRUBIN)  # mg/dL
alp = partial(lab, Analyte.ALP)  # U/L
inr = partial(lab, Analyte.INR)  # no ULN


def normal_panel(days_ago: float = 0) -> tuple[LabResult, ...]:
    """Return normal ALT, AST, ALP and total bilirubin taken together."""
    return (
        alt(25, days_ago),
        ast(22, days_ago),
        alp(80, days_ago),
        tbili(0.6, days_ago),
    )


def unusable(
    analyte: Analyte,
    days_ago: float | None = 0,
    reason: UnusableReason = UnusableReason.UNKNOWN_UNIT,
) -> UnusableResult:
    """Return an unusable result of `analyte` (`days_ago=None`: undated)."""
    return UnusableResult(
        analyte=analyte,
        loinc=_LOINC[analyte],
        reason=reason,
        detail=f"{reason.value} (test)",
        source=_ref("Observation"),
        effective=None if days_ago is None else ago(days_ago),
    )


def condition(kind: LiverConditionKind, days_ago: float | None, code: str) -> LiverCondition:
    """Return an active liver condition recorded `days_ago` (None: no recorded date)."""
    return LiverCondition(
        kind=kind,
        coding=Coding("http://snomed.info/sct", code, None),
        recorded=None if days_ago is None else ago(days_ago),
        source=_ref("Condition"),
        name=f"condition {code}",
    )


def liver_disease(days_ago: float | None = 100) -> LiverCondition:
    """Return an active liver disease Condition (cirrhosis)."""
    return condition(LiverConditionKind.ACTIVE_LIVER_DISEASE, days_ago, "19943007")


def symptom(days_ago: float | None = 0) -> LiverCondition:
    """Return an active liver-injury symptom Condition (jaundice)."""
    return condition(LiverConditionKind.LIVER_INJURY_SYMPTOM, days_ago, "18165001")


def order(
    days_ago: float | None = 200, *, status: str = "active", draft: bool = False
) -> MedicationOrder:
    """Return a mipomersen MedicationRequest authored `days_ago` (None: no authoredOn)."""
    return MedicationOrder(
        source=_ref("MedicationRequest"),
        status=status,
        intent="order",
        authored_on=None if days_ago is None else ago(days_ago),
        subject="Patient/1",
        medication="Kynamro 200 mg/mL",
        matched_by="ATC C10AX11",
        is_draft_order=draft,
    )


def draft() -> MedicationOrder:
    """Return the draft mipomersen order of an order hook, authored now."""
    return order(0, status="draft", draft=True)


def skipped(resource_type: str = "Condition") -> SkippedResource:
    """Return a resource that failed validation."""
    return SkippedResource(resource_type, "bad-1", "prefetch.conditions.entry[0].resource", "bad")


def record(*entries: Entry | Iterable[Entry]) -> PatientRecord:
    """Return a PatientRecord holding the entries (tuples of entries are flattened)."""
    flat: list[Entry] = []
    for entry in entries:
        if isinstance(entry, _ENTRY_TYPES):
            flat.append(entry)
        else:
            flat.extend(entry)
    return PatientRecord(
        lab_results=tuple(e for e in flat if isinstance(e, LabResult)),
        unusable_results=tuple(e for e in flat if isinstance(e, UnusableResult)),
        medication_orders=tuple(e for e in flat if isinstance(e, MedicationOrder)),
        conditions=tuple(e for e in flat if isinstance(e, LiverCondition)),
        skipped=tuple(e for e in flat if isinstance(e, SkippedResource)),
    )


def run(
    *entries: Entry | Iterable[Entry],
    occasion: Occasion = CHART_REVIEW,
    config: RuleConfig = LABEL,
    orders: Sequence[MedicationOrder] | None = None,
    now: datetime = NOW,
) -> Evaluation:
    """Evaluate a record built from `entries`.

    Chart review defaults to the record's active orders in scope; ordering to the draft orders in
    the record, or one fresh draft order when there is none.
    """
    patient = record(*entries)
    if orders is None:
        if occasion is Occasion.ORDERING:
            orders = patient.draft_orders or (draft(),)
        else:
            orders = tuple(o for o in patient.medication_orders if o.status == "active")
    return evaluate(patient, orders=orders, occasion=occasion, config=config, now=now)


def reasons(evaluation: Evaluation) -> list[str]:
    """Return `kind/reason` of every finding, in order: the row a table test compares."""
    return [f"{f.kind.value}/{f.reason.code}" for f in evaluation.findings]
