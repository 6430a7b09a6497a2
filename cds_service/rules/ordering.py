"""Deterministic orders for results, conditions and unusable results.

The order of entries in a FHIR Bundle carries no meaning, so every choice the rules make ("the
latest result", "the first condition") must not depend on it (STYLE guideline 11). These keys
compare every field, so two entries that sort equal are equal values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from cds_service.rules.decision import AssessedResult
from fhir_mappings.values import (
    Analyte,
    LabResult,
    LiverCondition,
    ResourceRef,
    UnusableResult,
)

T = TypeVar("T")

_ANALYTE_POSITION: dict[Analyte, int] = {analyte: index for index, analyte in enumerate(Analyte)}


def analyte_position(analyte: Analyte) -> int:
    """Return the analyte's position in its definition order (ALT first)."""
    return _ANALYTE_POSITION[analyte]


def _ref_key(ref: ResourceRef) -> tuple[str, str, str, str]:
    return (ref.resource_type, ref.path, ref.id or "", ref.version or "")


def result_key(result: LabResult) -> tuple[object, ...]:
    """Return a total order over lab results that ignores their effective time."""
    return (
        analyte_position(result.analyte),
        result.loinc,
        result.value,
        result.bound.value,
        _ref_key(result.source),
        result.reference_high is None,
        result.reference_high or 0.0,
        result.preliminary,
        result.reported,
        result.date_only,
    )


def condition_key(condition: LiverCondition) -> tuple[object, ...]:
    """Return a total order over conditions that ignores their recorded time."""
    coding = condition.coding
    return (
        condition.kind.value,
        coding.system or "",
        coding.code or "",
        coding.display or "",
        condition.name,
        _ref_key(condition.source),
    )


def unusable_key(unusable: UnusableResult) -> tuple[object, ...]:
    """Return a total order over unusable results that ignores their effective time."""
    return (
        analyte_position(unusable.analyte),
        unusable.loinc,
        unusable.reason.value,
        unusable.detail,
        _ref_key(unusable.source),
    )


def newest_first(
    items: Iterable[T],
    *,
    when: Callable[[T], datetime | None],
    key: Callable[[T], tuple[object, ...]],
    undated_first: bool,
) -> tuple[T, ...]:
    """Return the items newest first, ties in `key` order, undated ones first or last."""
    ordered = sorted(items, key=key)
    dated = [(moment, item) for item in ordered if (moment := when(item)) is not None]
    dated.sort(key=lambda pair: pair[0], reverse=True)  # stable, also with reverse=True
    undated = [item for item in ordered if when(item) is None]
    newest = [item for _, item in dated]
    return tuple(undated + newest) if undated_first else tuple(newest + undated)


def results_newest_first(results: Iterable[AssessedResult]) -> tuple[AssessedResult, ...]:
    """Return assessed results newest first, in a deterministic order within one instant."""
    return newest_first(
        results,
        when=lambda assessed: assessed.result.effective,
        key=lambda assessed: result_key(assessed.result),
        undated_first=False,
    )
