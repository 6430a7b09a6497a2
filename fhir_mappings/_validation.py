"""Validate the resources the rules use against the FHIR R4B models of `fhir.resources` 8.

R4B's resource models parse R4 JSON for the four types read here. Only resources already known to
matter (a mapped LOINC, a mipomersen order, a listed condition) are validated: about 0.4 ms each,
which would add up over a whole-patient Bundle. The models do not check code bindings, so status
values are checked by the mappers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from pydantic import ValidationError

from fhir_mappings._budget import charge_resource
from fhir_mappings._resources import FhirItem
from fhir_mappings._text import shorten
from fhir_mappings.values import SkippedResource

_Validate = Callable[[Mapping[str, Any]], object]
_MESSAGE_LIMIT = 200


_WARM_UP_RESOURCES: tuple[dict[str, Any], ...] = (
    {"resourceType": "Observation", "status": "final", "code": {"text": "ALT"}},
    {"resourceType": "Condition", "subject": {"reference": "Patient/p"}},
    {"resourceType": "Medication", "code": {"text": "mipomersen"}},
    {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "medicationCodeableConcept": {"text": "mipomersen"},
    },
)


def preload_validators() -> None:
    """Import the models and validate one resource of each type, so no request pays for it.

    The first import and first validation build pydantic's validators (the better part of a
    second); a server calls this as each worker starts.
    """
    validators = _validators()
    for resource in _WARM_UP_RESOURCES:
        validators[resource["resourceType"]](resource)


def validation_problem(item: FhirItem) -> SkippedResource | None:
    """Return why `item` fails FHIR validation, or None when it is valid."""
    resource_type = item.resource_type or "Resource"
    charge_resource(item.path, item.resource)  # may raise WorkLimitExceeded
    try:
        _validators()[resource_type](item.resource)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        more = error.error_count() - 1
        message = _short(first["msg"]) + (f" (and {more} more)" if more else "")
        return SkippedResource(
            resource_type, _id(item), dotted_path(item.path, first["loc"]), message
        )
    except (ValueError, TypeError, LookupError) as error:  # fhir.resources raises these too
        return SkippedResource(resource_type, _id(item), item.path, _short(str(error)))
    return None


def dotted_path(path: str, loc: tuple[int | str, ...]) -> str:
    """Append a pydantic error location to a resource path: `...valueQuantity.value`, `[0]`."""
    parts = [path]
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part != "root":  # fhir.resources' name for "the element itself"
            parts.append(f".{part}")
    return "".join(parts)


def _short(message: str) -> str:
    """Collapse whitespace and cap the length of a validator message."""
    return shorten(message, _MESSAGE_LIMIT, collapse_whitespace=True)


def _id(item: FhirItem) -> str | None:
    """Return the resource id as sent, when it is a string."""
    value = item.resource.get("id")
    return value if isinstance(value, str) else None


@cache
def _validators() -> dict[str, _Validate]:
    """Import the R4B models on first use (about 0.4 s) and return them by resource type."""
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.medication import Medication
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.observation import Observation

    models: dict[str, Any] = {
        "Condition": Condition,
        "Medication": Medication,
        "MedicationRequest": MedicationRequest,
        "Observation": Observation,
    }
    return {name: model.model_validate for name, model in models.items()}
