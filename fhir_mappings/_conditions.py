"""Recognise liver Conditions (FHIR R4 Condition; clinical reference §5, policies 9 and 10).

Two lists, as data in `data/liver-condition-codes.json` with each code's status and source:
active liver disease (contraindication, and discontinuation with a transaminase rise) and
clinical symptoms of liver injury (discontinuation). ICD-10-CM codes are compared without the
dot, and the blocks K70-K77 and B15-B19 match by prefix. A Condition counts while it is active
(a missing clinicalStatus counts: the conservative reading) and not refuted or entered in error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources

from fhir_mappings._errors import FhirMappingError
from fhir_mappings._json import JsonObject, codings, object_at, str_at
from fhir_mappings._resources import FhirItem, resource_ref
from fhir_mappings._times import parse_fhir_datetime
from fhir_mappings.values import Coding, LiverCondition, LiverConditionKind

ICD_10_CM = "http://hl7.org/fhir/sid/icd-10-cm"
# FHIR R4 condition-clinical and condition-ver-status code systems
_CLINICAL_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_ACTIVE_STATUSES = frozenset({"active", "recurrence", "relapse"})
_ENDED_STATUSES = frozenset({"inactive", "remission", "resolved"})
_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_EXCLUDED_VERIFICATIONS = frozenset({"refuted", "entered-in-error"})


@dataclass(frozen=True, slots=True)
class ListedCode:
    """A code from the project's lists: which group it is in and its display."""

    kind: LiverConditionKind
    display: str


@dataclass(frozen=True, slots=True)
class _CodeLists:
    """The listed codes by (system, normalised code), and the ICD-10-CM prefixes."""

    exact: Mapping[tuple[str, str], ListedCode]
    prefixes: tuple[tuple[str, str, ListedCode], ...]  # (system, prefix, listed)

    def find(self, system: str, code: str) -> ListedCode | None:
        """Return the listing of a code, exact matches before prefixes, or None."""
        key = _normalised(system, code)
        listed = self.exact.get((system, key))
        if listed is not None:
            return listed
        for prefix_system, prefix, prefixed in self.prefixes:
            if prefix_system == system and key.startswith(prefix):
                return prefixed
        return None


def listed_coding(resource: JsonObject) -> tuple[JsonObject, ListedCode] | None:
    """Return the coding of a Condition that is on a list, and its listing, or None.

    When codings fall in both groups, active liver disease wins: it is the graver reading.
    """
    found: list[tuple[JsonObject, ListedCode]] = []
    for coding in codings(object_at(resource, "code")):
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str):
            listed = _code_lists().find(system, code)
            if listed is not None:
                found.append((coding, listed))
    for match in found:
        if match[1].kind is LiverConditionKind.ACTIVE_LIVER_DISEASE:
            return match
    return found[0] if found else None


def read_liver_condition(
    item: FhirItem, coding: JsonObject, listed: ListedCode
) -> LiverCondition | None:
    """Return the `LiverCondition` of a validated listed Condition, or None if it does not count."""
    resource = item.resource
    if not _is_current(resource) or _is_excluded(resource):
        return None
    code = object_at(resource, "code")
    display = str_at(coding, "display")
    name = (str_at(code, "text") if code is not None else None) or display or listed.display
    return LiverCondition(
        kind=listed.kind,
        coding=Coding(str_at(coding, "system"), str_at(coding, "code"), display),
        recorded=_recorded(resource, item.path),
        source=resource_ref(item),
        name=name,
    )


def _is_current(resource: JsonObject) -> bool:
    """Return True unless clinicalStatus says only inactive, remission or resolved."""
    statuses = _status_codes(object_at(resource, "clinicalStatus"), _CLINICAL_SYSTEM)
    return bool(statuses & _ACTIVE_STATUSES) or not statuses & _ENDED_STATUSES


def _is_excluded(resource: JsonObject) -> bool:
    """Return True when verificationStatus is refuted or entered-in-error."""
    statuses = _status_codes(object_at(resource, "verificationStatus"), _VERIFICATION_SYSTEM)
    return bool(statuses & _EXCLUDED_VERIFICATIONS)


def _status_codes(concept: JsonObject | None, system: str) -> frozenset[str]:
    """Return the codes of a status concept in `system` (or with no system)."""
    return frozenset(
        code
        for coding in codings(concept)
        if coding.get("system") in (system, None) and isinstance(code := coding.get("code"), str)
    )


def _recorded(resource: JsonObject, path: str) -> datetime | None:
    """Return recordedDate, else onsetDateTime, else onsetPeriod.start; None if none is usable."""
    onset_period = object_at(resource, "onsetPeriod")
    candidates = (
        ("recordedDate", str_at(resource, "recordedDate")),
        ("onsetDateTime", str_at(resource, "onsetDateTime")),
        ("onsetPeriod.start", str_at(onset_period, "start") if onset_period else None),
    )
    for name, text in candidates:
        if text is not None:
            try:
                return parse_fhir_datetime(text, f"{path}.{name}")[0]
            except FhirMappingError:
                continue
    return None


def _normalised(system: str, code: str) -> str:
    """Return a code as compared: ICD-10-CM without dot or case, others trimmed."""
    code = code.strip()
    return code.replace(".", "").upper() if system == ICD_10_CM else code


@cache
def _code_lists() -> _CodeLists:
    """Load `data/liver-condition-codes.json` once."""
    path = resources.files("fhir_mappings").joinpath("data/liver-condition-codes.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    exact = {
        (entry["system"], _normalised(entry["system"], entry["code"])): ListedCode(
            LiverConditionKind(entry["kind"]), entry["display"]
        )
        for entry in data["codes"]
    }
    prefixes = tuple(
        (
            entry["system"],
            _normalised(entry["system"], entry["prefix"]),
            ListedCode(LiverConditionKind(entry["kind"]), entry["display"]),
        )
        for entry in data["prefixes"]
    )
    return _CodeLists(exact, prefixes)
