"""Recognise mipomersen (Kynamro) MedicationRequests (policy 6 and §2; FHIR R4).

A MedicationRequest is mipomersen when its medication — the `medicationCodeableConcept`, or the
Medication that `medicationReference` points to (contained, elsewhere in the prefetch or the
draft orders, by `Medication/<id>` or by an entry `fullUrl` such as `urn:uuid:...`) — carries:

1. ATC C10AX11 (V: WHO ATC C10AX table; Pharmacolibrary `Drugs/ATC/C/C10AX11.mo`), or
2. a (system, code) the deployer configured in `MedicationCodes` (no RxNorm or NDC code for
   mipomersen could be verified, so none is built in), or
3. the word "mipomersen" or "Kynamro" (case-insensitive) in a coding display, a text, or the
   reference's display.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from fhir_mappings._errors import FhirMappingError
from fhir_mappings._json import JsonObject, codings, object_at, objects_at, str_at
from fhir_mappings._resources import FhirItem, resource_ref
from fhir_mappings._times import parse_fhir_datetime
from fhir_mappings.values import MedicationCodes, MedicationOrder, SkippedResource

ATC_SYSTEMS = frozenset(
    {
        "http://www.whocc.no/atc",  # FHIR R4 §4.3 (terminologies-systems)
        "urn:oid:2.16.840.1.113883.6.73",  # the HL7 OID of WHO ATC
    }
)
ATC_MIPOMERSEN = "C10AX11"
_NAMES = ("mipomersen", "Kynamro")  # INN and US brand name (FDA NDA 203568)
_NAME_PATTERN = re.compile("|".join(_NAMES), re.IGNORECASE)
_CANONICAL_NAMES = {name.casefold(): name for name in _NAMES}


@dataclass(frozen=True, slots=True)
class MedicationSource:
    """The Medication a MedicationRequest points to, and whether it still needs validation.

    `item` is set for a Medication found elsewhere in the request (validated separately); it is
    None for a contained Medication, which is validated with its MedicationRequest.
    """

    resource: JsonObject
    item: FhirItem | None


class MedicationIndex:
    """Find the Medication resources of a request by `Medication/<id>` or by entry `fullUrl`."""

    def __init__(self, medications: Iterable[FhirItem]) -> None:
        """Index `medications`; where two share a key, the first one wins."""
        self._by_key: dict[str, FhirItem] = {}
        for item in medications:
            resource_id = str_at(item.resource, "id")
            keys = (item.full_url, f"Medication/{resource_id}" if resource_id else None)
            for key in keys:
                if key is not None:
                    self._by_key.setdefault(key, item)

    def medication_of(self, request: JsonObject) -> MedicationSource | None:
        """Return the Medication that a MedicationRequest's `medicationReference` resolves to."""
        reference = object_at(request, "medicationReference")
        target = str_at(reference, "reference") if reference is not None else None
        if target is None:
            return None
        if target.startswith("#"):
            contained = _contained_medication(request, target[1:])
            return MedicationSource(contained, None) if contained is not None else None
        item = self._by_key.get(target) or self._by_key.get(_relative(target))
        return MedicationSource(item.resource, item) if item is not None else None


def mipomersen_match(
    request: JsonObject, medication: JsonObject | None, codes: MedicationCodes
) -> str | None:
    """Return why a MedicationRequest is for mipomersen (ATC, configured code, text), or None."""
    concepts = [object_at(request, "medicationCodeableConcept")]
    if medication is not None:
        concepts.append(object_at(medication, "code"))
    all_codings = [coding for concept in concepts for coding in codings(concept)]
    for coding in all_codings:
        system = coding.get("system")
        if type(system) is str and system in ATC_SYSTEMS and coding.get("code") == ATC_MIPOMERSEN:
            return f"ATC {ATC_MIPOMERSEN}"
    for coding in all_codings:
        system, code = coding.get("system"), coding.get("code")
        if isinstance(system, str) and isinstance(code, str) and (system, code) in codes.codes:
            return f"code {system}|{code}"
    for text in _texts(request, concepts, all_codings):
        found = _NAME_PATTERN.search(text)
        if found is not None:
            return f"text '{_CANONICAL_NAMES[found.group().casefold()]}'"
    return None


def identify_mipomersen_orders(
    requests: Iterable[tuple[FhirItem, bool]],
    medications: Iterable[FhirItem],
    codes: MedicationCodes,
) -> tuple[MedicationOrder, ...]:
    """Return the mipomersen orders among `(request, is_draft_order)` pairs, unvalidated.

    A cheap look at the medication elements alone (policy 15), enough to tell whether a hook
    call involves mipomersen before anything is fetched or validated.
    """
    index = MedicationIndex(medications)
    orders: list[MedicationOrder] = []
    for item, is_draft_order in requests:
        source = index.medication_of(item.resource)
        medication = source.resource if source is not None else None
        matched_by = mipomersen_match(item.resource, medication, codes)
        if matched_by is not None:
            orders.append(
                read_medication_order(item, medication, matched_by, is_draft_order=is_draft_order)
            )
    return tuple(orders)


def read_medication_order(
    item: FhirItem,
    medication: JsonObject | None,
    matched_by: str,
    *,
    is_draft_order: bool,
    problem: SkippedResource | None = None,
) -> MedicationOrder:
    """Return the `MedicationOrder` of a mipomersen MedicationRequest.

    Reads leniently: an element that is absent or malformed reads as unknown (`problem` says
    which one failed validation), so an invalid order is still an order (policy 15).
    """
    request = item.resource
    subject = object_at(request, "subject")
    return MedicationOrder(
        source=resource_ref(item),
        status=str_at(request, "status") or "unknown",
        intent=str_at(request, "intent"),
        authored_on=_authored_on(request, item.path),
        subject=str_at(subject, "reference") if subject is not None else None,
        medication=_medication_name(request, medication),
        matched_by=matched_by,
        is_draft_order=is_draft_order,
        problem=problem,
    )


def _contained_medication(request: JsonObject, local_id: str) -> JsonObject | None:
    """Return the contained Medication with id `local_id`, or None."""
    for contained in objects_at(request, "contained"):
        if contained.get("resourceType") == "Medication" and contained.get("id") == local_id:
            return contained
    return None


def _relative(reference: str) -> str:
    """Return `Medication/<id>` from an absolute or versioned reference (else the reference)."""
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:])


def _texts(
    request: JsonObject, concepts: list[JsonObject | None], all_codings: list[JsonObject]
) -> Iterator[str]:
    """Yield every free text that may name the drug: texts, displays, the reference display."""
    for concept in concepts:
        if concept is not None and (text := str_at(concept, "text")) is not None:
            yield text
    for coding in all_codings:
        if (display := str_at(coding, "display")) is not None:
            yield display
    reference = object_at(request, "medicationReference")
    if reference is not None and (display := str_at(reference, "display")) is not None:
        yield display


def _medication_name(request: JsonObject, medication: JsonObject | None) -> str:
    """Return a readable name: a text, else a coding display, else the reference display."""
    concepts = [object_at(request, "medicationCodeableConcept")]
    if medication is not None:
        concepts.append(object_at(medication, "code"))
    all_codings = [coding for concept in concepts for coding in codings(concept)]
    return next(_texts(request, concepts, all_codings), "mipomersen")


def _authored_on(request: JsonObject, path: str) -> datetime | None:
    """Return `authoredOn` in UTC, or None when absent or less precise than a day."""
    text = str_at(request, "authoredOn")
    if text is None:
        return None
    try:
        return parse_fhir_datetime(text, f"{path}.authoredOn")[0]
    except FhirMappingError:
        return None
