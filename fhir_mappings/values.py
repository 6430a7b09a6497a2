"""Typed values that FHIR R4 JSON is mapped into: the only shapes the rules ever see.

Everything here is a frozen dataclass, a frozen `msgspec.Struct` or an enum; nothing holds a raw
FHIR dict. Each value keeps a `ResourceRef` so a card or an audit record can say exactly which
resource (id, version and the dotted path in the request) a number came from.

The values made once per liver result (`ResourceRef`, `LabResult`, `UnusableResult`) are frozen
Structs: typed, immutable, compared and hashed by value like the dataclasses, and made in C,
about ten times faster than a frozen dataclass (1.9 against 0.2 µs for a `LabResult`), which
counts when a request holds hundreds of results (issue 13).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from msgspec import Struct


class Analyte(StrEnum):
    """A liver-related laboratory test the service understands (clinical reference §3)."""

    ALT = "ALT"
    AST = "AST"
    TOTAL_BILIRUBIN = "total bilirubin"
    DIRECT_BILIRUBIN = "direct bilirubin"
    ALP = "ALP"
    GGT = "GGT"
    INR = "INR"

    @property
    def canonical_unit(self) -> str:
        """Return the unit every value of this analyte is normalised to (policy 5)."""
        return _CANONICAL_UNITS[self]


_CANONICAL_UNITS: dict[Analyte, str] = {
    Analyte.ALT: "U/L",
    Analyte.AST: "U/L",
    Analyte.ALP: "U/L",
    Analyte.GGT: "U/L",
    Analyte.TOTAL_BILIRUBIN: "mg/dL",
    Analyte.DIRECT_BILIRUBIN: "mg/dL",
    Analyte.INR: "{INR}",
}

# The analyte groups the label names, defined once (docs/clinical-policy.md, policies 2 and 7).
# ALT and AST: the transaminases every threshold is about, in the order a tie is broken.
TRANSAMINASES: tuple[Analyte, ...] = (Analyte.ALT, Analyte.AST)
# PI W&P 5.1: the baseline before the first dose (the transaminases are also monitored after it).
BASELINE_ANALYTES: tuple[Analyte, ...] = (*TRANSAMINASES, Analyte.ALP, Analyte.TOTAL_BILIRUBIN)


class Bound(StrEnum):
    """How a reported value relates to the true value (`valueQuantity.comparator`)."""

    EXACT = "="
    AT_LEAST = ">="  # `>` or `>=`: the true value is at least the reported one
    AT_MOST = "<="  # `<` or `<=`: the true value is at most the reported one


# The values read from each result (a long history holds thousands) hold only strings, numbers,
# enums, times and one another, never a cycle: the garbage collector need not track them.
class ResourceRef(Struct, frozen=True, gc=False):
    """Where a value came from: resource type, id, version and dotted path in the request."""

    resource_type: str
    id: str | None
    path: str
    version: str | None = None

    @property
    def reference(self) -> str | None:
        """Return the relative reference `Type/id`, or None for a resource without id."""
        return f"{self.resource_type}/{self.id}" if self.id else None


class LabResult(Struct, frozen=True, gc=False):
    """One usable liver test result, normalised to its analyte's canonical unit.

    `reference_high` is the Observation's own `referenceRange.high` converted to the canonical
    unit, or None when the resource had no usable one (the rules then use a configured default
    ULN and the card says so).
    """

    analyte: Analyte
    loinc: str
    value: float
    bound: Bound
    effective: datetime  # timezone-aware, UTC
    source: ResourceRef
    reference_high: float | None = None
    preliminary: bool = False
    reported: str = ""  # value and unit as sent, e.g. "3.9 ukat/L", for the card
    date_only: bool = False  # effective time had day precision only

    @property
    def unit(self) -> str:
        """Return the canonical unit of `value`."""
        return self.analyte.canonical_unit


class UnusableReason(StrEnum):
    """Why a liver test result cannot be used (REFERENCE policy 5; issue 3)."""

    UNKNOWN_UNIT = "unknown-unit"
    NO_VALUE = "no-value"
    DATA_ABSENT = "data-absent"
    NO_DATE = "no-date"
    STATUS = "status"  # registered, unknown, ...: not a reportable result
    RETRACTED = "retracted"  # entered-in-error or cancelled: listed, never used
    INVALID = "invalid"  # failed FHIR validation
    AMBIGUOUS = "ambiguous"  # e.g. "<= 200 U/L" with a ULN of 40: the level is unknown
    UNATTRIBUTED = "unattributed"  # no subject: cannot be told to be this patient's (policy 15)


class UnusableResult(Struct, frozen=True, gc=False):
    """A liver test result the service will not guess at, with a plain-language reason."""

    analyte: Analyte
    loinc: str
    reason: UnusableReason
    detail: str  # e.g. "unit 'mmol/L' is not a recognised unit for ALT"
    source: ResourceRef
    effective: datetime | None = None

    @property
    def is_retracted(self) -> bool:
        """Return True for results withdrawn by the lab, which never stand in for a test."""
        return self.reason is UnusableReason.RETRACTED


@dataclass(frozen=True, slots=True)
class Coding:
    """A FHIR Coding reduced to what the service reads."""

    system: str | None
    code: str | None
    display: str | None = None


@dataclass(frozen=True, slots=True)
class SkippedResource:
    """A resource the rules would have used but that failed FHIR validation."""

    resource_type: str
    id: str | None
    path: str  # dotted path of the first error, e.g. prefetch.labs.entry[3].resource.valueQuantity
    message: str
    read_in_part: bool = False  # a mipomersen order still used for what could be read (policy 15)


@dataclass(frozen=True, slots=True)
class MedicationOrder:
    """A mipomersen MedicationRequest (policy 6), from the draft orders or the patient's history."""

    source: ResourceRef
    status: str
    intent: str | None
    authored_on: datetime | None
    subject: str | None  # reference as sent, e.g. "Patient/123"
    medication: str  # human-readable name for the card
    matched_by: str  # why it is mipomersen, e.g. "ATC C10AX11" or "text 'Kynamro'"
    is_draft_order: bool = False  # came from context.draftOrders
    problem: SkippedResource | None = None  # the element that could not be read, if any


