"""Read a Bundle of lab Observations decoded straight into typed structs (issue 13, lab lane).

A long lab history is most of a hook request's bytes. Decoded into dicts, then validated and
read by Python, each result costs several microseconds on top of decoding, and the garbage
collector walks every dict. msgspec can decode the same JSON straight into the frozen structs
below, checking the JSON type of every consumed element in C; elements no rule reads stay raw
bytes, unparsed. What is left for Python is what JSON types cannot say (FHIR's patterns, the
calendar, units), and the structs an Observation shares with the others of its record (code,
subject, units, reference range) are equal structs, checked once per record.

The structs are strict: an element of the wrong JSON type, a `null`, a key the one-walk reader
does not read (effectivePeriod, dataAbsentReason, a primitive's `_x` extension) fails the
decoding, and an Observation the reader is unsure of makes `read_lab_bundle` give None. Either
way the caller decodes the request as dicts and reads it the general way, so this lane can
only agree with that path: every check here is the one `OrdinaryReader` makes, by the same
code (tests/fhir_mappings/test_typed_labs.py compares them on mutated resources).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Raw, Struct, UnsetType

from fhir_mappings import _consumed as consumed
from fhir_mappings._budget import charge_typed_resource
from fhir_mappings._observations import liver_test_code
from fhir_mappings._ordinary_observations import (
    NotOrdinary,
    OrdinaryRead,
    OrdinaryReader,
    allowed_keys,
)
from fhir_mappings._units import UCUM_SYSTEM
from fhir_mappings.values import Analyte, ResourceRef

__all__ = ["LabBundle", "TypedLab", "TypedLabs", "read_lab_bundle"]

_OBSERVATION = "Observation"
_NULL = Raw(b"null")


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


# The elements the one-walk reader reads, typed; every other element it allows (those FHIR
# defines and no rule reads) is kept raw. A key outside both fails the decoding.
_TYPED: dict[str, Any] = {
    "id": str,
    "meta": Meta,
    "status": str,
    "code": CodeableConcept,
    "subject": Reference,
    "effectiveDateTime": str,
    "issued": str,
    "valueQuantity": Quantity,
    "referenceRange": tuple[ReferenceRange, ...],
}


def _observation_struct() -> type[Struct]:
    raw = sorted(allowed_keys() - _TYPED.keys() - {"resourceType"})
    fields: list[tuple[str, Any, Any]] = [("resourceType", Literal["Observation"])]  # type: ignore[list-item]
    fields += [(name, kind | UnsetType, UNSET) for name, kind in _TYPED.items()]
    # A Python name cannot start with "_" in a struct: `_language` is held as `x_language`.
    fields += [
        (f"x{name}" if name.startswith("_") else name, Raw | UnsetType, UNSET) for name in raw
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
_RAW_FIELDS = tuple(
    name for name in Observation.__struct_fields__ if name not in _TYPED and name != "resourceType"
)


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


class TypedLab(Struct, frozen=True, gc=False):
    """One Observation of a lab Bundle: what the limits and the identity check ask, and what
    was read."""

    subject_reference: str | None  # None: no subject, or one without a reference
    range_count: int
    has_contained: bool
    liver: tuple[Analyte, str] | None  # None: not a liver test, left unread
    read: OrdinaryRead | None


class TypedLabs(Struct, frozen=True, gc=False):
    """The Observations of a lab Bundle, each read (liver tests) or left unread (the rest)."""

    entry_count: int
    labs: tuple[TypedLab, ...]


def read_lab_bundle(bundle: LabBundle, path: str, *, may_hold_null: bool) -> TypedLabs | None:
    """Read every liver-test Observation of `bundle` (at `path`); None: the general path must.

    `may_hold_null` says the request's bytes hold `null` somewhere, so the raw elements are
    looked at for one (a null is never valid, and the general path names it).
    """
    entries = () if bundle.entry is UNSET else bundle.entry
    reader = _TypedReader()
    labs: list[TypedLab] = []
    append = labs.append
    for index, entry in enumerate(entries):
        resource = entry.resource
        if resource is UNSET:
            continue
        entry_path = f"{path}.entry[{index}].resource"
        if may_hold_null and _holds_null(resource):
            return None
        try:
            lab = reader.read(resource, entry_path)
        except (NotOrdinary, TypeError):  # TypeError: an unhashable value in a remembered key
            return None
        append(lab)
    return TypedLabs(len(entries), tuple(labs))


def _holds_null(resource: Any) -> bool:
    return any(getattr(resource, name) == _NULL for name in _RAW_FIELDS)


class _TypedReader:
    """`OrdinaryReader` over the structs: the same checks, each struct shared by several
    Observations checked once (equal structs hold equal JSON: strings compare only to strings,
    and the numbers' types are part of the key where a number is remembered)."""

    __slots__ = ("_codes", "_reader", "_shapes", "_versions")

    def __init__(self) -> None:
        self._reader = OrdinaryReader()
        self._codes: dict[object, tuple[Analyte, str] | None] = {}
        # (status, code, subject, units, ranges, their numbers' types, analyte) -> what
        # `_shape` read of them
        self._shapes: dict[tuple[object, ...], tuple[str | None, str | None, float | None]] = {}
        self._versions: set[str] = set()  # version ids checked

    def read(self, resource: Any, path: str) -> TypedLab:
        """Return the Observation read (a liver test) or left unread; raise `NotOrdinary`."""
        concept = resource.code
        liver = self._codes.get(concept, _UNKNOWN) if concept is not UNSET else None
        if liver is _UNKNOWN:
            liver = self._codes[concept] = liver_test_code({"code": concept.as_json()})
        subject = resource.subject
        ranges = resource.referenceRange
        lab_read = None
        if liver is not None:
            if not charge_typed_resource(path, resource):
                raise NotOrdinary
            lab_read = self._read(resource, path, *liver)
        return TypedLab(
            None if subject is UNSET or subject.reference is UNSET else subject.reference,
            0 if ranges is UNSET else len(ranges),
            resource.contained is not UNSET,
            liver,
            lab_read,
        )

    def _read(self, resource: Any, path: str, analyte: Analyte, loinc: str) -> OrdinaryRead:
        reader = self._reader
        status = resource.status
        if status is UNSET:
            raise NotOrdinary
        resource_id = resource.id
        if resource_id is UNSET:
            resource_id = None
        elif consumed._ID.fullmatch(resource_id) is None:
            raise NotOrdinary
        meta = resource.meta
        version = None if meta is UNSET else self._meta_version(meta)
        quantity = resource.valueQuantity
        ranges = resource.referenceRange
        if quantity is UNSET:
            units = None
        else:
            units = (quantity.comparator, quantity.unit, quantity.system, quantity.code)
            value = quantity.value
            if value is UNSET:
                if units == _NO_UNITS:
                    raise NotOrdinary  # an empty valueQuantity
            elif type(value) is not int and (
                not isinstance(value, float) or not math.isfinite(value)
            ):
                raise NotOrdinary
        # What results of one test share (status, code, subject, units, reference range) is
        # checked and read once per record.
        shape = (
            status,
            resource.code,
            resource.subject,
            units,
            ranges,
            None if ranges is UNSET else _number_types(ranges),
            analyte,
        )
        known = self._shapes.get(shape)
        if known is None:
            known = self._shapes[shape] = self._shape(resource, analyte)
        code, text, high = known
        issued_text = resource.issued
        if issued_text is not UNSET:
            reader._instant(issued_text)
        effective, date_only, no_date, day = reader.time_of(
            _given(resource.effectiveDateTime), _given(issued_text)
        )
        source = ResourceRef(_OBSERVATION, resource_id, path, version)
        if quantity is UNSET:
            return reader.result(
                day, analyte, loinc, status, source, effective, date_only, no_date, high
            )
        return reader.result(
            day, analyte, loinc, status, source, effective, date_only, no_date, high,
            quantity, _given(quantity.value), _given(quantity.comparator), code, text,
            _given(quantity.code),
        )  # fmt: skip

    def _shape(
        self, resource: Any, analyte: Analyte
    ) -> tuple[str | None, str | None, float | None]:
        """Check the shared elements; return the UCUM code and unit text of the value, and the
        reference range's upper limit (canonical)."""
        reader = self._reader
        reader._code(resource.status)
        reader._concept(resource.code.as_json())
        subject = resource.subject
        if subject is not UNSET:
            reader._reference(subject.as_json())
        quantity = resource.valueQuantity
        if quantity is UNSET:
            code = text = None
        else:
            units = quantity.as_json()
            units.pop("value", None)
            if units:
                reader._quantity(units)
            code = _given(quantity.code) if quantity.system == UCUM_SYSTEM else None
            text = _given(quantity.unit)
        ranges = resource.referenceRange
        high = None
        if ranges is not UNSET:
            high = reader._reference_high(
                [reference_range.as_json() for reference_range in ranges], analyte, code, text
            )
        return code, text, high

    def _meta_version(self, meta: Meta) -> str | None:
        """`OrdinaryReader._meta_version` of the same element, as JSON."""
        if meta.source is not UNSET or meta.profile is not UNSET or meta.tag is not UNSET or (
            meta.security is not UNSET
        ):
            return self._reader._meta_version(meta.as_json())
        version, updated = meta.versionId, meta.lastUpdated
        if updated is not UNSET:
            self._reader._instant(updated)
        if not isinstance(version, str):  # absent
            if updated is UNSET:
                raise NotOrdinary  # an empty meta
            return None
        if version not in self._versions:
            if consumed._ID.fullmatch(version) is None:
                raise NotOrdinary
            self._versions.add(version)
        return version


_UNKNOWN: Any = object()
_NO_UNITS = (UNSET, UNSET, UNSET, UNSET)


def _given(value: Any) -> Any:
    """None for an absent element, as `dict.get` gives it."""
    return None if value is UNSET else value


def _number_types(ranges: tuple[ReferenceRange, ...]) -> tuple[type | None, ...]:
    """The types of the numbers in `ranges`: `1` and `1.0` (or `true`) are not the same JSON."""
    if len(ranges) == 1:  # nearly always: one range, one high
        (only,) = ranges
        low, high = only.low, only.high
        return (
            None if low is UNSET else type(low.value),
            None if high is UNSET else type(high.value),
        )
    types: list[type | None] = []
    for reference_range in ranges:
        for quantity in (reference_range.low, reference_range.high):
            if quantity is not UNSET:
                types.append(type(quantity.value))
    return tuple(types)
