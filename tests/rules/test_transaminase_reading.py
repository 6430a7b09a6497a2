"""Reading only the older results a rule can still act on never changes what the card says.

`reading_window` reads an older ALT or AST result only when policy 12 (the withhold episode since
the newest run of normal ALT and AST), policy 8 (an elevation within the resolved-elevation
lookback) or policy 13 (the highest abnormal result before a time) can use it, and an older
result of another analyte only for policy 13 (`cds_service/rules/relevance.py`). These
properties generate long histories with elevations, withholds that resolve and others that do
not, confirmations, results at one instant, censored, retracted, unreadable and invalid results,
and check the findings, the history on the card (every analyte) and the withhold episode
against reading every result.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.hooks.request import parse_hook_request
from cds_service.rules import Occasion, Profile, RuleConfig, evaluate, reading_window
from cds_service.rules.chart import read_chart
from fhir_mappings import ReadingWindow, read_patient_record
from tests.fhir_builders import hook_request, medication_request, observation

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
_ULN = {"ALT": 40.0, "AST": 40.0, "TBIL": 1.2, "ALP": 120.0}
# Multiples of ULN: mostly normal, elevations of every kind, and both boundaries exactly.
_MULTIPLES = st.one_of(
    st.sampled_from([0.4, 0.6, 0.8, 1.0, 1.2, 2.0, 2.9]),
    st.sampled_from([1.5, 2.99, 3.0, 3.4, 4.0, 4.99, 5.0, 6.0, 9.0]),
)
_KINDS = st.sampled_from(
    ["exact"] * 12
    + ["at-least", "at-most", "bad-unit", "retracted", "invalid", "no-range", "si-units"]
)


def _result(test: str, multiple: float, when: datetime, kind: str) -> dict[str, Any]:
    uln = _ULN[test]
    value = round(uln * multiple, 3)
    if kind == "si-units" and test in ("ALT", "AST"):
        resource = observation(test, round(value / 60, 4), when.isoformat(), unit="ukat/L")
        resource["referenceRange"] = [{"high": {"value": round(uln / 60, 4), "unit": "ukat/L"}}]
        return resource
    resource = observation(
        test,
        value,
        when.isoformat(),
        unit="mmol/L" if kind == "bad-unit" else None,
        high=None if kind == "no-range" else uln,
        comparator={"at-least": ">=", "at-most": "<="}.get(kind),
        status="entered-in-error" if kind == "retracted" else "final",
    )
    if kind == "invalid":
        # Read as usable before validation; FHIR refuses a numeric unit.
        resource["valueQuantity"]["unit"] = 7
    return resource


@st.composite
def _long_history(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Years of ALT/AST (panels, or one analyte alone), with some ALP and bilirubin."""
    count = draw(st.integers(min_value=1, max_value=60))
    when = NOW - timedelta(days=draw(st.integers(0, 20)), hours=draw(st.integers(0, 23)))
    labs: list[dict[str, Any]] = []
    for _ in range(count):
        shape = draw(st.sampled_from(["panel", "panel", "panel", "alt", "ast", "split"]))
        tests = {"panel": ["ALT", "AST"], "alt": ["ALT"], "ast": ["AST"], "split": ["ALT"]}[shape]
        if draw(st.booleans()):
            tests.append(draw(st.sampled_from(["TBIL", "ALP"])))
        for test in tests:
            labs.append(_result(test, draw(_MULTIPLES), when, draw(_KINDS)))
        if shape == "split":  # the AST of the panel a few days apart
            later = when - timedelta(days=draw(st.integers(1, 40)))
            labs.append(_result("AST", draw(_MULTIPLES), later, draw(_KINDS)))
        if draw(st.integers(0, 9)) == 0:  # a second result at the same instant
            labs.append(
                _result(draw(st.sampled_from(["ALT", "AST"])), draw(_MULTIPLES), when, "exact")
            )
        gap = draw(st.sampled_from([1, 2, 5, 7, 8, 14, 20, 31, 32, 45, 60, 92, 93, 180, 400]))
        when -= timedelta(days=gap, hours=draw(st.integers(0, 12)))
    draw(st.randoms()).shuffle(labs)
    return labs


def _compare(
    labs: list[dict[str, Any]], hook: str, started_days_ago: int | None, profile: Profile
) -> None:
    medications = (
        (
            medication_request(
                "m1",
                status="active",
                authoredOn=(NOW - timedelta(days=started_days_ago)).date().isoformat(),
            ),
        )
        if started_days_ago is not None
        else ()
    )
    body = hook_request(
        hook,
        drafts=(medication_request("d1"),) if hook == "order-sign" else (),
        labs=tuple(labs),
        medications=medications,
    )
    request = parse_hook_request(body, expected_hook=hook)
    config = RuleConfig(profile=profile)
    items = [item for value in request.prefetch.values() if value for item in value]
    occasion = Occasion.ORDERING if hook == "order-sign" else Occasion.CHART_REVIEW

    def outcome(window: ReadingWindow | None) -> tuple[Any, ...]:
        record = read_patient_record(items, draft_orders=request.draft_orders, window=window)
        orders = record.draft_orders or tuple(
            order for order in record.medication_orders if order.status == "active"
        )
        evaluation = evaluate(record, orders=orders, occasion=occasion, config=config, now=NOW)
        chart = read_chart(record, orders=orders, occasion=occasion, config=config, now=NOW)
        episode = chart.withhold_episode
        open_episode = episode if episode is not None and not episode.resolved else None
        history = evaluation.history
        # Where history ends shows only with history (older normal results alone set it).
        history_before = evaluation.history_before if history else None
        return evaluation.findings, history, history_before, open_episode

    assert outcome(reading_window(config, NOW)) == outcome(None)


@pytest.mark.slow  # hypothesis, 500 long histories
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    labs=_long_history(),
    hook=st.sampled_from(["order-sign", "patient-view"]),
    started_days_ago=st.one_of(st.none(), st.integers(1, 2500)),
    profile=st.sampled_from(list(Profile)),
)
def test_reading_only_the_transaminases_that_can_act_changes_no_card(
    labs: list[dict[str, Any]], hook: str, started_days_ago: int | None, profile: Profile
) -> None:
    _compare(labs, hook, started_days_ago, profile)
