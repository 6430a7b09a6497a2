"""Invariants over generated records (STYLE guideline 11).

The order of entries in a record never changes the evaluation; raising any ALT, AST or total
bilirubin value never gives a milder decision.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.rules import Evaluation, Occasion, RuleConfig, evaluate
from fhir_mappings.values import (
    Analyte,
    Bound,
    LabResult,
    LiverCondition,
    LiverConditionKind,
    MedicationOrder,
    PatientRecord,
    UnusableReason,
    UnusableResult,
)

from .builders import CONSERVATIVE, LABEL, NOW, condition, lab, order, unusable

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None)

_ANALYTES = (Analyte.ALT, Analyte.AST, Analyte.TOTAL_BILIRUBIN, Analyte.ALP, Analyte.INR)
_RAISABLE = frozenset({Analyte.ALT, Analyte.AST, Analyte.TOTAL_BILIRUBIN})
_TYPICAL_ULN = {
    Analyte.ALT: 40.0,
    Analyte.AST: 40.0,
    Analyte.TOTAL_BILIRUBIN: 1.2,
    Analyte.ALP: 120.0,
    Analyte.INR: 1.0,
}

# Times on a 6-hour grid over 40 days, so that ties and window edges (7, 14, 30, 31 days) occur.
_hours_ago = st.integers(min_value=-4, max_value=160).map(lambda quarter: quarter * 6)


@st.composite
def lab_results(draw: st.DrawFn) -> LabResult:
    analyte = draw(st.sampled_from(_ANALYTES))
    multiple = draw(st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.9, 3.0, 4.0, 5.0, 7.5]))
    hours = draw(_hours_ago)
    own_range = draw(st.booleans())
    uln = _TYPICAL_ULN[analyte] * (0.8 if own_range else 1.0)
    return lab(
        analyte,
        round(multiple * uln, 3),
        0,
        minutes_ago=hours * 60,
        uln=uln if own_range else None,
        bound=Bound.EXACT,
    )


@st.composite
def conditions(draw: st.DrawFn) -> LiverCondition:
    kind = draw(st.sampled_from(list(LiverConditionKind)))
    days = draw(st.one_of(st.none(), st.integers(min_value=-2, max_value=40)))
    return condition(kind, days, draw(st.sampled_from(["18165001", "19943007", "422587007"])))


@st.composite
def unusable_results(draw: st.DrawFn) -> UnusableResult:
    analyte = draw(st.sampled_from(_ANALYTES))
    days = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=40)))
    reason = draw(st.sampled_from([UnusableReason.UNKNOWN_UNIT, UnusableReason.RETRACTED]))
    return unusable(analyte, days, reason)


@st.composite
def medication_orders(draw: st.DrawFn) -> MedicationOrder:
    days = draw(st.one_of(st.none(), st.integers(min_value=0, max_value=500)))
    status = draw(st.sampled_from(["active", "completed", "cancelled", "entered-in-error"]))
    return order(days, status=status)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[PatientRecord, Occasion, RuleConfig]:
    patient = PatientRecord(
        lab_results=tuple(draw(st.lists(lab_results(), max_size=10))),
        unusable_results=tuple(draw(st.lists(unusable_results(), max_size=2))),
        medication_orders=tuple(draw(st.lists(medication_orders(), max_size=2))),
        conditions=tuple(draw(st.lists(conditions(), max_size=3))),
    )
    occasion = draw(st.sampled_from(list(Occasion)))
    config = draw(st.sampled_from([LABEL, CONSERVATIVE]))
    return patient, occasion, config


def _evaluate(patient: PatientRecord, occasion: Occasion, config: RuleConfig) -> Evaluation:
    orders = tuple(o for o in patient.medication_orders if o.status == "active")
    return evaluate(patient, orders=orders, occasion=occasion, config=config, now=NOW)


@pytest.mark.slow  # hypothesis, 100 scenarios
@PROPERTY_SETTINGS
@given(scenario=scenarios(), data=st.data())
def test_order_of_entries_never_changes_the_evaluation(
    scenario: tuple[PatientRecord, Occasion, RuleConfig], data: st.DataObject
) -> None:
    patient, occasion, config = scenario
    shuffled = PatientRecord(
        lab_results=tuple(data.draw(st.permutations(patient.lab_results))),
        unusable_results=tuple(data.draw(st.permutations(patient.unusable_results))),
        medication_orders=tuple(data.draw(st.permutations(patient.medication_orders))),
        conditions=tuple(data.draw(st.permutations(patient.conditions))),
    )
    before = _evaluate(patient, occasion, config)
    after = _evaluate(shuffled, occasion, config)
    assert after.kind is before.kind
    assert after.findings == before.findings
    assert after.results == before.results


@PROPERTY_SETTINGS
@given(
    scenario=scenarios(),
    data=st.data(),
    factor=st.sampled_from([1.01, 1.5, 2.0, 3.0, 10.0]),
)
def test_a_higher_value_never_gives_a_milder_decision(
    scenario: tuple[PatientRecord, Occasion, RuleConfig], data: st.DataObject, factor: float
) -> None:
    patient, occasion, config = scenario
    raisable = [i for i, r in enumerate(patient.lab_results) if r.analyte in _RAISABLE]
    if not raisable:
        return
    index = data.draw(st.sampled_from(raisable))
    results = list(patient.lab_results)
    original = results[index]
    results[index] = LabResult(
        analyte=original.analyte,
        loinc=original.loinc,
        value=original.value * factor,
        bound=original.bound,
        effective=original.effective,
        source=original.source,
        reference_high=original.reference_high,
    )
    raised = PatientRecord(
        lab_results=tuple(results),
        unusable_results=patient.unusable_results,
        medication_orders=patient.medication_orders,
        conditions=patient.conditions,
    )
    before = _evaluate(patient, occasion, config).kind.severity
    after = _evaluate(raised, occasion, config).kind.severity
    assert after >= before
