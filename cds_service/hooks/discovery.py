"""The three CDS Services this server offers, as data (CDS Hooks 2.0.1 § Discovery).

Prefetch templates use only the spec's recommended query subset: an instance read, type
searches by patient, token equality on LOINC codes, `_sort` and `_count`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_mappings import loinc_codes

PATIENT_KEY = "patient"
LIVER_LABS_KEY = "liverLabs"
MEDICATIONS_KEY = "medications"
CONDITIONS_KEY = "conditions"
LIVER_LAB_PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    """One CDS Service: its id, hook, wording and the prefetch data it relies on."""

    id: str
    hook: str
    title: str
    description: str
    usage_requirements: str

    def to_json(self) -> dict[str, Any]:
        """Return the discovery entry of this service."""
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": dict(prefetch_templates()),
            "usageRequirements": self.usage_requirements,
        }


@cache
def prefetch_templates() -> dict[str, str]:
    """Return the prefetch templates shared by every service (key -> FHIR query)."""
    codes = ",".join(f"http://loinc.org|{code}" for code in loinc_codes())
    patient = "{{context.patientId}}"
    return {
        PATIENT_KEY: f"Patient/{patient}",
        LIVER_LABS_KEY: (
            f"Observation?patient={patient}&code={codes}&_sort=-date&_count={LIVER_LAB_PAGE_SIZE}"
        ),
        MEDICATIONS_KEY: f"MedicationRequest?patient={patient}",
        CONDITIONS_KEY: f"Condition?patient={patient}",
    }


_USAGE = (
    "Send the prefetch keys liverLabs, medications and conditions (patient is optional), "
    "or fhirServer (with fhirAuthorization) so the service can fetch them; otherwise it "
    "answers 412."
)

SERVICES: tuple[ServiceDefinition, ...] = (
    ServiceDefinition(
        id="mipomersen-order-select",
        hook="order-select",
        title="Mipomersen liver safety (order selected)",
        description=(
            "When a mipomersen (Kynamro) order is selected, checks ALT, AST, bilirubin and "
            "alkaline phosphatase against the Kynamro prescribing information: withhold, "
            "discontinue, contraindication, confirmation and monitoring tests."
        ),
        usage_requirements=_USAGE,
    ),
    ServiceDefinition(
        id="mipomersen-order-sign",
        hook="order-sign",
        title="Mipomersen liver safety (order signing)",
        description=(
            "Before a mipomersen (Kynamro) order is signed, checks the liver tests and liver "
            "conditions the Kynamro prescribing information requires, and suggests removing the "
            "order or ordering the missing tests."
        ),
        usage_requirements=_USAGE,
    ),
    ServiceDefinition(
        id="mipomersen-patient-view",
        hook="patient-view",
        title="Mipomersen liver safety (chart review)",
        description=(
            "When the chart of a patient with an active mipomersen (Kynamro) prescription is "
            "opened, checks for liver test elevations and overdue monitoring."
        ),
        usage_requirements=_USAGE,
    ),
)


def find_service(service_id: str) -> ServiceDefinition | None:
    """Return the service with `service_id`, or None."""
    return next((service for service in SERVICES if service.id == service_id), None)


def discovery_document() -> dict[str, Any]:
    """Return the body of `GET /cds-services`."""
    return {"services": [service.to_json() for service in SERVICES]}
