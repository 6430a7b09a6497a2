"""Kynamro PI §2.3 last row: discontinue (policy 9), each path and its 14-day edges.

Patients on therapy (a prior order 200 days ago); ALT 130 U/L is 3.25× the default ULN of 40,
total bilirubin 2.4 mg/dL is exactly 2× the default ULN of 1.2.
"""

from __future__ import annotations

import pytest

from fhir_mappings.values import Analyte, LabResult, LiverCondition

from .builders import alt, ast, liver_disease, order, reasons, run, symptom, tbili

ON_THERAPY = order(200)

WITH_BILIRUBIN = "discontinue/transaminase-with-bilirubin"
WITH_SYMPTOMS = "discontinue/transaminase-with-symptoms"
WITH_LIVER_DISEASE = "discontinue/transaminase-with-liver-disease"
CONFIRM = "repeat-test/confirm-transaminase-3x-uln"
REASSESS = "contraindicated/active-liver-disease-on-therapy"  # policy 10, revised
WITHHOLD_5X = "withhold/transaminase-5x-uln"
ABOVE_ULN = "monitor-closely/transaminase-above-uln"

Entry = LabResult | LiverCondition


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        pytest.param(
            [alt(130), ast(30), tbili(2.4)],
            [WITH_BILIRUBIN, CONFIRM],
            id="ALT 3x + bilirubin exactly 2.0x same day",
        ),
        pytest.param([alt(130), ast(30), tbili(2.39)], [CONFIRM], id="bilirubin just below 2x: no"),
        pytest.param(
            [alt(130), ast(30), tbili(1.6, uln=0.8)],
            [WITH_BILIRUBIN, CONFIRM],
            id="bilirubin 2x of its own range high",
        ),
        pytest.param(
            [alt(130), ast(30), tbili(2.4, 14)],
            [WITH_BILIRUBIN, CONFIRM],
            id="bilirubin exactly 14 days before",
        ),
        pytest.param(
            [alt(130), ast(30), tbili(2.4, 14, minutes_ago=1)],
            [CONFIRM],
            id="bilirubin 14 days + 1 minute before: no",
        ),
        pytest.param(
            [alt(130, 14), ast(30, 14), tbili(2.4)],
            [WITH_BILIRUBIN, CONFIRM],
            id="bilirubin 14 days after the elevation",
        ),
        pytest.param(
            [alt(119), ast(30), tbili(3.0)], [ABOVE_ULN], id="bilirubin with ALT below 3x: no"
        ),
        pytest.param(
            [alt(250), ast(30), tbili(2.4)],
            [WITH_BILIRUBIN, WITHHOLD_5X],
            id="ALT 5x + bilirubin: discontinue first",
        ),
        pytest.param(
            [alt(130), ast(30), symptom(0)], [WITH_SYMPTOMS, CONFIRM], id="symptom recorded today"
        ),
        pytest.param(
            [alt(130), ast(30), symptom(14)],
            [WITH_SYMPTOMS, CONFIRM],
            id="symptom recorded exactly 14 days before",
        ),
        pytest.param(
            [alt(130), ast(30), symptom(14.001)], [CONFIRM], id="symptom over 14 days before: no"
        ),
        pytest.param(
            [alt(130, 10), ast(30, 10), symptom(-4)],
            [WITH_SYMPTOMS, CONFIRM],
            id="symptom recorded 14 days after the elevation",
        ),
        pytest.param(
            [alt(130), ast(30), symptom(None)],
            [WITH_SYMPTOMS, CONFIRM],
            id="symptom without recorded date counts",
        ),
        pytest.param([alt(60), ast(30), symptom(0)], [ABOVE_ULN], id="symptom, ALT below 3x: no"),
        pytest.param(
            [alt(130), ast(30), liver_disease(400)],
            [REASSESS, WITH_LIVER_DISEASE, CONFIRM],
            id="active liver disease (any date) + ALT 3x",
        ),
        pytest.param(
            [alt(30), ast(30), liver_disease(400)],
            [REASSESS],
            id="active liver disease, normal ALT/AST, chart review: reassess therapy",
        ),
        pytest.param(
            [alt(130), ast(30), tbili(2.4), symptom(1), liver_disease()],
            [REASSESS, WITH_BILIRUBIN, WITH_SYMPTOMS, WITH_LIVER_DISEASE, CONFIRM],
            id="all three paths",
        ),
    ],
)
def test_discontinue_paths(entries: list[Entry], expected: list[str]) -> None:
    assert reasons(run(ON_THERAPY, *entries)) == expected


def test_bilirubin_finding_names_both_results() -> None:
    bilirubin = tbili(3.0, 2)
    finding = run(ON_THERAPY, alt(130), ast(30), tbili(2.5, 1), bilirubin).findings[0]
    assert finding.rule == "label-2.3-discontinue-bilirubin-2x-uln"
    assert finding.deciding is not None and finding.deciding.result.analyte is Analyte.ALT
    assert [s.result for s in finding.supporting] == [bilirubin]


def test_window_is_measured_from_any_current_elevation() -> None:
    # AST 3x 6 days ago is current; bilirubin 20 days ago is within 14 days of it only.
    entries = [alt(200), ast(130, 6), tbili(2.4, 20), ast(130, 9)]
    finding = run(ON_THERAPY, *entries).findings[0]
    assert finding.reason.code == "transaminase-with-bilirubin"
    assert finding.deciding is not None and finding.deciding.result.analyte is Analyte.AST


def test_symptom_and_liver_disease_findings_name_the_condition() -> None:
    jaundice = symptom(1)
    cirrhosis = liver_disease()
    findings = run(ON_THERAPY, alt(130), ast(30), jaundice, cirrhosis).findings[1:]
    assert findings[0].condition == jaundice
    assert findings[0].rule == "label-2.3-discontinue-liver-injury-symptoms"
    assert findings[1].condition == cirrhosis
    assert findings[1].rule == "label-2.3-discontinue-active-liver-disease"
