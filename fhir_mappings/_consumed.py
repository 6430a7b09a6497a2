"""Validate only the elements of a resource the rules consume, fast when the data is ordinary.

FHIR validity of what the rules read is required (issue 3); validity of what they never read is
not. `CONSUMED` names, per resource type, the top-level elements that any mapper, the identity
check or a card reads (with their `_x` primitive-extension siblings and every choice of a
choice element the rules read, so "only one value[x]" still holds). The meaning of "valid" is
fixed by `fhir.resources` itself: `consumed_part(resource)` validated by the full R4B model.

`is_certainly_valid` is a hand-written checker of the ordinary shapes of those elements
(Coding, CodeableConcept, Quantity, Reference, Meta, Period, a reference range, the primitive
types by the same patterns `fhir_core` applies). It answers True only for shapes it is sure the
models accept; anything else (an extension, a decimal written as a string, a leap second, an
unknown key) answers False, and the caller validates the consumed part with the models, which
gives the verdict and the dotted path. So the fast path can only ever agree with the models;
`tests/fhir_mappings/test_consumed_validation.py` checks it with generated and mutated
resources.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from functools import cache
from typing import Any

from fhir_mappings._observations import VALUE_CHOICES

__all__ = ["CONSUMED", "consumed_part", "declared_elements", "is_certainly_valid"]

_OBSERVATION_VALUES = VALUE_CHOICES
_OBSERVATION_EFFECTIVE = (
    "effectiveDateTime",
    "effectivePeriod",
    "effectiveTiming",
    "effectiveInstant",
)
_CONDITION_ONSET = (
    "onsetDateTime",
    "onsetAge",
    "onsetPeriod",
    "onsetRange",
    "onsetString",
)

# The elements each mapper reads (`_observations`, `_medications`, `_conditions`, `_identity`,
# `_resources.resource_ref`): whole top-level elements, validated whole.
CONSUMED: dict[str, frozenset[str]] = {
    "Observation": frozenset(
        {
            "id",
            "meta",
            "status",
            "code",
            "subject",
            *_OBSERVATION_EFFECTIVE,
            "issued",
            *_OBSERVATION_VALUES,
            "dataAbsentReason",
            "referenceRange",
        }
    ),
    "Condition": frozenset(
        {
            "id",
            "meta",
            "code",
            "subject",
            "clinicalStatus",
            "verificationStatus",
            "recordedDate",
            *_CONDITION_ONSET,
        }
    ),
}
# Not here, so validated whole: MedicationRequest and Medication, read only for mipomersen orders
# (a few per request; an invalid element of an order is named on its card, policy 15).


def consumed_part(resource: Mapping[str, Any]) -> dict[str, Any]:
    """Return the resource restricted to its consumed elements (and their `_x` siblings).

    A key that is no element of the resource type at all (a misspelt `valueQuantty`, a vendor's
    own field) is kept, so the models refuse it as before: only elements FHIR defines and the
    rules never read are left out.
    """
    resource_type = str(resource.get("resourceType"))
    consumed = CONSUMED.get(resource_type)
    if consumed is None:
        return dict(resource)  # a type validated whole
    declared = declared_elements(resource_type)
    return {
        key: value
        for key, value in resource.items()
        if key == "resourceType"
        or key in consumed
        or (key[:1] == "_" and key[1:] in consumed)
        or key not in declared
    }


@cache
def declared_elements(resource_type: str) -> frozenset[str]:
    """Return the JSON names of every element FHIR R4B defines for the type (`_x` included)."""
    from fhir_mappings._validation import model_of  # the models load on first use

    model = model_of(resource_type)
    if model is None:
        return frozenset()
    return frozenset(field.alias or name for name, field in model.model_fields.items())


def is_certainly_valid(resource: Mapping[str, Any]) -> bool:
    """Return True when the consumed elements are surely valid FHIR; False means "ask the models".

    For a type validated whole (a MedicationRequest), every element must be one this checker
    knows and passes. False is not a verdict: the caller then validates `consumed_part(resource)`
    in full.
    """
    resource_type = str(resource.get("resourceType"))
    checks = _CHECKS.get(resource_type)
    if checks is None:
        return False
    required, by_key = checks
    consumed = CONSUMED.get(resource_type)  # None: validated whole, every key is checked
    declared = declared_elements(resource_type)
    for key in required:
        if key not in resource:
            return False
    for key, value in resource.items():
        check = by_key.get(key)
        if check is None:
            if (
                consumed is not None
                and key in declared
                and key not in consumed
                and key[1:] not in consumed
            ):
                continue  # an element the rules never read: not this validator's concern
            if key == "resourceType":
                continue
            return False  # a consumed element this checker does not know, or an unknown key
        if value is None or not check(value):
            return False
    # choice elements (fhir_core's one-of-many rule): at most one, or exactly one if required
    for choices, one_required in _CHOICES.get(resource_type, ()):
        present = sum(key in resource for key in choices)
        if present > 1 or (one_required and present == 0):
            return False
    return True


# --- primitives: subsets of what fhir_core.types' patterns accept ---------------------------------
# pydantic-core searches (Rust regex) where Python's `re` might disagree on Unicode whitespace, so
# only ASCII shapes are accepted here; any other text is left to the models.

_STRING = re.compile(r"[ \r\n\t!-~]")  # a string: holds one such character (searched)
_CODE = re.compile(r"[!-~]+(?: [!-~]+)*")  # a code: no leading, trailing or double spaces
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_URI = re.compile(r"[!-~]+")  # a non-empty URI without whitespace
_DECIMAL = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")
# dateTime: YYYY, YYYY-MM, YYYY-MM-DD or a full time with seconds and a zone; leap seconds (60),
# more than 6 fractional digits and years before 1000 are left to the models.
_DATE_TIME = re.compile(
    r"([1-9][0-9]{3})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12][0-9]|3[01])"
    r"(?:T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)
_INSTANT = re.compile(
    r"([1-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
)
_QUANTITY_COMPARATORS = frozenset({"<", "<=", ">=", ">"})


def _string(value: object) -> bool:
    return type(value) is str and _STRING.search(value) is not None


def _code(value: object) -> bool:
    return type(value) is str and _CODE.fullmatch(value) is not None


def _id(value: object) -> bool:
    return type(value) is str and _ID.fullmatch(value) is not None


def _uri(value: object) -> bool:
    return type(value) is str and _URI.fullmatch(value) is not None


def _boolean(value: object) -> bool:
    return type(value) is bool


def _decimal(value: object) -> bool:
    if type(value) is int:
        return True
    return isinstance(value, float) and _DECIMAL.match(str(value)) is not None


_INTEGER_MIN, _INTEGER_MAX = -(2**31), 2**31 - 1  # FHIR integer: 32-bit signed


def _integer(value: object) -> bool:
    return type(value) is int and _INTEGER_MIN <= value <= _INTEGER_MAX


def _positive_int(value: object) -> bool:
    return type(value) is int and 1 <= value <= _INTEGER_MAX


def _calendar_day(match: re.Match[str]) -> bool:
    year, month, day = match.group(1, 2, 3)
    if day is None:
        return True
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _date_time(value: object) -> bool:
    if type(value) is not str:
        return False
    match = _DATE_TIME.fullmatch(value)
    return match is not None and _calendar_day(match)


def _instant(value: object) -> bool:
    if type(value) is not str:
        return False
    match = _INSTANT.fullmatch(value)
    return match is not None and _calendar_day(match)


# --- complex datatypes: known keys only, each checked; anything else is "ask the models" ----------

_Check = Callable[[object], bool]


def _element(fields: dict[str, _Check], *, required: tuple[str, ...] = ()) -> _Check:
    """Return a checker of a JSON object with only `fields`, none null, `required` present."""

    def check(value: object) -> bool:
        if type(value) is not dict or not value:
            return False
        for key in required:
            if key not in value:
                return False
        for key, item in value.items():
            field = fields.get(key)
            if field is None or item is None or not field(item):
                return False
        return True

    return check


def _list_of(check: _Check) -> _Check:
    def each(value: object) -> bool:
        return (
            type(value) is list
            and bool(value)
            and all(item is not None and check(item) for item in value)
        )

    return each


_coding = _element(
    {
        "system": _uri,
        "version": _string,
        "code": _code,
        "display": _string,
        "userSelected": _boolean,
    }
)
_codeable_concept = _element({"coding": _list_of(_coding), "text": _string})
_quantity = _element(
    {
        "value": _decimal,
        "comparator": lambda value: type(value) is str and value in _QUANTITY_COMPARATORS,
        "unit": _string,
        "system": _uri,
        "code": _code,
    }
)
_simple_quantity = _element({"value": _decimal, "unit": _string, "system": _uri, "code": _code})
_reference = _element({"reference": _string, "type": _uri, "display": _string})
_meta = _element(
    {
        "versionId": _id,
        "lastUpdated": _instant,
        "source": _uri,
        "profile": _list_of(_uri),
        "tag": _list_of(_coding),
        "security": _list_of(_coding),
    }
)
_period = _element({"start": _date_time, "end": _date_time})
_reference_range = _element(
    {
        "low": _simple_quantity,
        "high": _simple_quantity,
        "type": _codeable_concept,
        "appliesTo": _list_of(_codeable_concept),
        "text": _string,
    }
)

# Dosage as orders usually carry it: a text, a schedule, a route and a dose.
_timing = _element(
    {
        "repeat": _element({"frequency": _positive_int, "period": _decimal, "periodUnit": _code}),
        "code": _codeable_concept,
    }
)
_dosage = _element(
    {
        "sequence": _integer,
        "text": _string,
        "patientInstruction": _string,
        "timing": _timing,
        "asNeededBoolean": _boolean,
        "route": _codeable_concept,
        "doseAndRate": _list_of(
            _element({"type": _codeable_concept, "doseQuantity": _simple_quantity})
        ),
    }
)

_COMMON: dict[str, _Check] = {"id": _id, "meta": _meta, "subject": _reference}
_CHECKS: dict[str, tuple[tuple[str, ...], dict[str, _Check]]] = {
    "Observation": (
        ("status", "code"),
        {
            **_COMMON,
            "status": _code,
            "code": _codeable_concept,
            "effectiveDateTime": _date_time,
            "effectivePeriod": _period,
            "effectiveInstant": _instant,
            "issued": _instant,
            "valueQuantity": _quantity,
            "valueCodeableConcept": _codeable_concept,
            "valueString": _string,
            "valueBoolean": _boolean,
            "valueDateTime": _date_time,
            "valuePeriod": _period,
            "dataAbsentReason": _codeable_concept,
            "referenceRange": _list_of(_reference_range),
        },
    ),
    # Validated whole: only the elements of an ordinary order; any other is left to the models.
    "MedicationRequest": (
        ("status", "intent", "subject"),
        {
            **_COMMON,
            "status": _code,
            "intent": _code,
            "priority": _code,
            "medicationCodeableConcept": _codeable_concept,
            "medicationReference": _reference,
            "encounter": _reference,
            "requester": _reference,
            "authoredOn": _date_time,
            "category": _list_of(_codeable_concept),
            "reasonCode": _list_of(_codeable_concept),
            "dosageInstruction": _list_of(_dosage),
        },
    ),
    "Condition": (
        ("subject",),
        {
            **_COMMON,
            "code": _codeable_concept,
            "clinicalStatus": _codeable_concept,
            "verificationStatus": _codeable_concept,
            "recordedDate": _date_time,
            "onsetDateTime": _date_time,
            "onsetPeriod": _period,
            "onsetString": _string,
        },
    ),
}
_CHOICES: dict[str, tuple[tuple[tuple[str, ...], bool], ...]] = {
    "Observation": ((_OBSERVATION_EFFECTIVE, False), (_OBSERVATION_VALUES, False)),
    "Condition": ((_CONDITION_ONSET, False),),
    "MedicationRequest": ((("medicationCodeableConcept", "medicationReference"), True),),
}
