"""What the rules conclude: findings ordered by severity, and the evaluation that carries them.

The decision kinds and their order are issue 3's: contraindicated, discontinue, withhold,
repeat-test, monitor-closely, then none (no card, policy 11). A `Finding` names the rule that
fired, its machine-readable reason and its source; `cds_service.hooks.cards` owns all wording.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any

from msgspec import Struct

from cds_service.rules.config import Profile
from fhir_mappings.values import (
    Analyte,
    LabResult,
    LiverCondition,
    MedicationOrder,
    SkippedResource,
    UnusableResult,
)


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


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a finding was made: its code, its decision kind and its rank within that kind.

    Reasons are data (`reasons.toml`, which also holds each one's card wording), so a reason
    without wording cannot exist: `reason()` refuses a code the table does not hold.
    """

    code: str  # machine-readable, kebab-case, e.g. "transaminase-5x-uln"
    kind: DecisionKind
    priority: int  # lower leads within one decision kind

    def __str__(self) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class ReasonTable:
    """The reasons in priority order, with the card wording the cards module renders."""

    reasons: Mapping[str, Reason]
    summaries: Mapping[str, str]  # Jinja2 template per reason code
    advice: Mapping[str, str]  # Jinja2 template (Markdown) per reason code
    indicators: Mapping[DecisionKind, str]
    no_card: Mapping[str, str]  # what to say when there is no card


@cache
def reason_table() -> ReasonTable:
    """Return the table of `reasons.toml` (read once)."""
    data = tomllib.loads(files("cds_service.rules").joinpath("reasons.toml").read_text("utf-8"))
    entries = data["reason"]
    return ReasonTable(
        reasons=MappingProxyType(
            {
                entry["code"]: Reason(entry["code"], DecisionKind(entry["kind"]), rank)
                for rank, entry in enumerate(entries)
            }
        ),
        summaries=MappingProxyType({entry["code"]: entry["summary"] for entry in entries}),
        advice=MappingProxyType({entry["code"]: entry["advice"] for entry in entries}),
        indicators=MappingProxyType(
            {DecisionKind(kind): value for kind, value in data["indicators"].items()}
        ),
        no_card=MappingProxyType(dict(data["no_card"])),
    )


def reason(code: str) -> Reason:
    """Return the reason with this code; ValueError when `reasons.toml` has no wording for it."""
    try:
        return reason_table().reasons[code]
    except KeyError:
        raise ValueError(f"reason {code!r} has no entry in rules/reasons.toml") from None


class FollowUpTest(StrEnum):
    """A test the card can order with one click (REFERENCE §3 order codes)."""

    HEPATIC_FUNCTION_PANEL = "24325-3"  # Hepatic function 2000 panel, Serum or Plasma (V)
    INR = "6301-6"  # INR in Platelet poor plasma by Coagulation assay (V)


class AssessedResult(Struct, frozen=True):
    """A lab result set against its ULN: the row a card's table shows.

    A frozen Struct, like `LabResult`: one is made for every ALT/AST result of a request.
    """

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
class Rule:
    """A rule the service can fire: a stable id, its clinical source and the reason it gives.

    Ids never change once released (cards, audit records and golden files quote them). Each rule
    module defines its own rules; `catalogue.ALL_RULES` lists them all.
    """

    id: str
    source: str  # citation, e.g. "Kynamro PI §2.3 dose modification table; project policy 2"
    reason: Reason

    def finding(self, **evidence: Any) -> Finding:
        """Return this rule's finding with its evidence (the `Finding` fields after `source`)."""
        return Finding(
            kind=self.reason.kind,
            reason=self.reason,
            rule=self.id,
            source=self.source,
            **evidence,
        )


def rule(id: str, source: str, *, reason_code: str) -> Rule:
    """Return a rule; ValueError when its reason has no wording (at import, so tests fail)."""
    return Rule(id, source, reason(reason_code))


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
