"""Map FHIR R4 JSON from a CDS Hooks 2.0 request to the typed values the mipomersen rules read.

Pure Python: no web framework, no HTTP. Input is parsed JSON (`json.loads`); output is the frozen
dataclasses of `fhir_mappings.values`. Codes and units are data with provenance (`data/`,
`_units.py`), following `docs/clinical-policy.md` policies 4, 5, 6, 9 and 10.
"""

from __future__ import annotations

from fhir_mappings._budget import WorkLimitExceeded, work_limits
from fhir_mappings._errors import FhirMappingError
from fhir_mappings._identity import (
    AttributedItems,
    Attribution,
    IdentityProblem,
    PatientIdentity,
    attribute_items,
)
from fhir_mappings._loinc import analyte_for_loinc, loinc_codes
from fhir_mappings._medications import identify_mipomersen_orders
from fhir_mappings._record import read_patient_record
from fhir_mappings._resources import FhirItem, read_resources
from fhir_mappings._text import shorten
from fhir_mappings._times import parse_fhir_datetime
from fhir_mappings._typed_labs import LabBundle, TypedLabs, read_lab_bundle
from fhir_mappings._units import supported_units, to_canonical
from fhir_mappings._validation import ValidationScope, preload_validators
from fhir_mappings.values import ReadingWindow

__all__ = [
    "AttributedItems",
    "Attribution",
    "FhirItem",
    "FhirMappingError",
    "IdentityProblem",
    "LabBundle",
    "PatientIdentity",
    "ReadingWindow",
    "TypedLabs",
    "ValidationScope",
    "WorkLimitExceeded",
    "analyte_for_loinc",
    "attribute_items",
    "identify_mipomersen_orders",
    "loinc_codes",
    "parse_fhir_datetime",
    "preload_validators",
    "read_lab_bundle",
    "read_patient_record",
    "read_resources",
    "shorten",
    "supported_units",
    "to_canonical",
    "work_limits",
]