class LiverConditionKind(StrEnum):
    """The two groups of Conditions the label acts on (REFERENCE §5, policies 9 and 10)."""

    ACTIVE_LIVER_DISEASE = "active liver disease"  # incl. hepatic impairment
    LIVER_INJURY_SYMPTOM = "symptom of liver injury"


@dataclass(frozen=True, slots=True)
class LiverCondition:
    """An active, not refuted, not entered-in-error Condition from the project's code lists."""

    kind: LiverConditionKind
    coding: Coding
    recorded: datetime | None  # recordedDate, else onset; None when neither is usable
    source: ResourceRef
    name: str = ""  # display for the card


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """Everything the rules need about one patient, parsed once at the edge."""

    lab_results: tuple[LabResult, ...] = ()
    unusable_results: tuple[UnusableResult, ...] = ()
    medication_orders: tuple[MedicationOrder, ...] = ()
    conditions: tuple[LiverCondition, ...] = ()
    skipped: tuple[SkippedResource, ...] = ()
    excluded: tuple[SkippedResource, ...] = ()  # not provably this patient's (policy 15)

    @property
    def draft_orders(self) -> tuple[MedicationOrder, ...]:
        """Return the mipomersen orders that came in `context.draftOrders`."""
        return tuple(order for order in self.medication_orders if order.is_draft_order)


# Given the usable reads (not validated yet) of every result `keep_older` accepts, and a function
# that validates the i-th and says whether it stands as read, return the indices of those to read.
SelectResults = Callable[[Sequence[LabResult], Callable[[int], bool]], Iterable[int]]


@dataclass(frozen=True, slots=True)
class ReadingWindow:
    """Which liver results a caller can use, so the rest need not be read or validated.

    Each analyte's latest usable result, and its latest usable exact one, are always read. The
    window is measured back from the earliest of `now` and those results of the `anchors`
    analytes: every result within `recent` of it is read; an older one within `lookback` (any age
    when None) is read only when `keep_older` says so (all of them when it is None) or when it is
    unusable or invalid; anything older is left out. With `select_older`, the older results
    `keep_older` accepts are kept only when it chooses them or when they fail validation: it is
    shown every result `keep_older` accepts, inside the window or not, as read before validation,
    and may validate any of them.
    """

    now: datetime
    recent: timedelta
    lookback: timedelta | None  # None: no limit
    anchors: tuple[Analyte, ...] = TRANSAMINASES
    keep_older: Callable[[LabResult], bool] | None = None
    select_older: SelectResults | None = None
    # The only analytes `keep_older` can accept (None: any): an older result of another analyte
    # is kept only when it is unusable or invalid (then it is named). Those of these analytes
    # are read (and validated) in one walk as the record is read; the others when needed.
    older_analytes: tuple[Analyte, ...] | None = None


@dataclass(frozen=True, slots=True)
class MedicationCodes:
    """Codings that identify mipomersen beyond ATC C10AX11 and its names (policy 6).

    Deployers add local RxNorm or NDC codes here; REFERENCE §2 found none that could be verified,
    so the default list is empty.
    """

    codes: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (system, code)
