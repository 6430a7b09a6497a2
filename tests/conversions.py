"""Express a canonical value in another unit: the inverse of `to_canonical`, for building data."""

from __future__ import annotations

from fhir_mappings import to_canonical
from fhir_mappings.values import Analyte


def from_canonical(analyte: Analyte, value: float, ucum_code: str) -> float:
    """Return a canonical `value` of `analyte` in the unit `ucum_code` (every factor is linear)."""
    one = to_canonical(analyte, 1.0, ucum_code)
    if one is None:
        raise ValueError(f"unit {ucum_code!r} is not supported for {analyte}")
    return value / one
