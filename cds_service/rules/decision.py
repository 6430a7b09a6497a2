"""What the rules conclude: findings ordered by severity, and the evaluation that carries them.

The decision kinds and their order are issue 3's: contraindicated, discontinue, withhold,
repeat-test, monitor-closely, then none (no card, policy 11). A `Finding` names the rule that
fired, its machine-readable reason and its source; `cds_service.cards` owns all wording.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fhir_mappings.values import (
    Analyte,
    LabResult,
    LiverCondition,
    MedicationOrder,
    SkippedResource,
    UnusableResult,
)

from .config import Profile


class DecisionKind(StrEnum):
    """What the clinician should do about mipomersen, most severe first."""

    CONTRAINDICATED = "contraindicated"
    DISCONTINUE = "discontinue"
    WITHHOLD = "withhold"
    REPEAT_TEST = "repeat-test"
    MONITOR_CLOSELY = "monitor-closely"
    NONE = "none"

    @property
    def severity(self) -> int:
        """Return a rank where a larger number is more severe (none is 0)."""
        return len(_ORDER) - 1 - _ORDER.index(self)


_ORDER: tuple[DecisionKind, ...] = tuple(DecisionKind)


class Occasion(StrEnum):
    """Why the rules run: a mipomersen order is being placed, or a chart is being reviewed."""

    ORDERING = "ordering"  # order-select / order-sign: the draft order is a new prescription
    CHART_REVIEW = "chart-review"  # patient-view: a patient already on mipomersen


class Reason(StrEnum):
    """Machine-readable reason of a finding; the card module has one wording per reason."""

    ACTIVE_LIVER_DISEASE = "active-liver-disease"
    ACTIVE_LIVER_DISEASE_ON_THERAPY = "active-liver-disease-on-therapy"
    ELEVATION_WITH_BILIRUBIN = "transaminase-with-bilirubin"
    ELEVATION_WITH_SYMPTOMS = "transaminase-with-symptoms"
    ELEVATION_WITH_LIVER_DISEASE = "transaminase-with-liver-disease"
    SEVERE_ELEVATION = "transaminase-5x-uln"
    CONFIRMED_ELEVATION = "confirmed-transaminase-3x-uln"
    ELEVATION_NOT_RESOLVED = "transaminase-not-resolved"
    ELEVATION_PENDING_REPEAT = "transaminase-3x-uln-pending-repeat"  # conservative profile
    CONFIRM_ELEVATION = "confirm-transaminase-3x-uln"
    BASELINE_MISSING = "baseline-missing"
    MONITORING_OVERDUE = "monitoring-overdue"
    RESULT_UNUSABLE = "latest-result-unusable"
    ABOVE_ULN = "transaminase-above-uln"
    RESOLVED_AFTER_ELEVATION = "resolved-after-elevation"
    BASELINE_ABNORMAL = "baseline-abnormal"
    RECORD_UNREADABLE = "record-unreadable"


class FollowUpTest(StrEnum):
    """A test the card can order with one click (REFERENCE §3 order codes)."""

    HEPATIC_FUNCTION_PANEL = "24325-3"  # Hepatic function 2000 panel, Serum or Plasma (V)
    INR = "6301-6"  # INR in Platelet poor plasma by Coagulation assay (V)


@dataclass(frozen=True, slots=True)
class AssessedResult:
    """A lab result set against its ULN: the row a card's table shows."""

    result: LabResult
    uln: float | None  # None for analytes without a ULN (INR)
    uln_is_default: bool = False

    @property
    def multiple(self) -> float | None:
        """Return the value as a multiple of ULN, or None when there is no ULN."""
        if self.uln is None:
            return None
        return self.result.value / self.uln


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's conclusion, with the evidence a clinician needs to check it."""

    kind: DecisionKind
    reason: Reason
    rule: str  # stable id, e.g. "label-2.3-withhold-5x-uln"
    source: str  # citation, e.g. "Kynamro PI §2.3 dose modification table"
    deciding: AssessedResult | None = None  # the number the summary quotes
    supporting: tuple[AssessedResult, ...] = ()  # e.g. the earlier confirming result
    condition: LiverCondition | None = None
    unusable: UnusableResult | None = None
    missing: tuple[Analyte, ...] = ()  # analytes with no (current) result
    last_tested: datetime | None = None  # for overdue monitoring
    follow_up: tuple[FollowUpTest, ...] = ()
    due: datetime | None = None
    skipped: tuple[SkippedResource, ...] = ()  # unreadable resources (record-unreadable)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The outcome of applying every rule to one patient record at one instant."""

    profile: Profile
    occasion: Occasion
    now: datetime
    findings: tuple[Finding, ...]  # most severe first; empty means no card
    results: tuple[AssessedResult, ...]  # every usable liver result, newest first
    unusable: tuple[UnusableResult, ...] = ()
    skipped: tuple[SkippedResource, ...] = ()
    orders: tuple[MedicationOrder, ...] = ()  # the mipomersen orders evaluated
    therapy_start: datetime | None = None
    excluded: tuple[SkippedResource, ...] = ()  # not provably this patient's (policy 15)
    history: tuple[AssessedResult, ...] = ()  # abnormal results that may not decide (policy 13)
    history_before: datetime | None = None  # where history ends

    @property
    def decision(self) -> Finding | None:
        """Return the most severe finding, or None when no card is warranted."""
        return self.findings[0] if self.findings else None

    @property
    def kind(self) -> DecisionKind:
        """Return the decision kind, `none` when there is no finding."""
        return self.findings[0].kind if self.findings else DecisionKind.NONE
