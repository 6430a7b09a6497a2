"""The entry point: ordering of findings, the evaluation it returns, and the pure-domain promise."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime

import pytest

import cds_service.rules as rules
from cds_service.rules import DecisionKind, Occasion, evaluate
from cds_service.rules.catalogue import ALL_RULES
from cds_service.rules.decision import reason, reason_table
from fhir_mappings.values import Analyte, PatientRecord

from .builders import (
    LABEL,
    NOW,
    ORDERING,
    alt,
    ast,
    draft,
    liver_disease,
    normal_panel,
    order,
    reasons,
    run,
    skipped,
    symptom,
    tbili,
    unusable,
)


def test_all_current_and_normal_gives_no_finding() -> None:
    evaluation = run(order(200), *normal_panel(3))
    assert evaluation.findings == ()
    assert evaluation.kind is DecisionKind.NONE
    assert evaluation.decision is None


def test_findings_most_severe_first() -> None:
    evaluation = run(
        *normal_panel(),
        alt(250),
        tbili(2.4),
        symptom(1),
        liver_disease(),
        unusable(Analyte.AST, 0),
        skipped("Condition"),
        occasion=ORDERING,
    )
    assert reasons(evaluation) == [
        "contraindicated/active-liver-disease",
        "discontinue/transaminase-with-bilirubin",
        "discontinue/transaminase-with-symptoms",
        "discontinue/transaminase-with-liver-disease",
        "withhold/transaminase-5x-uln",
        "repeat-test/latest-result-unusable",
        "repeat-test/baseline-abnormal",  # a warning since policy 14
        "monitor-closely/record-unreadable",
    ]
    assert evaluation.kind is DecisionKind.CONTRAINDICATED
    severities = [f.kind.severity for f in evaluation.findings]
    assert severities == sorted(severities, reverse=True)


def test_evaluation_carries_its_inputs_and_results_newest_first() -> None:
    orders = (draft(),)
    old, new, bad = alt(25, 10), ast(22, 1), unusable(Analyte.ALT, 2)
    patient_skip = skipped("Observation")
    evaluation = run(old, new, bad, patient_skip, occasion=ORDERING, orders=orders)
    assert evaluation.profile is LABEL.profile
    assert evaluation.occasion is Occasion.ORDERING
    assert evaluation.now == NOW
    assert [a.result for a in evaluation.results] == [new, old]
    assert all(a.uln_is_default for a in evaluation.results)
    assert evaluation.unusable == (bad,)
    assert evaluation.skipped == (patient_skip,)
    assert evaluation.orders == orders
    assert evaluation.therapy_start == NOW


def test_every_reason_has_wording_and_every_wording_entry_a_rule() -> None:
    table = reason_table()
    used = {rule.reason.code for rule in ALL_RULES}
    assert used == set(table.reasons) == set(table.summaries) == set(table.advice)
    assert set(table.indicators) == set(DecisionKind) - {DecisionKind.NONE}


def test_a_reason_without_wording_is_refused() -> None:
    with pytest.raises(ValueError, match="no entry in rules/reasons.toml"):
        reason("transaminase-10x-uln")


def test_every_rule_has_a_unique_id_and_a_source() -> None:
    ids = [rule.id for rule in ALL_RULES]
    assert len(ids) == len(set(ids))
    assert all(rule.source for rule in ALL_RULES)


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(
            PatientRecord(),
            orders=(),
            occasion=Occasion.CHART_REVIEW,
            config=LABEL,
            now=datetime(2026, 1, 1),  # naive on purpose
        )


def test_public_surface_is_sorted() -> None:
    assert rules.__all__ == sorted(rules.__all__)
    assert "evaluate" in rules.__all__


def test_rules_import_no_web_framework_or_service_module() -> None:
    code = textwrap.dedent(
        """
        import sys
        import cds_service.rules
        assert "flask" not in sys.modules, "flask imported"
        assert "requests" not in sys.modules, "requests imported"
        assert "pydantic_settings" not in sys.modules, "pydantic_settings imported"
        outside = sorted(
            name for name in sys.modules
            if name.startswith("cds_service.") and not name.startswith("cds_service.rules")
        )
        assert not outside, outside
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
