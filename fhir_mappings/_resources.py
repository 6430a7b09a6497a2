"""Split FHIR R4 request JSON into resources, each with its dotted path (FHIR R4 Bundle, §2.36).

A CDS Hooks 2.0 prefetch value is one resource or a Bundle (usually a `searchset`; a whole-patient
export is a `transaction` or `collection`); `context.draftOrders` is a Bundle. Every Bundle type is
read the same way: each entry's resource, with its `fullUrl` for resolving references.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fhir_mappings._errors import FhirMappingError
from fhir_mappings._json import JsonObject, object_at, str_at
from fhir_mappings.values import ResourceRef


@dataclass(frozen=True, slots=True, init=False)
class FhirItem:
    """One resource from the request, with where it was found.

    `path` is the dotted path of the resource in the request, such as
    `prefetch.labs.entry[3].resource`; `full_url` is the Bundle entry's `fullUrl`, if any.
    """

    path: str
    resource: Mapping[str, Any]
    full_url: str | None = None
    # The resource's `resourceType`, or None when it has none (read once: asked ~5 times each).
    resource_type: str | None = field(init=False, repr=False, compare=False)

    def __init__(self, path: str, resource: Mapping[str, Any], full_url: str | None = None) -> None:
        """Keep the resource found at `path` (and its entry's `full_url`)."""
        # A request holds hundreds of resources: the slots are set directly, for about half of
        # what a frozen dataclass's generated `__init__` costs.
        _set_path(self, path)
        _set_resource(self, resource)
        _set_full_url(self, full_url)
        _set_type(self, str_at(resource, "resourceType"))


_set_path = vars(FhirItem)["path"].__set__
_set_resource = vars(FhirItem)["resource"].__set__
_set_full_url = vars(FhirItem)["full_url"].__set__
_set_type = vars(FhirItem)["resource_type"].__set__


def read_resources(value: object, path: str) -> Iterator[FhirItem]:
    """Return the resources in `value`: a Bundle's entry resources, or the resource itself.

    The whole value is checked before anything is returned, so a malformed entry raises
    `FhirMappingError` (with the path of the entry) at the call, not half-way through a loop.
    Entries without a resource (e.g. in a transaction-response) are skipped.
    """
    resource = _resource(value, path)
    if resource["resourceType"] != "Bundle":
        return iter((FhirItem(path, resource),))
    entries = resource.get("entry", [])
    if not isinstance(entries, list):
        raise FhirMappingError(f"{path}.entry", "expected a JSON array")
    items: list[FhirItem] = []
    append = items.append
    for index, entry in enumerate(entries):
        # Decoded JSON is made of dicts: the `Mapping` check (an ABC, slow) only for the rest.
        if type(entry) is not dict and not isinstance(entry, Mapping):
            raise FhirMappingError(f"{path}.entry[{index}]", _expected_object(entry))
        inner = entry.get("resource")
        if inner is None:
            continue
        entry_path = f"{path}.entry[{index}].resource"
        resource_type = inner.get("resourceType") if type(inner) is dict else None
        if type(resource_type) is not str or not resource_type:
            inner = _resource(inner, entry_path)  # raises, unless a Mapping of another type
        full_url = entry.get("fullUrl")
        append(FhirItem(entry_path, inner, full_url if isinstance(full_url, str) else None))
    return iter(items)


def resource_ref(item: FhirItem) -> ResourceRef:
    """Return the `ResourceRef` that says which resource a value came from."""
    meta = object_at(item.resource, "meta")
    return ResourceRef(
        resource_type=item.resource_type or "Resource",
        id=str_at(item.resource, "id"),
        path=item.path,
        version=str_at(meta, "versionId") if meta is not None else None,
    )


def _resource(value: object, path: str) -> JsonObject:
    """Return `value` when it is a JSON object with a string `resourceType`."""
    if not isinstance(value, Mapping):
        raise FhirMappingError(path, _expected_object(value))
    if not isinstance(value.get("resourceType"), str) or not value["resourceType"]:
        raise FhirMappingError(f"{path}.resourceType", "expected a resource type string")
    return value


def _expected_object(value: object) -> str:
    """Describe a value that should have been a JSON object, by its JSON type only."""
    return f"expected a JSON object, got {_json_type(value)}"


def _json_type(value: object) -> str:
    """Name the JSON type of a parsed value (never the value itself, which may be patient data)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return type(value).__name__
