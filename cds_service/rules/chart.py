"""The patient record as the rules read it, computed once per evaluation.

Assesses every lab result against its ULN (`uln`, policy 4), reads the current transaminase level
(`transaminases`, policy 3) and the therapy context (`therapy`, policy 7), so each rule module only
asks questions of one `Chart`.

When the record is read at `now`
Then results are ordered newest first and conditions most recently recorded first, both
independent of the order of entries in the record; results whose level is unknown join the
record's unusable results.

When a first mipomersen order is placed (no earlier order), results taken before the baseline
window (30 days before now) are history; when the patient is on therapy, results taken before
the course began are history (policy 13)
Then history never drives a confirm, withhold or discontinue decision: the rules that decide on
the transaminase level read `current_results` only, and the abnormal results among the history
are listed on the card. Monitoring cadence, data quality and the card's table read every result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cds_service.rules.config import Profile, RuleConfig
from cds_service.rules.decision import AssessedResult, Occasion
from cds_service.rules.ordering import condition_key, newest_first
from cds_service.rules.therapy import is_new_therapy, prior_orders, therapy_start
from cds_service.rules.transaminases import (
    CurrentTransaminases,
    WithholdEpisode,
    current_transaminases,
    latest_result,
    latest_withhold_episode,
    multiple_rank,
)
from cds_service.rules.uln import assess_results, is_above_uln
from fhir_mappings.values import (
    Analyte,
    LiverCondition,
    LiverConditionKind,
    MedicationOrder,
    PatientRecord,
    SkippedResource,
    UnusableResult,
)


@dataclass(frozen=True, slots=True)
class Chart:
    """Everything one evaluation needs, read once from the record."""

    config: RuleConfig
    occasion: Occasion
    now: datetime
    results: tuple[AssessedResult, ...]  # usable results, newest first
    current_results: tuple[AssessedResult, ...]  # the results that may decide (policy 13)
    history: tuple[AssessedResult, ...]  # abnormal results before them, worst first per analyte
    history_before: datetime | None  # where history ends (None: no history)
    unusable: tuple[UnusableResult, ...]  # the record's, then those of unknown level
    conditions: tuple[LiverCondition, ...]  # most recently recorded first, undated last
    skipped: tuple[SkippedResource, ...]
    orders: tuple[MedicationOrder, ...]  # the mipomersen orders in scope
    prior_orders: tuple[MedicationOrder, ...]
    therapy_start: datetime | None
    transaminases: CurrentTransaminases | None  # from the current results
    withhold_episode: WithholdEpisode | None  # the latest one, from the current results

    @property
    def is_conservative(self) -> bool:
        """Return True under the conservative profile (policy 1)."""
        return self.config.profile is Profile.CONSERVATIVE

    @property
    def is_new_therapy(self) -> bool:
        """Return True when a first mipomersen order is being placed (policy 7)."""
        return is_new_therapy(self.occasion, self.prior_orders)

    @property
    def is_withholding(self) -> bool:
        """Return True while a withhold lasts: warranted and not yet resolved (policy 12)."""
        return self.withhold_episode is not None and not self.withhold_episode.resolved

    def results_of(self, analyte: Analyte) -> tuple[AssessedResult, ...]:
        """Return the analyte's usable results, newest first."""
        return tuple(a for a in self.results if a.result.analyte is analyte)

    def current_of(self, analyte: Analyte) -> tuple[AssessedResult, ...]:
        """Return the analyte's results that may decide (not history), newest first."""
        return tuple(a for a in self.current_results if a.result.analyte is analyte)

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
    start = therapy_start(prior, in_scope)
    history_before = now - config.baseline_window if is_new_therapy(occasion, prior) else start
    current = tuple(
        a for a in results if history_before is None or a.result.effective >= history_before
    )
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
        current_results=current,
        history=abnormal_history(results, history_before),
        history_before=history_before if len(current) < len(results) else None,
        unusable=record.unusable_results + ambiguous,
        conditions=conditions,
        skipped=record.skipped,
        orders=in_scope,
        prior_orders=prior,
        therapy_start=start,
        transaminases=current_transaminases(current, config),
        withhold_episode=latest_withhold_episode(current, config),
    )


def abnormal_history(
    results: Sequence[AssessedResult], before: datetime | None
) -> tuple[AssessedResult, ...]:
    """Return, per analyte, the highest result above ULN taken before `before` (policy 13)."""
    if before is None:
        return ()
    worst: dict[Analyte, AssessedResult] = {}
    for assessed in results:  # newest first, so the latest wins a tie
        if assessed.result.effective >= before or not is_above_uln(assessed):
            continue
        analyte = assessed.result.analyte
        if analyte not in worst or multiple_rank(assessed) > multiple_rank(worst[analyte]):
            worst[analyte] = assessed
    return tuple(worst[analyte] for analyte in Analyte if analyte in worst)
