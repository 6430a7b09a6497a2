"""Validate the resources the rules use against the FHIR R4B models of `fhir.resources` 8.

R4B's resource models parse R4 JSON for the four types read here. Only resources already known to
matter (a mapped LOINC, a mipomersen order, a listed condition) are validated. The models do not
check code bindings, so status values are checked by the mappers.

Two scopes (`ValidationScope`, the MIPOMERSEN_CDS_FHIR_VALIDATION setting): `consumed`, the
default, validates the elements the rules read (`_consumed.CONSUMED`): an ordinary resource is
passed by a fast checker in a few microseconds, anything else is validated by the models
restricted to those elements, which give the verdict and the dotted path. A MedicationRequest is
validated whole in this scope too; an ordinary order (only the elements `_consumed` checks) is
passed by the fast checker, any other by the models. Ordinary liver-test Observations are
validated as they are read (`_ordinary_observations`). `full` validates every element with the
models (about 0.4 ms a resource), as before issue 13.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import ValidationError

from fhir_mappings._budget import charge_resource
from fhir_mappings._consumed import CONSUMED, consumed_part, is_certainly_valid
from fhir_mappings._resources import FhirItem
from fhir_mappings._text import shorten
from fhir_mappings.values import SkippedResource

_Validate = Callable[[Mapping[str, Any]], object]
_MESSAGE_LIMIT = 200


class ValidationScope(StrEnum):
    """Which elements of a resource the rules read must be valid FHIR."""

    CONSUMED = "consumed"  # the elements the rules read (`_consumed.CONSUMED`)
    FULL = "full"  # every element, as `fhir.resources` validates a whole resource


_SCOPE: ContextVar[ValidationScope] = ContextVar(
    "fhir_mappings_validation_scope", default=ValidationScope.CONSUMED
)


@contextmanager
def validation_scope(scope: ValidationScope) -> Iterator[None]:
    """Validate the resources read within the block in `scope`."""
    token = _SCOPE.set(scope)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def scope_in_force() -> ValidationScope:
    """Return the validation scope of the current read."""
    return _SCOPE.get()


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
        is_certainly_valid(resource)  # and the element names the fast path looks up


def validation_problem(item: FhirItem) -> SkippedResource | None:
    """Return why `item` fails FHIR validation in the scope in force, or None when it is valid."""
    resource_type = item.resource_type or "Resource"
    charge_resource(item.path, item.resource)  # may raise WorkLimitExceeded
    resource: Mapping[str, Any] = item.resource
    if _SCOPE.get() is ValidationScope.CONSUMED:
        if is_certainly_valid(resource):
            return None
        if resource_type in CONSUMED:
            resource = consumed_part(resource)
    try:
        _validators()[resource_type](resource)
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


def model_of(resource_type: str) -> Any:
    """Return the R4B model class of one of the types read here, or None."""
    return _models().get(resource_type)


@cache
def _models() -> dict[str, Any]:
    """Import the R4B models on first use (about 0.4 s) and return them by resource type."""
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.medication import Medication
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.observation import Observation

    return {
        "Condition": Condition,
        "Medication": Medication,
        "MedicationRequest": MedicationRequest,
        "Observation": Observation,
    }


@cache
def _validators() -> dict[str, _Validate]:
    """Return the models' validators by resource type."""
    return {name: model.model_validate for name, model in _models().items()}
