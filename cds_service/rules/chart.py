"""The patient record as the rules read it, computed once per evaluation.

Assesses every lab result against its ULN (`uln`, policy 4), reads the current transaminase level
(`transaminases`, policy 3) and the therapy context (`therapy`, policy 7), so each rule module only
asks questions of one `Chart`.

When the record is read at `now`
Then results are ordered newest first and conditions most recently recorded first, both
independent of the order of entries in the record; results whose level is unknown join the
record's unusable results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fhir_mappings.values import (
    Analyte,
    LiverCondition,
    LiverConditionKind,
    MedicationOrder,
    PatientRecord,
    SkippedResource,
    UnusableResult,
)

from .config import Profile, RuleConfig
from .decision import AssessedResult, Occasion
from .ordering import condition_key, newest_first
from .therapy import is_new_therapy, prior_orders, therapy_start
from .transaminases import CurrentTransaminases, current_transaminases, latest_result
from .uln import assess_results


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything one evaluation needs, read once from the record."""

    config: RuleConfig
    occasion: Occasion
    now: datetime
    results: tuple[AssessedResult, ...]  # usable results, newest first
    unusable: tuple[UnusableResult, ...]  # the record's, then those of unknown level
    conditions: tuple[LiverCondition, ...]  # most recently recorded first, undated last
    skipped: tuple[SkippedResource, ...]
    orders: tuple[MedicationOrder, ...]  # the mipomersen orders in scope
    prior_orders: tuple[MedicationOrder, ...]
    therapy_start: datetime | None
    transaminases: CurrentTransaminases | None

    @property
    def is_conservative(self) -> bool:
        """Return True under the conservative profile (policy 1)."""
        return self.config.profile is Profile.CONSERVATIVE

    @property
    def is_new_therapy(self) -> bool:
        """Return True when a first mipomersen order is being placed (policy 7)."""
        return is_new_therapy(self.occasion, self.prior_orders)

    def results_of(self, analyte: Analyte) -> tuple[AssessedResult, ...]:
        """Return the analyte's usable results, newest first."""
        return tuple(a for a in self.results if a.result.analyte is analyte)

    def latest(self, analyte: Analyte) -> AssessedResult | None:
        """Return the analyte's latest usable result (the highest one on a tie in time)."""
        return latest_result(self.results, analyte)

    def conditions_of(self, kind: LiverConditionKind) -> tuple[LiverCondition, ...]:
        """Return the conditions of one kind, most recently recorded first."""
        return tuple(c for c in self.conditions if c.kind is kind)


def read_chart(
    record: PatientRecord,
    *,
    orders: Sequence[MedicationOrder],
    occasion: Occasion,
    config: RuleConfig,
    now: datetime,
) -> Chart:
    """Return the chart the rules read: assessed results, ordered entries, therapy context."""
    results, ambiguous = assess_results(record.lab_results, config)
    prior = prior_orders(record.medication_orders)
    in_scope = tuple(orders)
    conditions = newest_first(
        record.conditions,
        when=lambda condition: condition.recorded,
        key=condition_key,
        undated_first=False,
    )
    return Chart(
        config=config,
        occasion=occasion,
        now=now,
        results=results,
        unusable=record.unusable_results + ambiguous,
        conditions=conditions,
        skipped=record.skipped,
        orders=in_scope,
        prior_orders=prior,
        therapy_start=therapy_start(prior, in_scope),
        transaminases=current_transaminases(results, config),
    )
