"""Typed reading of raw FHIR R4 JSON (RFC 8259 objects as parsed by `json.loads`).

These helpers never raise: a missing or wrongly typed element reads as absent. Callers validate
the resources they act on with `fhir.resources` first, so "absent" only hides shapes that
validation already rejected or that the rules do not read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from fhir_mappings.decimals import as_double

JsonObject = Mapping[str, Any]


def object_at(obj: JsonObject, key: str) -> JsonObject | None:
    """Return the JSON object under `key`, or None."""
    value = obj.get(key)
    if type(value) is dict:  # what the decoders return; other mappings take the slow check
        return value
    return value if isinstance(value, Mapping) else None


def objects_at(obj: JsonObject, key: str) -> Iterator[JsonObject]:
    """Yield the JSON objects in the array under `key`, skipping anything else."""
    value = obj.get(key)
    if isinstance(value, list):
        yield from (item for item in value if type(item) is dict or isinstance(item, Mapping))


def str_at(obj: JsonObject, key: str) -> str | None:
    """Return the non-blank string under `key`, or None."""
    value = obj.get(key)
    return value if isinstance(value, str) and value.strip() else None


def codings(concept: JsonObject | None) -> Iterator[JsonObject]:
    """Yield the codings of a CodeableConcept (none for None)."""
    if concept is not None:
        yield from objects_at(concept, "coding")


def number_at(obj: JsonObject, key: str) -> float | None:
    """Return the finite number under `key`, or None.

    `fhir.resources` accepts a decimal written as a JSON string ("5.0") and even a boolean, so
    a string is read as a number only when it is one, and a boolean never is.
    """
    value = obj.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        number = value  # a `DecimalLiteral` keeps its literal
    elif isinstance(value, int):
        number = as_double(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None
