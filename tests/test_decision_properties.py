"""Properties of the whole domain pipeline (FHIR JSON -> mappings -> rules), without Flask.

The same value sent in another supported unit, with its reference range in that unit too, must
give the same decision (policy 5): a lab in Europe and one in the US see the same card.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.hooks.evaluation import evaluate_hook
from cds_service.hooks.request import parse_hook_request
from cds_service.rules import (
    DecisionKind,
    Occasion,
    Profile,
    RuleConfig,
    evaluate,
    reading_window,
)
from fhir_mappings import ReadingWindow, read_patient_record, supported_units
from fhir_mappings.values import Analyte, MedicationCodes
from tests.conversions import from_canonical
from tests.fhir_builders import hook_request, medication_request, observation

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
_TESTS = {Analyte.ALT: "ALT", Analyte.AST: "AST", Analyte.TOTAL_BILIRUBIN: "TBIL"}
_ULN = {Analyte.ALT: 40.0, Analyte.AST: 40.0, Analyte.TOTAL_BILIRUBIN: 1.2}


def _decision(labs: tuple[dict[str, Any], ...]) -> DecisionKind:
    body = hook_request(
        "patient-view",
        labs=labs,
        medications=(medication_request("m1", status="active", authoredOn="2026-06-01"),),
    )
    request = parse_hook_request(body, expected_hook="patient-view")
    evaluation = evaluate_hook(
        request, rules=RuleConfig(), medication_codes=MedicationCodes(), now=NOW
    ).evaluation
    assert evaluation is not None
    return evaluation.kind


def _lab(analyte: Analyte, canonical: float, unit: str, when: str) -> dict[str, Any]:
    return observation(
        _TESTS[analyte],
        from_canonical(analyte, canonical, unit),
        when,
        unit=unit,
        high=from_canonical(analyte, _ULN[analyte], unit),
    )


@settings(max_examples=60, deadline=None)
@given(
    alt=st.integers(min_value=1, max_value=600),
    ast=st.integers(min_value=1, max_value=600),
    bilirubin_tenths=st.integers(min_value=1, max_value=60),
    data=st.data(),
)
def test_same_values_in_another_unit_give_the_same_decision(
    alt: int, ast: int, bilirubin_tenths: float, data: st.DataObject
) -> None:
    values = {
        Analyte.ALT: float(alt),
        Analyte.AST: float(ast),
        Analyte.TOTAL_BILIRUBIN: bilirubin_tenths / 10,
    }
    canonical = tuple(
        _lab(analyte, value, analyte.canonical_unit, "2026-11-20")
        for analyte, value in values.items()
    )
    converted = tuple(
        _lab(analyte, value, data.draw(st.sampled_from(supported_units(analyte))), "2026-11-20")
        for analyte, value in values.items()
    )
    assert _decision(converted) is _decision(canonical)


def test_exact_boundaries_hold_in_si_units() -> None:
    # 2 ukat/L is exactly 120 U/L = 3.0x the default 40 U/L ULN; 41.04 umol/L is 2.4 mg/dL,
    # exactly 2.0x the default 1.2 mg/dL: both boundaries count (">=", policy 2).
    labs = (
        observation("ALT", 2, "2026-11-20", unit="ukat/L"),
        observation("TBIL", 41.04, "2026-11-20", unit="umol/L"),
    )
    assert _decision(labs) is DecisionKind.DISCONTINUE


_WINDOW_TESTS = ("ALT", "AST", "TBIL", "ALP", "INR")


@st.composite
def _history(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A random liver history over three years, denser near now, with awkward results."""
    count = draw(st.integers(min_value=0, max_value=40))
    labs = []
    for _ in range(count):
        test = draw(st.sampled_from(_WINDOW_TESTS))
        days_ago = draw(st.one_of(st.integers(0, 120), st.integers(0, 1100)))
        hour = draw(st.integers(0, 23))
        when = (NOW - timedelta(days=days_ago)).replace(hour=hour).isoformat()
        uln = {"ALT": 40.0, "AST": 40.0, "TBIL": 1.2, "ALP": 120.0, "INR": 1.0}[test]
        value = round(uln * draw(st.sampled_from([0.5, 0.9, 1.5, 2.9, 3.0, 4.0, 5.0, 8.0])), 2)
        kind = draw(
            st.sampled_from(["exact"] * 6 + ["at-least", "at-most", "bad-unit", "retracted"])
        )
        labs.append(
            observation(
                test,
                value,
                when,
                unit="mmol/L" if kind == "bad-unit" else None,
                comparator={"at-least": ">=", "at-most": "<="}.get(kind),
                status="entered-in-error" if kind == "retracted" else "final",
            )
        )
    return labs


@pytest.mark.slow  # 200 random histories of up to 40 results
@settings(max_examples=200, deadline=None)
@given(
    labs=_history(),
    hook=st.sampled_from(["order-sign", "patient-view"]),
    profile=st.sampled_from(list(Profile)),
    started_days_ago=st.integers(1, 900),
)
def test_reading_only_the_window_never_changes_a_finding(
    labs: list[dict[str, Any]], hook: str, profile: Profile, started_days_ago: int
) -> None:
    authored = (NOW - timedelta(days=started_days_ago)).date().isoformat()
    body = hook_request(
        hook,
        drafts=(medication_request("d1"),) if hook == "order-sign" else (),
        labs=tuple(labs),
        medications=(medication_request("m1", status="active", authoredOn=authored),),
    )
    request = parse_hook_request(body, expected_hook=hook)
    config = RuleConfig(profile=profile)
    items = [item for value in request.prefetch.values() if value for item in value]
    occasion = Occasion.ORDERING if hook == "order-sign" else Occasion.CHART_REVIEW

    def findings(window: ReadingWindow | None) -> Any:
        record = read_patient_record(items, draft_orders=request.draft_orders, window=window)
        orders = record.draft_orders or tuple(
            order for order in record.medication_orders if order.status == "active"
        )
        evaluation = evaluate(record, orders=orders, occasion=occasion, config=config, now=NOW)
        return evaluation.findings

    assert findings(reading_window(config, NOW)) == findings(None)
