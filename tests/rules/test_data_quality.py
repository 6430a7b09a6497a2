"""Never a silent all clear: unusable and unreadable data (policies 4, 5 and 11)."""

from __future__ import annotations

import pytest

from cds_service.rules import Occasion
from fhir_mappings.values import (
    Analyte,
    Bound,
    LabResult,
    MedicationOrder,
    SkippedResource,
    UnusableReason,
    UnusableResult,
)

from .builders import (
    CHART_REVIEW,
    NOW,
    ORDERING,
    alp,
    alt,
    ast,
    normal_panel,
    order,
    reasons,
    run,
    skipped,
    tbili,
    unusable,
)

UNUSABLE = "repeat-test/latest-result-unusable"
OVERDUE = "repeat-test/monitoring-overdue"
UNREADABLE = "monitor-closely/record-unreadable"

Entry = LabResult | UnusableResult | MedicationOrder | SkippedResource


@pytest.mark.parametrize(
    ("occasion", "entries", "expected"),
    [
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), unusable(Analyte.ALT, 1)],
            [UNUSABLE],
            id="unusable ALT newer than the latest usable",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), unusable(Analyte.AST, 3)],
            [UNUSABLE],
            id="unusable AST as recent as the latest usable",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), unusable(Analyte.ALT, 4)],
            [],
            id="unusable ALT older than the latest usable: ignored",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), unusable(Analyte.ALT, None)],
            [UNUSABLE],
            id="undated unusable ALT",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), ast(22, 3), unusable(Analyte.ALT, 400)],
            [UNUSABLE, OVERDUE],
            id="old unusable ALT and no usable ALT at all",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), unusable(Analyte.ALT, 1, UnusableReason.RETRACTED)],
            [],
            id="retracted (entered-in-error) ALT never counts",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), alt(200, 1, bound=Bound.AT_MOST)],
            [UNUSABLE],
            id="ALT <=200 U/L, newest: ambiguous",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), alt(100, 1, bound=Bound.AT_LEAST)],
            [UNUSABLE],
            id="ALT >=100 U/L, newest: ambiguous",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), unusable(Analyte.ALP, 1)],
            [],
            id="unusable ALP on therapy: not monitored",
        ),
        pytest.param(
            ORDERING,
            [*normal_panel(3), unusable(Analyte.ALP, 1)],
            [UNUSABLE],
            id="unusable ALP on a first order",
        ),
        pytest.param(
            ORDERING,
            [alt(25), ast(22), alp(80), tbili(3.0, bound=Bound.AT_MOST)],
            ["repeat-test/latest-result-unusable", "repeat-test/baseline-missing"],
            id="bilirubin <=3.0 mg/dL on a first order: unusable and missing",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), skipped("Condition")],
            [UNREADABLE],
            id="unreadable Condition",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), skipped("MedicationRequest")],
            [UNREADABLE],
            id="unreadable MedicationRequest",
        ),
        pytest.param(
            CHART_REVIEW,
            [order(), alt(25, 3), ast(22, 3), skipped("Observation")],
            [],
            id="unreadable Observation: left to the mapping layer",
        ),
    ],
)
def test_data_quality(occasion: Occasion, entries: list[Entry], expected: list[str]) -> None:
    assert reasons(run(*entries, occasion=occasion)) == expected


def test_unusable_finding_names_the_result() -> None:
    bad = unusable(Analyte.ALT, 1)
    finding = run(order(), alt(25, 3), ast(22, 3), bad).findings[0]
    assert finding.unusable == bad
    assert finding.rule == "data-quality-result-unusable"
    assert finding.due == NOW


def test_one_finding_per_unusable_result_undated_first() -> None:
    dated, undated, ast_bad = (
        unusable(Analyte.ALT, 1),
        unusable(Analyte.ALT, None),
        unusable(Analyte.AST, 0),
    )
    findings = run(order(), alt(25, 3), ast(22, 3), ast_bad, dated, undated).findings
    assert [f.unusable for f in findings] == [undated, dated, ast_bad]


def test_ambiguous_results_are_listed_with_the_unusable_ones() -> None:
    recorded = unusable(Analyte.ALT, 10)
    censored = alt(200, 1, bound=Bound.AT_MOST)
    evaluation = run(order(), alt(25, 3), ast(22, 3), recorded, censored)
    assert [u.source for u in evaluation.unusable] == [recorded.source, censored.source]
    assert evaluation.unusable[1].reason is UnusableReason.AMBIGUOUS
    assert all(a.result != censored for a in evaluation.results)


def test_unreadable_finding_lists_every_unreadable_resource() -> None:
    condition, request = skipped("Condition"), skipped("MedicationRequest")
    evaluation = run(order(), alt(25, 3), ast(22, 3), request, skipped("Observation"), condition)
    assert evaluation.findings[0].skipped == (condition, request)
    assert evaluation.findings[0].rule == "data-quality-record-unreadable"
    assert len(evaluation.skipped) == 3
