"""check_resources passes or refuses each resource exactly as check_resource does, cheaply."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.errors import BadRequest
from cds_service.hooks.limits import RequestLimits, check_resource, check_resources
from fhir_mappings import FhirItem

LIMITS = RequestLimits(max_contained=2, max_reference_ranges=2)


def _outcome(check: Any) -> tuple[str, str | None] | None:
    try:
        check()
    except BadRequest as error:
        return error.message, error.path
    return None


_lists = st.integers(0, 4).map(lambda length: [{}] * length)
_values = st.one_of(st.just("absent"), st.none(), _lists, st.just({}), st.just("x"), st.just(3))


@st.composite
def _resources(draw: st.DrawFn, depth: int = 2) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Observation"}
    for key in ("contained", "referenceRange"):
        value = draw(_values)
        if value != "absent":
            resource[key] = value
    if depth and draw(st.booleans()):
        inner = [draw(_resources(depth - 1)) for _ in range(draw(st.integers(0, 3)))]
        resource["contained"] = [
            MappingProxyType(resource) if draw(st.booleans()) else resource for resource in inner
        ]
    return resource


@pytest.mark.slow  # hypothesis
@settings(max_examples=500, deadline=None)
@given(resources=st.lists(_resources(), max_size=5))
def test_resources_are_refused_as_one_by_one(resources: list[dict[str, Any]]) -> None:
    items = [FhirItem(f"p.entry[{index}].resource", r) for index, r in enumerate(resources)]

    def one_by_one() -> None:
        for item in items:
            check_resource(item.resource, item.path, LIMITS)

    assert _outcome(lambda: check_resources(items, LIMITS)) == _outcome(one_by_one)
