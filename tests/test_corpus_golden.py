"""The trimmed Synthea subset gives its hand-checked golden decisions (tests/data/corpus/).

Regenerate after an intended change of the rules with `python -m tests.corpus_golden --write`,
then check each row it marks UNCHECKED against the file's results.
"""

from __future__ import annotations

import pytest

from tests.corpus_golden import (
    RUNS,
    SUBSET,
    UNCHECKED,
    differences,
    evaluate_all,
    read_golden,
    rewrite,
)
from tests.trim_corpus import is_read_by_rules

SIZE_LIMIT = 5 * 1024 * 1024  # issue 10: the committed subset stays under 5 MB


@pytest.fixture(scope="module")
def golden() -> dict[tuple[str, str, str], dict[str, str]]:
    return read_golden()


def test_the_subset_gives_the_golden_decisions(
    golden: dict[tuple[str, str, str], dict[str, str]],
) -> None:
    assert differences(golden, evaluate_all()) == []


def test_every_golden_row_was_checked_by_hand(
    golden: dict[tuple[str, str, str], dict[str, str]],
) -> None:
    unchecked = [key for key, row in golden.items() if row["clinical_reason"].startswith(UNCHECKED)]
    assert unchecked == []
    assert all(row["clinical_reason"].strip() for row in golden.values())


def test_every_file_has_a_row_with_and_without_the_what_if_order(
    golden: dict[tuple[str, str, str], dict[str, str]],
) -> None:
    files = {path.name for path in SUBSET.glob("*.json")}
    for what_if in ("no", "yes"):
        covered = {file for file, now, flag in golden if now == RUNS[0].now and flag == what_if}
        assert covered == files


def test_the_subset_covers_several_decisions(
    golden: dict[tuple[str, str, str], dict[str, str]],
) -> None:
    decisions = {row["decision"] for row in golden.values()}
    # A what-if order is a new start: an above-ULN baseline is a warning (policy 14), so the
    # sample (no mipomersen, no liver Conditions) gives no monitor-closely or critical card.
    assert {"none", "repeat-test", "not-involved", "error"} <= decisions


def test_the_subset_is_small_and_holds_only_what_the_rules_read() -> None:
    import json

    files = list(SUBSET.glob("*.json"))
    assert sum(path.stat().st_size for path in files) < SIZE_LIMIT
    for path in files:
        bundle = json.loads(path.read_text(encoding="utf-8"))
        assert all(is_read_by_rules(entry["resource"]) for entry in bundle["entry"]), path.name


def test_a_changed_decision_is_marked_unchecked_on_rewrite() -> None:
    key = ("f.json", RUNS[0].now, "yes")
    old = {
        "file": "f.json",
        "now": RUNS[0].now,
        "what_if": "yes",
        "decision": "repeat-test",
        "reason": "baseline-missing",
        "rule": "policy-7-baseline",
        "clinical_reason": "No liver tests",
    }
    kept = rewrite({key: old}, {key: ("repeat-test", "baseline-missing", "policy-7-baseline")})
    assert kept[0]["clinical_reason"] == "No liver tests"
    changed = rewrite({key: old}, {key: ("none", "", "")})
    assert changed[0]["clinical_reason"].startswith(f"{UNCHECKED} (was repeat-test/baseline")
    assert rewrite({}, {key: ("none", "", "")})[0]["clinical_reason"].startswith(UNCHECKED)
