"""Kynamro PI §4: active liver disease contraindicates a new order (policy 10), not a review."""

from __future__ import annotations

import pytest

from cds_service.rules import Occasion
from fhir_mappings.values import LabResult, LiverCondition, MedicationOrder

from .builders import (
    CHART_REVIEW,
    ORDERING,
    liver_disease,
    normal_panel,
    order,
    reasons,
    run,
    symptom,
)

CONTRAINDICATED = "contraindicated/active-liver-disease"

Entry = LabResult | LiverCondition | MedicationOrder


@pytest.mark.parametrize(
    ("occasion", "entries", "expected"),
    [
        pytest.param(
            ORDERING,
            [*normal_panel(), liver_disease()],
            [CONTRAINDICATED],
            id="new order + active liver disease",
        ),
        pytest.param(
            ORDERING,
            [order(200), *normal_panel(), liver_disease(None)],
            [CONTRAINDICATED],
            id="renewal order + undated liver disease",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(200), *normal_panel(), liver_disease()],
            ["contraindicated/active-liver-disease-on-therapy"],
            id="policy 10: chart review + liver disease, normal tests: reassess therapy",
        ),
        pytest.param(
            ORDERING, [*normal_panel(), symptom()], [], id="new order + symptom only: no card"
        ),
        pytest.param(ORDERING, [*normal_panel()], [], id="new order, no condition: no card"),
    ],
)
def test_contraindicated_on_orders_and_on_therapy(
    occasion: Occasion, entries: list[Entry], expected: list[str]
) -> None:
    assert reasons(run(*entries, occasion=occasion)) == expected


def test_names_the_most_recently_recorded_condition() -> None:
    older, newer, undated = liver_disease(300), liver_disease(3), liver_disease(None)
    finding = run(*normal_panel(), undated, older, newer, occasion=ORDERING).findings[0]
    assert finding.condition == newer
    assert finding.rule == "label-4-contraindicated-active-liver-disease"
