"""Whose record is it: match each resource's patient reference to the hook's patient.

Implements project policy 15 (docs/clinical-policy.md): a resource whose subject is another
patient than `context.patientId` is never used. FHIR R4 references (§2.3.0 References) come in
three forms, all resolved here:

- relative, `Patient/123` (optionally `/_history/2`);
- absolute, `https://ehr.example.org/fhir/Patient/123`, which names this patient only on the
  request's `fhirServer` base (without a `fhirServer`, any base is read as the request's own);
- a Bundle-local `urn:uuid:...` (or `urn:oid:`), resolved through the `fullUrl` of a Patient
  entry anywhere in the request, as in a Synthea patient Bundle.

A reference that resolves to another patient, or to something that is not a Patient (a Group),
makes the resource *foreign*; a resource with no subject, or one whose reference cannot be
resolved (an identifier or display only, a `urn:uuid` with no Patient entry, a contained
reference), is *unattributed*: nobody can say whose it is, so it is not used either and the card
names it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from fhir_mappings._json import object_at, str_at
from fhir_mappings._resources import FhirItem

# Resource types the rules read, and the element that names their patient (FHIR R4).
PATIENT_ELEMENTS: dict[str, str] = {
    "Observation": "subject",
    "Condition": "subject",
    "MedicationRequest": "subject",
}
_LOCAL_SCHEMES = ("urn:uuid:", "urn:oid:")


class Attribution(StrEnum):
    """How a resource relates to the patient in context."""

    THIS_PATIENT = "this-patient"
    OTHER_PATIENT = "other-patient"  # provably someone (or something) else: refuse
    UNATTRIBUTED = "unattributed"  # no subject, or a reference that cannot be resolved


@dataclass(frozen=True, slots=True)
class IdentityProblem:
    """A resource that is not provably about the patient in context, and why."""

    attribution: Attribution
    path: str  # dotted path of the offending element, e.g. `...resource.subject.reference`
    resource_type: str
    id: str | None
    message: str  # never quotes the reference: it may identify another patient


@dataclass(frozen=True, slots=True)
class PatientIdentity:
    """The patient a hook call is about, and how the request may refer to it."""

    patient_id: str
    server_base: str | None = None  # `fhirServer`, for absolute references
    local_patients: tuple[tuple[str, str], ...] = ()  # (entry fullUrl, Patient id) pairs

    @classmethod
    def of_request(
        cls, patient_id: str, items: Iterable[FhirItem], *, server_base: str | None = None
    ) -> PatientIdentity:
        """Return the identity, learning Bundle-local Patient `fullUrl`s from `items`."""
        local = tuple(
            (item.full_url, str_at(item.resource, "id") or "")
            for item in items
            if item.full_url is not None and item.resource_type == "Patient"
        )
        base = server_base.rstrip("/") if server_base else None
        return cls(patient_id=patient_id, server_base=base, local_patients=local)

    def problem(self, item: FhirItem, *, subject_optional: bool = False) -> IdentityProblem | None:
        """Return why `item` is not about this patient, or None when it is (or names nobody).

        `subject_optional` is for `context.draftOrders`: an order being placed in this
        patient's chart belongs to it unless it says otherwise.
        """
        resource_type = item.resource_type or "Resource"
        if resource_type == "Patient":
            patient_id = str_at(item.resource, "id")
            if patient_id is not None and patient_id != self.patient_id:
                return self._problem(
                    Attribution.OTHER_PATIENT,
                    f"{item.path}.id",
                    item,
                    "is a different Patient than context.patientId",
                )
            return None
        element = PATIENT_ELEMENTS.get(resource_type)
        if element is None:
            return None
        subject = object_at(item.resource, element)
        if subject is None:
            if subject_optional and element not in item.resource:
                return None
            return self._problem(
                Attribution.UNATTRIBUTED,
                f"{item.path}.{element}",
                item,
                f"has no {element}, so it cannot be told to be this patient's",
            )
        reference = str_at(subject, "reference")
        if reference is not None and self._is_plainly_own(reference):
            return None
        if reference is None:
            return self._problem(
                Attribution.UNATTRIBUTED,
                f"{item.path}.{element}",
                item,
                f"{element} has no reference, so it cannot be told to be this patient's",
            )
        attribution, why = self.attribute(reference)
        if attribution is Attribution.THIS_PATIENT:
            return None
        return self._problem(attribution, f"{item.path}.{element}.reference", item, why)

    def _is_plainly_own(self, reference: str) -> bool:
        """Return True for exactly `Patient/<patientId>`: `attribute` reads it as this patient."""
        return reference == self.plain_reference

    @property
    def plain_reference(self) -> str | None:
        """Return `Patient/<patientId>`, which `attribute` reads as this patient without parsing.

        None when the id is empty or holds a `/` (then the reference must be parsed).
        """
        patient_id = self.patient_id
        return f"Patient/{patient_id}" if patient_id and "/" not in patient_id else None

    def attribute(self, reference: str) -> tuple[Attribution, str]:
        """Return whether a reference names this patient, and the reason when it does not."""
        target = reference.strip().split("/_history/")[0].rstrip("/")
        if target.startswith(_LOCAL_SCHEMES):
            for full_url, patient_id in self.local_patients:
                if full_url == target:
                    return self._by_id("Patient", patient_id)
            return Attribution.UNATTRIBUTED, "refers to no Patient entry in the request"
        if "://" in target:
            for full_url, patient_id in self.local_patients:
                if full_url.rstrip("/") == target:
                    return self._by_id("Patient", patient_id)
            base, _, relative = target.rpartition("/")
            base, _, resource_type = base.rpartition("/")
            if self.server_base is not None and base != self.server_base:
                return Attribution.OTHER_PATIENT, "refers to a resource on another server"
            return self._by_id(resource_type, relative)
        if target.startswith("#") or target.count("/") != 1:
            return Attribution.UNATTRIBUTED, "names no Patient this service can resolve"
        resource_type, _, resource_id = target.partition("/")
        return self._by_id(resource_type, resource_id)

    def _by_id(self, resource_type: str, resource_id: str) -> tuple[Attribution, str]:
        if resource_type != "Patient":
            return Attribution.OTHER_PATIENT, "refers to something other than a Patient"
        if resource_id != self.patient_id:
            return Attribution.OTHER_PATIENT, "refers to a different patient than context.patientId"
        return Attribution.THIS_PATIENT, ""

    @staticmethod
    def _problem(
        attribution: Attribution, path: str, item: FhirItem, message: str
    ) -> IdentityProblem:
        resource_type = item.resource_type or "Resource"
        return IdentityProblem(
            attribution=attribution,
            path=path,
            resource_type=resource_type,
            id=str_at(item.resource, "id"),
            message=f"{resource_type} {message}",
        )


@dataclass(frozen=True, slots=True)
class AttributedItems:
    """The resources of a request sorted by whose they are."""

    own: tuple[FhirItem, ...]
    unattributed: tuple[tuple[FhirItem, IdentityProblem], ...]
    foreign: tuple[IdentityProblem, ...]


def attribute_items(
    items: Iterable[FhirItem], identity: PatientIdentity, *, subject_optional: bool = False
) -> AttributedItems:
    """Sort `items` into this patient's, unattributed ones and other patients' (in input order)."""
    own: list[FhirItem] = []
    unattributed: list[tuple[FhirItem, IdentityProblem]] = []
    foreign: list[IdentityProblem] = []
    plain_reference = identity.plain_reference
    for item in items:
        # The common case first, as `problem` would find it: a patient element that is an
        # object whose reference is exactly `Patient/<patientId>`.
        element = PATIENT_ELEMENTS.get(item.resource_type or "")
        if element is not None:
            subject = item.resource.get(element)
            if (
                type(subject) is dict
                and plain_reference is not None
                and subject.get("reference") == plain_reference
            ):
                own.append(item)
                continue
        problem = identity.problem(item, subject_optional=subject_optional)
        if problem is None:
            own.append(item)
        elif problem.attribution is Attribution.OTHER_PATIENT:
            foreign.append(problem)
        else:
            unattributed.append((item, problem))
    return AttributedItems(tuple(own), tuple(unattributed), tuple(foreign))
