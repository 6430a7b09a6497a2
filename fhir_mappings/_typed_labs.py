"""Read a Bundle of lab Observations decoded straight into typed structs (issue 13, lab lane).

A long lab history is most of a hook request's bytes. Decoded into dicts, then validated and
read by Python, each result costs several microseconds on top of decoding, and the garbage
collector walks every dict. msgspec can decode the same JSON straight into the frozen structs
below, checking the JSON type of each element it types in C; the content of an element no rule
reads stays raw bytes, unparsed (only its top level is typed, which refuses a `null`). The
elements the results of one test share (code, subject, reference range) and meta are kept as
their bytes too: equal bytes are equal JSON, so each distinct one is decoded into its structs
and checked once per record, and each "shape" of result (status, code, units, reference range)
is mapped once; a result of a known shape is then built in one step. What is left for Python
per result is its id (all ids in one regex pass), its times and its value.

The structs are strict: an element of the wrong JSON type, a `null`, a key the one-walk reader
does not read (effectivePeriod, dataAbsentReason, a primitive's `_x` extension) fails the
decoding, and an Observation the reader is unsure of makes `read_lab_bundle` give None. Either
way the caller decodes the request as dicts and reads it the general way, so this lane can
only agree with that path: every check here is the one `OrdinaryReader` makes, by the same
code (tests/test_lab_lane.py compares the two paths on examples, table rows and mutated
resources).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from datetime import date, datetime
from functools import cache
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from fhir_mappings import _consumed as consumed
from fhir_mappings._budget import charge_typed_resources
from fhir_mappings._observations import _BOUNDS, _PRELIMINARY_STATUS, liver_test_code
from fhir_mappings._ordinary_observations import (
    NotOrdinary,
    OrdinaryRead,
    OrdinaryReader,
    allowed_keys,
    day_exists,
    reported_around,
    reports_a_result,
)
from fhir_mappings._units import UCUM_SYSTEM, UnitFactor
from fhir_mappings.decimals import LARGEST_DOUBLE, decode_float
from fhir_mappings.values import Analyte, Bound, LabResult, ResourceRef

__all__ = ["LabBundle", "TypedLabs", "read_lab_bundle"]

_OBSERVATION = "Observation"
# An element no rule reads, as sent: an array or an object (their content kept raw), or a
# primitive. A `null` is none of these, so the decoding refuses it (FHIR JSON never holds one,
# and the general path names it) without looking for one in the body.
_RawElement = list[Raw] | dict[str, Raw] | str | int | float | bool


class _Element(Struct, frozen=True, gc=False, forbid_unknown_fields=True):
    """A FHIR element as sent: each field UNSET when the key is absent."""

    def as_json(self) -> dict[str, Any]:
        """Return the element as the JSON decoder gives it (absent keys left out)."""
        return {
            name: _json_of(value)
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not UNSET
        }


def _json_of(value: Any) -> Any:
    if isinstance(value, _Element):
        return value.as_json()
    if type(value) is tuple:
        return [_json_of(item) for item in value]
    return value


class Coding(_Element, frozen=True, gc=False, forbid_unknown_fields=True):
    system: str | UnsetType = UNSET
    version: str | UnsetType = UNSET
    code: str | UnsetType = UNSET
    display: str | UnsetType = UNSET
    userSelected: bool | UnsetType = UNSET  # noqa: N815 - FHIR's name


class CodeableConcept(_Element, frozen=True, gc=False, forbid_unknown_fields=True):
    coding: tuple[Coding, ...] | UnsetType = UNSET
    text: str | UnsetType = UNSET


class Reference(_Element, frozen=True, gc=False, forbid_unknown_fields=True):
    reference: str | UnsetType = UNSET
    type: str | UnsetType = UNSET
    display: str | UnsetType = UNSET


class Quantity(_Element, frozen=True, gc=False, forbid_unknown_fields=True):
    value: Any = UNSET  # as the dict decoder gives it (a float keeps its exact literal)
    comparator: str | UnsetType = UNSET
    unit: str | UnsetType = UNSET
    system: str | UnsetType = UNSET
    code: str | UnsetType = UNSET


class ReferenceRange(_Element, frozen=True, gc=False, forbid_unknown_fields=True):
    low: Quantity | UnsetType = UNSET
    high: Quantity | UnsetType = UNSET
    type: CodeableConcept | UnsetType = UNSET
    appliesTo: Any = UNSET  # noqa: N815 - FHIR's name
    text: str | UnsetType = UNSET


class Meta(_Element, frozen=True, gc=False, forbid_unknown_fields=True):
    versionId: str | UnsetType = UNSET  # noqa: N815 - FHIR's name
    lastUpdated: str | UnsetType = UNSET  # noqa: N815 - FHIR's name
    source: Any = UNSET
    profile: Any = UNSET
    tag: Any = UNSET
    security: Any = UNSET


# The elements the one-walk reader reads. Those the results of one test share (code, subject,
# reference range) and meta are kept as their bytes: equal bytes are equal JSON, so each is
# decoded into the structs above and checked once per record (`_TypedReader`). The rest of
# what the reader reads is typed here; every other element it allows (those FHIR defines and
# no rule reads) is kept raw. A key outside both fails the decoding.
_SHARED = ("meta", "code", "subject", "referenceRange")
_TYPED: dict[str, Any] = {
    "id": str,
    "status": str,
    "effectiveDateTime": str,
    "issued": str,
    "valueQuantity": Quantity,
}


def _observation_struct() -> type[Struct]:
    raw = sorted(allowed_keys() - _TYPED.keys() - {"resourceType"})
    fields: list[tuple[str, Any, Any]] = [("resourceType", Literal["Observation"])]  # type: ignore[list-item]
    fields += [(name, kind | UnsetType, UNSET) for name, kind in _TYPED.items()]
    # A Python name cannot start with "_" in a struct: `_language` is held as `x_language`.
    fields += [
        (
            f"x{name}" if name.startswith("_") else name,
            (Raw if name in _SHARED else _RawElement) | UnsetType,
            UNSET,
        )
        for name in raw
    ]
    return msgspec.defstruct(
        "Observation",
        fields,
        bases=(_Element,),
        frozen=True,
        gc=False,
        forbid_unknown_fields=True,
        rename={f"x{name}": name for name in raw if name.startswith("_")},
    )


Observation: Any = _observation_struct()


class BundleEntry(_Element, frozen=True, gc=False, forbid_unknown_fields=True):
    fullUrl: str | UnsetType = UNSET  # noqa: N815 - FHIR's name
    resource: Observation | UnsetType = UNSET
    link: Raw | UnsetType = UNSET
    search: Raw | UnsetType = UNSET
    request: Raw | UnsetType = UNSET
    response: Raw | UnsetType = UNSET


class LabBundle(_Element, frozen=True, gc=False, forbid_unknown_fields=True):
    """A Bundle whose every entry is an Observation (a lab prefetch's search result)."""

    resourceType: Literal["Bundle"]  # noqa: N815 - FHIR's name
    id: Raw | UnsetType = UNSET
    meta: Raw | UnsetType = UNSET
    implicitRules: Raw | UnsetType = UNSET  # noqa: N815 - FHIR's name
    language: Raw | UnsetType = UNSET
    identifier: Raw | UnsetType = UNSET
    type: Raw | UnsetType = UNSET
    timestamp: Raw | UnsetType = UNSET
    total: Raw | UnsetType = UNSET
    link: Any = UNSET  # read for its `next` link
    entry: tuple[BundleEntry, ...] | UnsetType = UNSET
    signature: Raw | UnsetType = UNSET


class TypedLabs(Struct, frozen=True, gc=False):
    """The Observations of a lab Bundle: the liver tests read, and what the limits and the
    identity check ask of every Observation."""

    entry_count: int
    reads: tuple[OrdinaryRead, ...]  # the liver tests, in the Bundle's order
    subject_references: frozenset[str | None]  # None: no subject, or one without a reference
    most_ranges: int  # the most reference ranges of one Observation
    has_contained: bool  # an Observation holds contained resources


def read_lab_bundle(bundle: LabBundle, path: str) -> TypedLabs | None:
    """Read every liver-test Observation of `bundle` (at `path`); None: the general path must."""
    entries = () if bundle.entry is UNSET else bundle.entry
    # Each entry measured whole: a little more than its resource, so never less safe.
    if not charge_typed_resources(f"{path}.entry", entries):
        return None
    reader = _TypedReader(f"{path}.entry")
    try:
        if not reader.read(entries):
            return None
    except (NotOrdinary, TypeError):  # TypeError: an unhashable value in a remembered key
        return None
    if not (
        _valid_ids(reader.ids)
        and _valid_instants(reader.instants)
        and _valid_times(reader.effective_times.keys())
    ):
        return None
    return TypedLabs(
        len(entries),
        tuple(reader.reads),
        frozenset(reader.subjects.values()),
        max(reader.range_counts.values(), default=0),
        reader.has_contained,
    )


# Every id (and meta.versionId) of a Bundle's liver tests checked in one pass, joined by line
# breaks: no valid id holds one, and an id that does is caught by the count.
_IDS = re.compile(rf"(?:{consumed._ID.pattern}\n)*{consumed._ID.pattern}")
assert consumed._ID.fullmatch("\n") is None, "a valid id holds no line break"


def _valid_ids(ids: list[str]) -> bool:
    return _all_match(_IDS, ids)


# Every `issued` and `lastUpdated` of a Bundle's liver tests, the same way; a day past the
# 28th is then looked up in the calendar, as `OrdinaryReader._instant` does.
_INSTANTS = re.compile(rf"(?:{consumed._INSTANT.pattern}\n)*{consumed._INSTANT.pattern}")
assert consumed._INSTANT.fullmatch("\n") is None, "a valid instant holds no line break"


def _valid_instants(instants: set[str]) -> bool:
    return _all_dates_match(_INSTANTS, consumed._INSTANT, instants)


# Every effectiveDateTime, the same way (a date, or a date and time with its zone)
_TIMES = re.compile(rf"(?:{consumed._DATE_TIME.pattern}\n)*{consumed._DATE_TIME.pattern}")
assert consumed._DATE_TIME.fullmatch("\n") is None, "a valid dateTime holds no line break"


def _valid_times(texts: Collection[str]) -> bool:
    return _all_dates_match(_TIMES, consumed._DATE_TIME, texts)


def _all_dates_match(
    joined: re.Pattern[str], single: re.Pattern[str], texts: Collection[str]
) -> bool:
    """`_all_match` for dates and times (`joined` repeats `single`), each day in the calendar."""
    return _all_match(joined, texts) and all(
        day_exists(single.fullmatch(text), text)
        for text in texts
        if text[8:10] > "28"  # the others exist, and matched
    )


def _all_match(pattern: re.Pattern[str], texts: Collection[str]) -> bool:
    """Return True when each of `texts` matches `pattern` (a pattern without line breaks)."""
    if not texts:
        return True
    joined = "\n".join(texts)
    return joined.count("\n") == len(texts) - 1 and pattern.fullmatch(joined) is not None


class _Shape(Struct, frozen=True, gc=False):
    """What the results of one test with one status, unit and reference range share."""

    analyte: Analyte
    loinc: str
    code: str | None  # the value's UCUM code, when its system is UCUM
    text: str | None  # the value's unit text
    high: float | None  # the reference range's upper limit, canonical
    # Set when every such result with a value and a time is a `LabResult` built here
    # (`OrdinaryReader.result` builds the others):
    factor: UnitFactor | None
    bound: Bound
    preliminary: bool
    prefix: str  # the comparator, before the value as reported
    suffix: str  # the unit, after it


class _TypedReader:
    """`OrdinaryReader` over the structs: the same checks, each shared element (by its bytes)
    and each shape of result (status, code, units, reference range) checked once."""

    __slots__ = (
        "_checked_codes",
        "_checked_subjects",
        "_codes",
        "_concepts",
        "_entries_path",
        "_metas",
        "_ranges",
        "_reader",
        "_shapes",
        "effective_times",
        "has_contained",
        "ids",
        "instants",
        "range_counts",
        "reads",
        "subjects",
    )

    def __init__(self, entries_path: str) -> None:
        self._entries_path = entries_path
        self._reader = OrdinaryReader()
        self._codes: dict[bytes | None, tuple[Analyte, str] | None] = {}
        self._shapes: dict[tuple[object, ...], _Shape] = {}
        self._metas: dict[bytes, str | None] = {}  # meta -> its version id
        self._ranges: dict[bytes, list[dict[str, Any]]] = {}  # referenceRange, as JSON
        self._concepts: dict[bytes, dict[str, Any]] = {}  # code, as JSON
        self._checked_codes: set[bytes] = set()
        self.instants: set[str] = set()  # `issued` and `lastUpdated`, checked together
        # effectiveDateTime -> what `OrdinaryReader.time_of` gives for it; its keys are checked
        # together, at the end
        self.effective_times: dict[str, tuple[datetime | None, bool, str, date | None]] = {}
        self.subjects: dict[bytes | None, str | None] = {}  # subject -> its reference
        self._checked_subjects: set[bytes] = set()  # the subjects of liver tests, checked
        self.range_counts: dict[bytes | None, int] = {None: 0}
        self.has_contained = False
        self.ids: list[str] = []  # ids and version ids of the liver tests, checked together
        self.reads: list[OrdinaryRead] = []

    def read(self, entries: tuple[BundleEntry, ...]) -> bool:
        """Read each entry's Observation (a liver test) or note what the limits ask of it;
        False (or `NotOrdinary`): one the general path must read.

        One loop with its lookups held in locals: a long history runs it thousands of times.
        """
        reader = self._reader
        codes, subjects, range_counts = self._codes, self.subjects, self.range_counts
        checked_subjects, metas, shapes = self._checked_subjects, self._metas, self._shapes
        instants, times, entries_path = self.instants, self.effective_times, self._entries_path
        add_id, add_read = self.ids.append, self.reads.append
        for index, entry in enumerate(entries):
            resource = entry.resource
            if resource is UNSET:
                continue
            # What the limits and the identity check ask of every Observation
            code = None if resource.code is UNSET else bytes(resource.code)
            liver = codes.get(code, _UNKNOWN)
            if liver is _UNKNOWN:
                liver = codes[code] = self._liver_test(code)
            subject = None if resource.subject is UNSET else bytes(resource.subject)
            if subject not in subjects:
                subjects[subject] = (
                    None if subject is None else _json(subject, Reference).get("reference")
                )
            ranges = None if resource.referenceRange is UNSET else bytes(resource.referenceRange)
            if ranges not in range_counts:
                range_counts[ranges] = len(self._range_json(ranges))
            if resource.contained is not UNSET:
                self.has_contained = True
            if liver is None:
                continue
            # A liver test: read as `OrdinaryReader.read` reads it
            analyte, loinc = liver
            if subject is not None and subject not in checked_subjects:
                reader._reference(_json(subject, Reference))
                checked_subjects.add(subject)
            status = resource.status
            if status is UNSET:
                raise NotOrdinary
            resource_id = resource.id
            if resource_id is UNSET:
                resource_id = None
            else:
                add_id(resource_id)
            meta = resource.meta
            if meta is UNSET:
                version = None
            else:
                meta_bytes = bytes(meta)
                version = metas.get(meta_bytes, _UNKNOWN)
                if version is _UNKNOWN:
                    version = metas[meta_bytes] = self._meta_version(meta_bytes)
            quantity = resource.valueQuantity
            if quantity is UNSET:
                units = None
                value = None
            else:
                units = (quantity.comparator, quantity.unit, quantity.system, quantity.code)
                value = quantity.value
                if value is UNSET:
                    if units == _NO_UNITS:
                        raise NotOrdinary  # an empty valueQuantity
                    value = None
                elif type(value) is int:
                    if not -LARGEST_DOUBLE <= value <= LARGEST_DOUBLE:
                        raise NotOrdinary  # no double holds it: the general path reads it
                elif not isinstance(value, float) or not math.isfinite(value):
                    raise NotOrdinary
            key = (status, code, units, ranges)
            shape = shapes.get(key)
            if shape is None:
                shape = shapes[key] = self._shape(resource, ranges, analyte, loinc)
            issued = resource.issued
            if issued is not UNSET:
                instants.add(issued)
            effective_text = resource.effectiveDateTime
            if effective_text is UNSET:
                if issued is not UNSET:
                    reader._instant(issued)  # now: it is the time, and read as one
                effective, date_only, no_date, day = reader.time_of(None, _given(issued))
            else:
                time = times.get(effective_text)
                if time is None:  # its pattern is checked with the others (`_valid_times`)
                    time = times[effective_text] = reader.parsed_time(
                        effective_text, "effectiveDateTime"
                    )
                effective, date_only, no_date, day = time
            source = ResourceRef(
                _OBSERVATION, resource_id, f"{entries_path}[{index}].resource", version
            )
            factor = shape.factor
            if factor is not None and value is not None and effective is not None:
                # The usual result: its shape says everything but the value and the time.
                add_read(
                    OrdinaryRead(
                        day,
                        LabResult(
                            analyte,
                            loinc,
                            factor.to_canonical(
                                value if isinstance(value, float) else float(value)
                            ),
                            shape.bound,
                            effective,
                            source,
                            shape.high,
                            shape.preliminary,
                            f"{shape.prefix}{value}{shape.suffix}",
                            date_only,
                        ),
                    )
                )
            elif quantity is UNSET:
                add_read(
                    reader.result(
                        day, analyte, loinc, status, source, effective, date_only, no_date,
                        shape.high,
                    )
                )  # fmt: skip
            else:
                add_read(
                    reader.result(
                        day, analyte, loinc, status, source, effective, date_only, no_date,
                        shape.high, quantity, value, _given(quantity.comparator), shape.code,
                        shape.text, _given(quantity.code),
                    )
                )  # fmt: skip
        return True

    def _shape(self, resource: Any, ranges: bytes | None, analyte: Analyte, loinc: str) -> _Shape:
        """Check the shared elements of a result (but its subject, checked on its own)."""
        reader = self._reader
        status = resource.status
        reader._code(status)
        code_bytes = bytes(resource.code)
        if code_bytes not in self._checked_codes:
            reader._concept(self._concepts[code_bytes])
            self._checked_codes.add(code_bytes)
        quantity = resource.valueQuantity
        comparator = None
        if quantity is UNSET:
            code = text = None
        else:
            units = {
                name: part
                for name in _UNIT_FIELDS
                if (part := getattr(quantity, name)) is not UNSET
            }
            if units:
                reader._quantity(units)
            code = _given(quantity.code) if quantity.system == UCUM_SYSTEM else None
            text = _given(quantity.unit)
            comparator = _given(quantity.comparator)
        high = None
        if ranges is not None:
            high = reader._reference_high(self._range_json(ranges), analyte, code, text)
        coded = None if quantity is UNSET else _given(quantity.code)
        factor = None
        if (
            quantity is not UNSET
            and reports_a_result(status)
            and (comparator is None or comparator in _BOUNDS)
        ):
            factor = reader.unit_factor(analyte, code, text, coded)
        before, after = reported_around(comparator, text, coded)
        return _Shape(
            analyte,
            loinc,
            code,
            text,
            high,
            factor,
            _BOUNDS[comparator] if factor is not None and comparator is not None else Bound.EXACT,
            status == _PRELIMINARY_STATUS,
            before,
            after,
        )

    def _liver_test(self, code: bytes | None) -> tuple[Analyte, str] | None:
        if code is None:
            return None
        concept = self._concepts[code] = _json(code, CodeableConcept)
        return liver_test_code({"code": concept})

    def _range_json(self, ranges: bytes | None) -> list[dict[str, Any]]:
        if ranges is None:
            return []
        known = self._ranges.get(ranges)
        if known is None:
            known = self._ranges[ranges] = _json(ranges, tuple[ReferenceRange, ...])
        return known

    def _meta_version(self, meta_bytes: bytes) -> str | None:
        """`OrdinaryReader._meta_version` of the element."""
        meta: Meta = _decoded(meta_bytes, Meta)
        if (
            meta.source is not UNSET
            or meta.profile is not UNSET
            or meta.tag is not UNSET
            or meta.security is not UNSET
        ):
            return self._reader._meta_version(meta.as_json())
        version, updated = meta.versionId, meta.lastUpdated
        if isinstance(updated, str):
            self.instants.add(updated)
        if not isinstance(version, str):  # absent
            if updated is UNSET:
                raise NotOrdinary  # an empty meta
            return None
        self.ids.append(version)  # an id's pattern, checked with the ids
        return version


_UNKNOWN: Any = object()
_NO_UNITS = (UNSET, UNSET, UNSET, UNSET)


def _finite_float(literal: str) -> float:
    """`decode_float`, refusing a literal past the largest double (the general path reads it)."""
    number = decode_float(literal)
    if math.isinf(number):
        raise NotOrdinary
    return number


@cache
def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(kind, float_hook=_finite_float)


def _decoded(raw: bytes, kind: Any) -> Any:
    """Decode a shared element kept as bytes into its structs; `NotOrdinary` if they refuse it."""
    try:
        return _decoder(kind).decode(raw)
    except (msgspec.DecodeError, ValueError):
        raise NotOrdinary from None


_UNIT_FIELDS = ("comparator", "unit", "system", "code")
# The JSON of a shared element, as the request's dict decoder gives it
_JSON_DECODER = msgspec.json.Decoder(float_hook=_finite_float)


def _json(raw: bytes, kind: Any) -> Any:
    """The JSON of a shared element kept as bytes, once its structs (`kind`) accept it.

    The structs check every JSON type, and refuse any key they do not define, so the JSON
    holds what their `as_json` would give, decoded in C.
    """
    _decoded(raw, kind)
    try:
        return _JSON_DECODER.decode(raw)
    except (msgspec.DecodeError, ValueError):  # pragma: no cover - the structs decoded it
        raise NotOrdinary from None


def _given(value: Any) -> Any:
    """None for an absent element, as `dict.get` gives it."""
    return None if value is UNSET else value
