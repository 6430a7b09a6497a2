"""Validate and read an ordinary liver-test Observation in one walk (issue 13).

Nearly every lab result an EHR sends has one shape: id, meta, a final-type status, a LOINC
`code`, `subject`, `effectiveDateTime`, `issued`, a `valueQuantity` in a UCUM unit and a
reference range, beside elements the rules never read (category, performer, interpretation...).
The general path walks such a resource three times (the consumed-element checker, the
usability check, the mapper), about 20 µs. This module walks it once: each consumed element is
checked as `_consumed.is_certainly_valid` checks it and mapped as
`_observations.read_lab_result` maps it, and strings that repeat within a request (systems,
codes, units, displays) are checked once per record.

It answers only for shapes it is sure of; anything else (effectivePeriod, dataAbsentReason, a
value that is not a Quantity, a `_x` primitive extension, a blank string, a null) gives None,
and the caller takes the general path, which validates with the checker or the models and names
the failing element. So this module can only ever agree with the general path:
tests/fhir_mappings/test_ordinary_observations.py checks it on generated and mutated resources.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from msgspec import Struct

from fhir_mappings import _consumed as consumed
from fhir_mappings._consumed import CONSUMED, declared_elements
from fhir_mappings._observations import (
    _BOUNDS,
    _PRELIMINARY_STATUS,
    _RETRACTED_STATUSES,
    _USABLE_STATUSES,
    _unknown_unit,
    reference_high,
)
from fhir_mappings._resources import FhirItem
from fhir_mappings._units import UCUM_SYSTEM, UnitFactor, unit_factor
from fhir_mappings.decimals import LARGEST_DOUBLE, as_double
from fhir_mappings.values import (
    Analyte,
    Bound,
    LabResult,
    ResourceRef,
    UnusableReason,
    UnusableResult,
)

__all__ = [
    "NotOrdinary",
    "OrdinaryRead",
    "OrdinaryReader",
    "allowed_keys",
    "day_exists",
    "quantity_json",
    "reported_around",
    "reports_a_result",
]

_OBSERVATION = "Observation"
_CONSUMED = CONSUMED[_OBSERVATION]
# Keys of an Observation this module reads itself; any other consumed key means "general path".
_READ_HERE = frozenset(
    {
        "resourceType",
        "id",
        "meta",
        "status",
        "code",
        "subject",
        "effectiveDateTime",
        "issued",
        "valueQuantity",
        "referenceRange",
    }
)
# effective[x] choices `_observations._effective_time` reads that this reader leaves to it
_OTHER_TIMES = ("effectivePeriod", "effectiveInstant")
_CODING_KEYS = frozenset({"system", "version", "code", "display", "userSelected"})
_REFERENCE_KEYS = frozenset({"reference", "type", "display"})
_QUANTITY_KEYS = frozenset({"value", "comparator", "unit", "system", "code"})
_SIMPLE_QUANTITY_KEYS = frozenset({"value", "unit", "system", "code"})
_RANGE_KEYS = frozenset({"low", "high", "type", "appliesTo", "text"})
_list_of_concepts = consumed._list_of(consumed._codeable_concept)


class OrdinaryRead(Struct, frozen=True, gc=False):
    """A valid liver-test Observation read in one walk: its cheap day and its result.

    `day` is what `_observations.effective_day` gives; `result` what `read_lab_result` gives.
    """

    day: date | None
    result: LabResult | UnusableResult


class OrdinaryReader:
    """Read the ordinary Observations of one record, remembering what was already checked.

    Within one request the same code, subject, unit and reference range come back on result
    after result, so an element equal (by value, compared in C) to one already checked is not
    checked again, and its reading (the upper limit in the canonical unit) is reused. Nothing is
    kept beyond the reader, which lives for one record: every request is read cold.
    """

    __slots__ = (
        "_codes",
        "_strings",
        "_uris",
        "_allowed",
        "_concepts",
        "_subjects",
        "_quantity_parts",
        "_factors",
        "_instants",
        "_times",
        "_single_ranges",
        "_ids",
    )

    def __init__(self) -> None:
        """Start with nothing remembered."""
        self._codes: set[str] = set()
        self._strings: set[str] = set()
        self._uris: set[str] = set()
        self._allowed = allowed_keys()
        self._concepts: dict[str, object] = {}  # LOINC code -> a `code` element checked
        self._subjects: dict[object, object] = {}  # reference -> a `subject` element checked
        self._quantity_parts: set[tuple[str, str]] = set()  # (key, string) checked
        self._factors: dict[tuple[Analyte, str | None, str | None], UnitFactor | None] = {}
        self._instants: set[str] = set()  # instants checked
        self._ids: set[str] = set()  # version ids checked
        # (element, text) -> (time in UTC, date_only, why there is none, cheap day)
        self._times: dict[tuple[str, str], tuple[datetime | None, bool, str, date | None]] = {}
        # (analyte, value's UCUM code, value's unit text) -> (the one range checked, the types
        # of its low and high values, its upper limit in the canonical unit)
        self._single_ranges: dict[
            tuple[Analyte, str | None, str | None],
            tuple[dict[str, Any], tuple[type | None, type | None], float | None],
        ] = {}

    def read(self, item: FhirItem, analyte: Analyte, loinc: str) -> OrdinaryRead | None:
        """Return the day and result of a valid ordinary Observation; None: ask the general path."""
        resource: dict[str, Any] = item.resource  # type: ignore[assignment]
        if (
            type(resource) is not dict
            or not resource.keys() <= self._allowed  # another consumed element, or unknown
            or "status" not in resource
            or "code" not in resource
            or None in resource.values()  # a null is never valid (the models name it)
        ):
            return None
        try:
            return self._read(item, resource, analyte, loinc)
        except NotOrdinary:
            return None

    def reads_as_usable(self, item: FhirItem, analyte: Analyte) -> bool | None:
        """Return what `_observations.reads_as_usable` returns, or None: ask it.

        Nothing is validated, as there: the window asks this of older results it will not read
        unless they are unusable. Only the common shape is answered here (a string status,
        effectiveDateTime or issued as the time, a Quantity with a number and string units).
        """
        resource = item.resource
        if type(resource) is not dict or "dataAbsentReason" in resource:
            return None
        status = resource.get("status")
        if type(status) is not str or not status.strip():
            return None
        if status not in _USABLE_STATUSES and status != _PRELIMINARY_STATUS:
            return False
        quantity = resource.get("valueQuantity")
        if type(quantity) is not dict:
            return None
        value = quantity.get("value")
        if type(value) is int:
            if not -LARGEST_DOUBLE <= value <= LARGEST_DOUBLE:
                return None  # no double holds it: asked the general way
        elif type(value) is not float or not math.isfinite(value):
            return None
        comparator = quantity.get("comparator")
        unit_code = quantity.get("code")
        text = quantity.get("unit")
        for part in (comparator, unit_code, text):
            if part is not None and (type(part) is not str or not part.strip()):
                return None
        code = unit_code if quantity.get("system") == UCUM_SYSTEM else None
        if self._canonical(analyte, float(value), code, text, unit_code) is None:
            return False
        if comparator is not None and comparator not in _BOUNDS:
            return False
        if any(key in resource for key in _OTHER_TIMES):
            return None
        for name in ("effectiveDateTime", "issued"):
            text = resource.get(name)
            if text is None:
                continue
            if type(text) is not str or not text.strip():
                return None
            try:
                if name == "issued":
                    self._instant(text)
                return self._effective(text, name)[0] is not None
            except NotOrdinary:  # not a strict FHIR time: the general parser decides
                return None
        return False  # no effective time and no issued time

    # --- the walk -------------------------------------------------------------------------

    def _read(
        self, item: FhirItem, resource: dict[str, Any], analyte: Analyte, loinc: str
    ) -> OrdinaryRead:
        resource_id = resource.get("id")
        if resource_id is not None and (
            type(resource_id) is not str or consumed._ID.fullmatch(resource_id) is None
        ):
            raise NotOrdinary
        meta = resource.get("meta")
        version = None if meta is None else self._meta_version(meta)
        status = resource["status"]
        self._code(status)
        concept = resource["code"]
        # Equal to a checked element whose every leaf is a string: the same strings in the same
        # shape (a string equals only a string; a number or boolean would never compare equal).
        if self._concepts.get(loinc) != concept and self._concept(concept):
            self._concepts[loinc] = concept
        subject = resource.get("subject")
        if subject is not None:
            reference = subject.get("reference") if type(subject) is dict else None
            if type(reference) is not str or self._subjects.get(reference) != subject:
                self._reference(subject)
                self._subjects[reference] = subject
        effective_text = resource.get("effectiveDateTime")
        issued_text = resource.get("issued")
        if issued_text is not None:
            self._instant(issued_text)
        quantity = resource.get("valueQuantity")
        if quantity is not None:
            self._quantity(quantity)
        ranges = resource.get("referenceRange")

        source = ResourceRef(_OBSERVATION, resource_id, item.path, version)
        effective, date_only, no_date, day = self.time_of(effective_text, issued_text)
        if quantity is None:
            code = text = None
        else:
            code = quantity.get("code") if quantity.get("system") == UCUM_SYSTEM else None
            text = quantity.get("unit")
        reference_high = (
            None if ranges is None else self._reference_high(ranges, analyte, code, text)
        )

        if quantity is None:
            return self.result(
                day, analyte, loinc, status, source, effective, date_only, no_date, reference_high
            )
        return self.result(
            day, analyte, loinc, status, source, effective, date_only, no_date, reference_high,
            quantity, quantity.get("value"), quantity.get("comparator"), code, text,
            quantity.get("code"),
        )  # fmt: skip

    def result(
        self,
        day: date | None,
        analyte: Analyte,
        loinc: str,
        status: str,
        source: ResourceRef,
        effective: datetime | None,
        date_only: bool,
        no_date: str,
        reference_high: float | None,
        quantity: Any = None,
        raw_value: Any = None,
        comparator: str | None = None,
        code: str | None = None,
        text: str | None = None,
        coded: str | None = None,
    ) -> OrdinaryRead:
        """Map a checked Observation as `read_lab_result` maps it.

        `quantity` is its valueQuantity (None when absent; a `Mapping` or anything
        `quantity_json` turns into one); `code` and `text` the UCUM code and unit text the
        value is converted by; `coded` the quantity's `code` whatever its system.
        """
        if status in _RETRACTED_STATUSES:
            return _unusable(
                day, analyte, loinc, UnusableReason.RETRACTED,
                f"status '{status}': the result was withdrawn", source, effective,
            )  # fmt: skip
        if not reports_a_result(status):
            return _unusable(
                day, analyte, loinc, UnusableReason.STATUS,
                f"status '{status}' is not a reported result", source, effective,
            )  # fmt: skip
        if quantity is None:
            return _unusable(
                day, analyte, loinc, UnusableReason.NO_VALUE, "no value", source, effective
            )
        if raw_value is None:
            return _unusable(
                day, analyte, loinc, UnusableReason.NO_VALUE,
                "valueQuantity has no numeric value", source, effective,
            )  # fmt: skip
        value = raw_value if isinstance(raw_value, float) else as_double(raw_value)
        canonical = self._canonical(analyte, value, code, text, coded)
        before, after = reported_around(comparator, text, coded)
        reported = f"{before}{raw_value}{after}"
        if canonical is None:
            return _unusable(
                day, analyte, loinc, UnusableReason.UNKNOWN_UNIT,
                _unknown_unit(analyte, quantity_json(quantity), reported), source, effective,
            )  # fmt: skip
        bound = Bound.EXACT if comparator is None else _BOUNDS[comparator]
        if effective is None:
            return _unusable(
                day, analyte, loinc, UnusableReason.NO_DATE, no_date, source, effective
            )
        return OrdinaryRead(
            day,
            LabResult(
                analyte=analyte,
                loinc=loinc,
                value=canonical,
                bound=bound,
                effective=effective,
                source=source,
                reference_high=reference_high,
                preliminary=status == _PRELIMINARY_STATUS,
                reported=reported,
                date_only=date_only,
            ),
        )

    def _canonical(
        self,
        analyte: Analyte,
        value: float,
        code: str | None,
        text: str | None,
        coded: object,
    ) -> float | None:
        """`_observations._canonical`, with the unit's conversion looked up once per unit.

        `coded` is the quantity's `code`, whatever its system.
        """
        factor = self.unit_factor(analyte, code, text, coded)
        return None if factor is None else factor.to_canonical(value)

    def unit_factor(
        self, analyte: Analyte, code: str | None, text: str | None, coded: object
    ) -> UnitFactor | None:
        """The conversion `_canonical` applies (None: the unit is not known), once per unit."""
        if code is None and text is None and coded is not None:
            return None  # coded in a system other than UCUM, with no text
        key = (analyte, code, text)
        if key in self._factors:
            return self._factors[key]
        factor = self._factors[key] = unit_factor(analyte, code, text)
        return factor

    def _reference_high(
        self,
        ranges: object,
        analyte: Analyte,
        value_code: str | None,
        value_text: str | None,
    ) -> float | None:
        """Check the reference ranges; return the normal range's upper limit, canonical.

        By `_observations.reference_high`: the first range with a numeric high that is a
        normal range (no type, or the normal type) decides. A lab sends the same range with
        every result of a test, so a single range equal to one already read gives its limit.
        """
        key = (analyte, value_code, value_text)
        remembered = self._single_ranges.get(key)
        if remembered is not None and _same_single_range(ranges, *remembered[:2]):
            return remembered[2]
        checked = self._check_ranges(ranges)
        high = reference_high(checked, analyte, value_code, value_text)
        numbers = _plain_numbers(checked)
        if numbers is not None:
            self._single_ranges[key] = (checked[0], numbers, high)
        return high

    def time_of(
        self, effective_text: str | None, issued_text: str | None
    ) -> tuple[datetime | None, bool, str, date | None]:
        """`_effective` of effectiveDateTime, else of issued (each checked as it is read)."""
        if effective_text is not None:
            return self._effective(effective_text, "effectiveDateTime")
        if issued_text is not None:
            return self._effective(issued_text, "issued")
        return None, False, "no effective time and no issued time", None

    def _effective(self, text: str, name: str) -> tuple[datetime | None, bool, str, date | None]:
        """Return (time in UTC, date_only, why there is none, cheap day) of a checked time.

        The results of one panel share their times, so each is checked and parsed once.
        """
        if type(text) is not str:
            raise NotOrdinary
        key = (name, text)
        known = self._times.get(key)
        if known is None:
            known = self._times[key] = self._parse_effective(text, name)
        return known

    def _parse_effective(
        self, text: str, name: str
    ) -> tuple[datetime | None, bool, str, date | None]:
        if name == "effectiveDateTime":
            if type(text) is not str or not day_exists(consumed._DATE_TIME.fullmatch(text), text):
                raise NotOrdinary
        # `issued` was checked as an instant already.
        return self.parsed_time(text, name)

    def parsed_time(self, text: str, name: str) -> tuple[datetime | None, bool, str, date | None]:
        """`_effective` of a time whose pattern is checked apart (`_typed_labs`: all at once).

        `NotOrdinary` for one Python cannot read (past year 9999 in UTC, a leap second, or
        text the pattern refuses too).
        """
        if len(text) < 10:  # a year or a year and month
            return None, False, f"{name} '{text}': date has less than day precision", None
        try:
            day = date.fromisoformat(text[:10])
            if len(text) == 10:
                return datetime(day.year, day.month, day.day, tzinfo=UTC), True, "", day
            moment = datetime.fromisoformat(text).astimezone(UTC)
        except (ValueError, OverflowError):  # past year 9999 in UTC: the general path says so
            raise NotOrdinary from None
        return moment, False, "", day

    # --- datatypes: as `_consumed` checks them, or `NotOrdinary` ------------------------------

    def _meta_version(self, meta: object) -> str | None:
        if meta is None:
            return None
        if type(meta) is not dict or not meta:
            raise NotOrdinary
        version = None
        for key, value in meta.items():
            if key == "versionId":
                if type(value) is not str:
                    raise NotOrdinary
                if value not in self._ids:
                    if consumed._ID.fullmatch(value) is None:
                        raise NotOrdinary
                    self._ids.add(value)
                version = value
            elif key == "lastUpdated":
                self._instant(value)
            elif key in ("source", "profile", "tag", "security"):
                if not consumed._meta({key: value}):
                    raise NotOrdinary
            else:
                raise NotOrdinary
        return version

    def _instant(self, value: object) -> None:
        if type(value) is not str:
            raise NotOrdinary
        if value in self._instants:
            return
        if not day_exists(consumed._INSTANT.fullmatch(value), value):
            raise NotOrdinary
        self._instants.add(value)

    def _code(self, value: object) -> None:
        _check_string(value, self._codes, consumed._code)

    def _uri(self, value: object) -> None:
        _check_string(value, self._uris, consumed._uri)

    def _string(self, value: object) -> None:
        """A FHIR string the mappers may read: also non-blank, as `_json.str_at` reads it."""
        _check_string(value, self._strings, _readable_string)

    def _concept(self, concept: object) -> bool:
        """Check a CodeableConcept; return True when its every leaf is a string."""
        if type(concept) is not dict or not concept:
            raise NotOrdinary
        only_strings = True
        for key, value in concept.items():
            if key == "coding":
                if type(value) is not list or not value:
                    raise NotOrdinary
                for coding in value:
                    only_strings = self._coding(coding) and only_strings
            elif key == "text":
                self._string(value)
            else:
                raise NotOrdinary
        return only_strings

    def _coding(self, coding: object) -> bool:
        """Check a Coding; return True when its every leaf is a string."""
        if type(coding) is not dict or not coding:
            raise NotOrdinary
        only_strings = True
        for key, value in coding.items():
            if key == "system":
                self._uri(value)
            elif key == "code":
                self._code(value)
            elif key == "display" or key == "version":
                self._string(value)
            elif key == "userSelected":
                if type(value) is not bool:
                    raise NotOrdinary
                only_strings = False
            else:
                raise NotOrdinary
        return only_strings

    def _reference(self, reference: object) -> None:
        if type(reference) is not dict or not reference:
            raise NotOrdinary
        for key, value in reference.items():
            if key == "type":
                self._uri(value)
            elif key in _REFERENCE_KEYS:
                self._string(value)
            else:
                raise NotOrdinary

    def _quantity(self, quantity: object, keys: frozenset[str] = _QUANTITY_KEYS) -> None:
        if type(quantity) is not dict or not quantity:
            raise NotOrdinary
        parts = self._quantity_parts
        for key, value in quantity.items():
            if key == "value":
                if type(value) is int:
                    if -LARGEST_DOUBLE <= value <= LARGEST_DOUBLE:
                        continue
                    raise NotOrdinary  # no double holds it: the general path reads it
                if not isinstance(value, float) or not math.isfinite(value):
                    raise NotOrdinary
            elif type(value) is not str:
                raise NotOrdinary
            elif (key, value) in parts:
                continue
            elif key not in keys:
                raise NotOrdinary
            else:
                if key == "unit":
                    self._string(value)
                elif key == "system":
                    self._uri(value)
                elif key == "code":
                    self._code(value)
                elif value not in consumed._QUANTITY_COMPARATORS:
                    raise NotOrdinary
                parts.add((key, value))

    def _check_ranges(self, ranges: object) -> list[dict[str, Any]]:
        if type(ranges) is not list or not ranges:
            raise NotOrdinary
        for reference_range in ranges:
            if type(reference_range) is not dict or not reference_range:
                raise NotOrdinary
            for key, value in reference_range.items():
                if key == "high" or key == "low":
                    self._check_simple_quantity(value)
                elif key == "type":
                    self._concept(value)
                elif key == "text":
                    self._string(value)
                elif key != "appliesTo" or value is None or not _list_of_concepts(value):
                    raise NotOrdinary
        return ranges

    def _check_simple_quantity(self, quantity: object) -> None:
        """Check a SimpleQuantity: a Quantity without a comparator."""
        if type(quantity) is dict and "comparator" in quantity:
            raise NotOrdinary
        self._quantity(quantity, _SIMPLE_QUANTITY_KEYS)


def quantity_json(quantity: Any) -> dict[str, Any]:
    """Return a valueQuantity as JSON: itself when a dict, else what its `as_json()` gives."""
    return quantity if type(quantity) is dict else quantity.as_json()


def _check_string(value: object, checked: set[str], is_valid: Callable[[str], bool]) -> None:
    """Pass a string already in `checked` or valid now (then remember it); refuse any other."""
    if type(value) is not str:
        raise NotOrdinary
    if value not in checked:
        if not is_valid(value):
            raise NotOrdinary
        checked.add(value)


def _readable_string(value: str) -> bool:
    return consumed._string(value) and bool(value.strip())


def _plain_numbers(ranges: object) -> tuple[type | None, type | None] | None:
    """For one range whose leaves are strings and plain numbers: the types of its low and high
    values (None where absent). None for any other ranges, which are never remembered."""
    if type(ranges) is not list or len(ranges) != 1:
        return None
    (reference_range,) = ranges
    if "appliesTo" in reference_range:  # may hold a boolean (userSelected)
        return None
    types: list[type | None] = []
    for bound in ("low", "high"):
        quantity = reference_range.get(bound)
        value = None if quantity is None else quantity.get("value")
        kind = None if value is None else type(value)
        if kind not in (None, int, float):  # a `DecimalLiteral` equals its float: not plain
            return None
        types.append(kind)
    return types[0], types[1]


def _same_single_range(
    ranges: object, remembered: dict[str, Any], types: tuple[type | None, type | None]
) -> bool:
    """Return True when `ranges` is one range with the same JSON as `remembered`.

    `==` alone would take `true` for `1`, or `40.0` for `40`; equal values of the same types
    (strings, and numbers of the remembered types) are the same JSON.
    """
    if type(ranges) is not list or len(ranges) != 1 or ranges[0] != remembered:
        return False
    reference_range = ranges[0]
    for bound, kind in zip(("low", "high"), types, strict=True):
        if kind is not None and type(reference_range[bound]["value"]) is not kind:
            return False
    return True


@cache
def allowed_keys() -> frozenset[str]:
    """What the reader reads itself, and the elements FHIR defines that no rule reads.

    Those are not this reader's concern, as they are not `is_certainly_valid`'s.
    """
    return _READ_HERE | frozenset(
        key
        for key in declared_elements(_OBSERVATION)
        if key not in _CONSUMED and key[1:] not in _CONSUMED and key != "resourceType"
    )


class NotOrdinary(Exception):
    """The resource is outside the ordinary shape: the general path reads it."""


def reports_a_result(status: str) -> bool:
    """Return True for a status whose result is read (final, amended, corrected, preliminary)."""
    return status in _USABLE_STATUSES or status == _PRELIMINARY_STATUS


def reported_around(comparator: str | None, text: str | None, coded: str | None) -> tuple[str, str]:
    """What stands before and after the value in a result's `reported` text ("<=" and " U/L")."""
    return comparator or "", f" {text or coded or ''}".rstrip()


def day_exists(match: re.Match[str] | None, text: str) -> bool:
    """Return True for a match of a FHIR date pattern whose day is in the calendar.

    The patterns allow days 01-31 of months 01-12: up to the 28th, every one exists.
    """
    return match is not None and (text[8:10] <= "28" or consumed._calendar_day(match))


def _unusable(
    day: date | None,
    analyte: Analyte,
    loinc: str,
    reason: UnusableReason,
    detail: str,
    source: ResourceRef,
    effective: datetime | None,
) -> OrdinaryRead:
    return OrdinaryRead(day, UnusableResult(analyte, loinc, reason, detail, source, effective))
