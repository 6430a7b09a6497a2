"""Map a liver-test Observation (FHIR R4 Observation, US Core Laboratory Result profile) to a value.

Policy 5 (docs/clinical-policy.md): a result is used only when it has a final-type status, a numeric
`valueQuantity` in a recognised unit and a time of at least day precision; every other result is
an `UnusableResult` whose detail says why, so a card can name it. Policy 4: the ULN comes from
the result's own normal `referenceRange.high`, converted to the canonical unit; never invented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from fhir_mappings._errors import FhirMappingError
from fhir_mappings._json import JsonObject, codings, number_at, object_at, objects_at, str_at
from fhir_mappings._loinc import LOINC_SYSTEMS, analyte_for_loinc
from fhir_mappings._resources import FhirItem, resource_ref
from fhir_mappings._times import parse_fhir_datetime
from fhir_mappings._units import UCUM_SYSTEM, supported_units, to_canonical
from fhir_mappings.values import (
    Analyte,
    Bound,
    LabResult,
    SkippedResource,
    UnusableReason,
    UnusableResult,
)

# FHIR R4 ObservationStatus (http://hl7.org/fhir/R4/valueset-observation-status.html)
_USABLE_STATUSES = frozenset({"final", "amended", "corrected"})
_PRELIMINARY_STATUS = "preliminary"
_RETRACTED_STATUSES = frozenset({"entered-in-error", "cancelled"})
# FHIR R4 QuantityComparator
_BOUNDS = {"<": Bound.AT_MOST, "<=": Bound.AT_MOST, ">=": Bound.AT_LEAST, ">": Bound.AT_LEAST}
# FHIR R4 referencerange-meaning: only a normal range gives a ULN
_RANGE_MEANING_SYSTEM = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
# Observation.value[x] (FHIR R4): every choice; the rules read only valueQuantity.
VALUE_CHOICES = (
    "valueQuantity",
    "valueCodeableConcept",
    "valueString",
    "valueBoolean",
    "valueInteger",
    "valueRange",
    "valueRatio",
    "valueSampledData",
    "valueTime",
    "valueDateTime",
    "valuePeriod",
)


def liver_test_code(resource: JsonObject) -> tuple[Analyte, str] | None:
    """Return the analyte and LOINC code of an Observation the rules read, or None."""
    # Asked of every Observation in a request: plain loops, no generators.
    concept = resource.get("code")
    if type(concept) is not dict and not isinstance(concept, Mapping):
        return None
    coding_list = concept.get("coding")
    if not isinstance(coding_list, list):
        return None
    for coding in coding_list:
        if type(coding) is not dict and not isinstance(coding, Mapping):
            continue
        code = coding.get("code")
        system = coding.get("system")
        if type(system) is str and system in LOINC_SYSTEMS and isinstance(code, str):
            analyte = analyte_for_loinc(code)
            if analyte is not None:
                return analyte, code
    return None


def read_lab_result(item: FhirItem, analyte: Analyte, loinc: str) -> LabResult | UnusableResult:
    """Return the result of a validated liver-test Observation, or why it cannot be used."""
    resource = item.resource
    source = resource_ref(item)
    effective, date_only, no_date = _effective_time(resource, item.path)
    value = _value_of(resource, analyte, effective, no_date)
    if isinstance(value, _Unusable):
        return UnusableResult(analyte, loinc, value.reason, value.detail, source, effective)
    return LabResult(
        analyte=analyte,
        loinc=loinc,
        value=value.canonical,
        bound=value.bound,
        effective=value.effective,
        source=source,
        reference_high=reference_high(
            objects_at(resource, "referenceRange"), analyte, value.code, value.text
        ),
        preliminary=value.status == _PRELIMINARY_STATUS,
        reported=_reported(value.quantity),
        date_only=date_only,
    )


def reads_as_usable(item: FhirItem, analyte: Analyte) -> bool:
    """Return True when `read_lab_result` would return a `LabResult` (cheaper than reading it)."""
    effective, _, no_date = _effective_time(item.resource, item.path)
    return not isinstance(_value_of(item.resource, analyte, effective, no_date), _Unusable)


@dataclass(frozen=True, slots=True)
class _Unusable:
    reason: UnusableReason
    detail: str


@dataclass(frozen=True, slots=True)
class _Value:
    canonical: float
    bound: Bound
    code: str | None
    text: str | None
    quantity: JsonObject
    status: str | None
    effective: datetime


def _value_of(
    resource: JsonObject, analyte: Analyte, effective: datetime | None, no_date: str
) -> _Value | _Unusable:
    """Return the value in the canonical unit, or why the result cannot be used (policy 5)."""
    status = str_at(resource, "status")
    if status in _RETRACTED_STATUSES:
        return _Unusable(UnusableReason.RETRACTED, f"status '{status}': the result was withdrawn")
    if status not in _USABLE_STATUSES and status != _PRELIMINARY_STATUS:
        return _Unusable(UnusableReason.STATUS, f"status '{status}' is not a reported result")
    absent = object_at(resource, "dataAbsentReason")
    if absent is not None:
        return _Unusable(UnusableReason.DATA_ABSENT, f"no value: {_concept_name(absent)}")
    quantity = object_at(resource, "valueQuantity")
    if quantity is None:
        return _Unusable(UnusableReason.NO_VALUE, _missing_value(resource))
    value = number_at(quantity, "value")
    if value is None:
        return _Unusable(UnusableReason.NO_VALUE, "valueQuantity has no numeric value")
    code, text = _unit_of(quantity)
    canonical = _canonical(analyte, value, code, text, quantity)
    if canonical is None:
        reported = _reported(quantity)
        return _Unusable(UnusableReason.UNKNOWN_UNIT, _unknown_unit(analyte, quantity, reported))
    comparator = str_at(quantity, "comparator")
    bound = Bound.EXACT if comparator is None else _BOUNDS.get(comparator)
    if bound is None:
        return _Unusable(
            UnusableReason.INVALID, f"comparator '{comparator}' is not one of <, <=, >=, >"
        )
    if effective is None:
        return _Unusable(UnusableReason.NO_DATE, no_date)
    return _Value(canonical, bound, code, text, quantity, status, effective)


def invalid_result(
    item: FhirItem, analyte: Analyte, loinc: str, problem: SkippedResource
) -> UnusableResult:
    """Return the unusable result that stands for a liver-test Observation failing validation."""
    return UnusableResult(
        analyte,
        loinc,
        UnusableReason.INVALID,
        f"not valid FHIR at {problem.path}: {problem.message}",
        resource_ref(item),
    )


def effective_day(resource: JsonObject) -> date | None:
    """Return the calendar day of a result's effective time, cheaply, or None when unclear.

    Used only to decide what to read: the first effective[x] present (else `issued`) by its
    leading `YYYY-MM-DD`. The day may be off by one against UTC; callers allow a day's margin.
    """
    period = object_at(resource, "effectivePeriod")
    for text in (
        str_at(resource, "effectiveDateTime"),
        str_at(period, "start") if period is not None else None,
        str_at(period, "end") if period is not None else None,
        str_at(resource, "effectiveInstant"),
        str_at(resource, "issued"),
    ):
        if text is not None:
            try:
                return date.fromisoformat(text[:10])
            except ValueError:
                return None
    return None


def _effective_time(resource: JsonObject, path: str) -> tuple[datetime | None, bool, str]:
    """Return (time, date_only, why there is none) from effective[x], else `issued`.

    The first effective[x] present decides: a year-only effective time is not replaced by the
    later `issued` time, which would make the result look more precise and more recent.
    """
    period = object_at(resource, "effectivePeriod")
    candidates = (
        ("effectiveDateTime", str_at(resource, "effectiveDateTime")),
        ("effectivePeriod.start", str_at(period, "start") if period is not None else None),
        ("effectivePeriod.end", str_at(period, "end") if period is not None else None),
        ("effectiveInstant", str_at(resource, "effectiveInstant")),
        ("issued", str_at(resource, "issued")),
    )
    for name, text in candidates:
        if text is not None:
            try:
                moment, date_only = parse_fhir_datetime(text, f"{path}.{name}")
            except FhirMappingError as error:
                return None, False, f"{name} '{text}': {error.message}"
            return moment, date_only, ""
    return None, False, "no effective time and no issued time"


def _unit_of(quantity: JsonObject) -> tuple[str | None, str | None]:
    """Return (UCUM code, unit text): the code only when the system is UCUM."""
    code = str_at(quantity, "code") if quantity.get("system") == UCUM_SYSTEM else None
    return code, str_at(quantity, "unit")


def _canonical(
    analyte: Analyte, value: float, code: str | None, text: str | None, quantity: JsonObject
) -> float | None:
    """Convert a value, refusing a unit coded in a system other than UCUM and given no text."""
    if code is None and text is None and str_at(quantity, "code") is not None:
        return None
    return to_canonical(analyte, value, code, text)


def reference_high(
    ranges: Iterable[JsonObject], analyte: Analyte, value_code: str | None, value_text: str | None
) -> float | None:
    """Return the normal range's upper limit in the canonical unit, or None when unusable.

    The first of the `ranges` with a numeric high that is a normal range decides; a high with
    neither unit nor code is in the value's unit.
    """
    for reference_range in ranges:
        high = object_at(reference_range, "high")
        limit = number_at(high, "value") if high is not None else None
        if high is None or limit is None or not _is_normal_range(reference_range):
            continue
        code, text = _unit_of(high)
        if code is None and text is None and str_at(high, "code") is None:
            code, text = value_code, value_text  # a bare number is in the value's unit
        canonical = _canonical(analyte, limit, code, text, high)
        return canonical if canonical is not None and canonical > 0 else None
    return None


def _is_normal_range(reference_range: JsonObject) -> bool:
    """Return True when the range has no type, or its type is the normal range."""
    range_type = object_at(reference_range, "type")
    return range_type is None or any(
        coding.get("system") == _RANGE_MEANING_SYSTEM and coding.get("code") == "normal"
        for coding in codings(range_type)
    )


def _reported(quantity: JsonObject) -> str:
    """Return the value and unit as sent, such as `3.9 ukat/L` or `<5 U/L`."""
    value = quantity.get("value")
    unit = str_at(quantity, "unit") or str_at(quantity, "code") or ""
    return f"{str_at(quantity, 'comparator') or ''}{value} {unit}".strip()


def _unknown_unit(analyte: Analyte, quantity: JsonObject, reported: str) -> str:
    """Say which unit was not recognised and which would have been."""
    accepted = ", ".join(supported_units(analyte))
    code = str_at(quantity, "code")
    unit = str_at(quantity, "unit")
    if unit is None and code is None:
        named = "no unit"
    elif quantity.get("system") == UCUM_SYSTEM and code is not None:
        named = f"unit '{code}'"
    elif unit is not None:
        named = f"unit '{unit}'"
    else:
        named = f"unit code '{code}' from system '{quantity.get('system')}'"
    return f"{named} is not a recognised unit for {analyte} ({reported}; accepted: {accepted})"


def _missing_value(resource: JsonObject) -> str:
    """Say what an Observation has instead of a valueQuantity."""
    for key in VALUE_CHOICES[1:]:  # a value that is not a quantity
        if key in resource:
            return f"the value is a {key}, not a valueQuantity"
    return "no value"


def _concept_name(concept: JsonObject) -> str:
    """Return a CodeableConcept's text, else its first code, for a card."""
    text = str_at(concept, "text")
    if text is not None:
        return text
    for coding in codings(concept):
        name = str_at(coding, "display") or str_at(coding, "code")
        if name is not None:
            return name
    return "data absent"
