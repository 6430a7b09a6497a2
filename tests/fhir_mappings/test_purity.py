"""The package is pure domain code: importing and using it never loads Flask or HTTP clients."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fhir_mappings

SCRIPT = """
import sys
import fhir_mappings
from fhir_mappings import read_patient_record, read_resources

observation = {
    "resourceType": "Observation", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},
    "effectiveDateTime": "2026-11-01", "valueQuantity": {"value": 50, "unit": "U/L"},
}
record = read_patient_record(read_resources(observation, "prefetch.labs"))
assert len(record.lab_results) == 1, record
loaded = sorted(name for name in ("flask", "requests", "cds_service") if name in sys.modules)
print(",".join(loaded))
"""


def test_package_never_imports_flask_requests_or_the_service() -> None:
    root = Path(fhir_mappings.__file__).resolve().parents[1]

    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=root, check=True
    )

    assert completed.stdout.strip() == ""


def test_public_surface_is_small_and_sorted() -> None:
    assert fhir_mappings.__all__ == sorted(fhir_mappings.__all__)
    assert all(hasattr(fhir_mappings, name) for name in fhir_mappings.__all__)
