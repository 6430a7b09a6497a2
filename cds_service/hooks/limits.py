"""Limits on the work one hook call may ask for, stated in the README and openapi.yaml.

The body size (MIPOMERSEN_CDS_MAX_BODY_BYTES) bounds the bytes; these bound what the bytes may
ask the service to do, so that any body under the size limit is answered within a second of
CPU (`bench/adversarial.py` searches for the worst body and prints its time):

- at most `max_bundle_entries` entries in each Bundle (`context.draftOrders`, each prefetch key);
- at most `max_contained` contained resources in one resource;
- at most `max_reference_ranges` reference ranges in one Observation;
- at most `max_resource_bytes` characters of JSON in a resource the rules read (it is validated
  against the FHIR models, which costs up to 0.8 µs per byte);
- at most `cpu_seconds` of CPU for decoding the body and reading its FHIR data.

The first three are refused with 400 naming the field; the last two with 413 (`too-costly`).
Real requests are far below: the examples hold 11 resources, a Synthea patient 339 with at most
2 contained, US Core Observations one reference range and at most about 4 KB of JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cds_service.errors import BadRequest, TooCostly
from fhir_mappings import FhirItem, WorkLimitExceeded, work_limits

__all__ = ["HTTP_LIMITS", "RequestLimits", "bounded_work", "check_resource", "check_resources"]


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """How much one request may ask of the service."""

    max_bundle_entries: int = 1000
    max_contained: int = 20
    max_reference_ranges: int = 10
    max_resource_bytes: int = 64 * 1024
    cpu_seconds: float = 0.75


HTTP_LIMITS = RequestLimits()


def check_bundle(bundle: Mapping[str, Any], path: str, limits: RequestLimits) -> None:
    """Refuse a Bundle with more entries than `limits` allow."""
    entries = bundle.get("entry")
    if isinstance(entries, list) and len(entries) > limits.max_bundle_entries:
        raise BadRequest(
            f"{path}.entry holds {len(entries)} entries; at most {limits.max_bundle_entries} "
            "are accepted per Bundle",
            path=f"{path}.entry",
        )


def check_resource(resource: Mapping[str, Any], path: str, limits: RequestLimits) -> None:
    """Refuse a resource with more contained resources or reference ranges than allowed."""
    for key, limit, what in (
        ("contained", limits.max_contained, "contained resources"),
        ("referenceRange", limits.max_reference_ranges, "reference ranges"),
    ):
        value = resource.get(key)
        if isinstance(value, list) and len(value) > limit:
            raise BadRequest(
                f"{path}.{key} holds {len(value)} {what}; at most {limit} are accepted",
                path=f"{path}.{key}",
            )
    contained = resource.get("contained")
    if isinstance(contained, list):
        for index, inner in enumerate(contained):
            if isinstance(inner, Mapping):
                check_resource(inner, f"{path}.contained[{index}]", limits)


def check_resources(items: Iterable[FhirItem], limits: RequestLimits) -> None:
    """Refuse the first of `items` with more contained resources or reference ranges than allowed.

    Most resources hold no contained resources and one reference range at most: those are
    passed after two look-ups; any other goes through `check_resource`.
    """
    max_ranges = limits.max_reference_ranges
    for item in items:
        resource = item.resource
        ranges = resource.get("referenceRange")
        if resource.get("contained") is not None or (
            ranges is not None and (type(ranges) is not list or len(ranges) > max_ranges)
        ):
            check_resource(resource, item.path, limits)


@contextmanager
def bounded_work(limits: RequestLimits) -> Iterator[None]:
    """Apply the CPU and resource-size limits to the block; over them, raise `TooCostly`."""
    try:
        with work_limits(
            cpu_seconds=limits.cpu_seconds, max_resource_bytes=limits.max_resource_bytes
        ):
            yield
    except WorkLimitExceeded as error:
        raise TooCostly(error.message, path=error.path) from None
