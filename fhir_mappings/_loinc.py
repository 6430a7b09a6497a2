"""Map LOINC result codes to liver analytes, from the ConceptMap in `data/` (clinical reference §3).

`data/liver-loinc-conceptmap.json` is a FHIR R4 ConceptMap from http://loinc.org to the project's
analyte CodeSystem (`data/liver-analyte-codesystem.json`); each target comment cites the code's
source. Only codes verified in a public source (V) are mapped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources

from fhir_mappings.values import Analyte

LOINC_SYSTEMS: frozenset[str] = frozenset(
    {
        "http://loinc.org",  # FHIR R4 §4.3 (terminologies-systems)
        "urn:oid:2.16.840.1.113883.6.1",  # LOINC's HL7 OID, still sent by some systems
    }
)


def analyte_for_loinc(code: str) -> Analyte | None:
    """Return the analyte a LOINC result code measures, or None when it is not mapped."""
    return _loinc_map().get(code)


def loinc_codes(analytes: Iterable[Analyte] | None = None) -> tuple[str, ...]:
    """Return the mapped LOINC codes of `analytes` (all analytes when None), in map order."""
    wanted = set(Analyte) if analytes is None else set(analytes)
    return tuple(code for code, analyte in _loinc_map().items() if analyte in wanted)


@cache
def _loinc_map() -> dict[str, Analyte]:
    """Load the ConceptMap once and return LOINC code -> analyte, in file order."""
    text = resources.files("fhir_mappings").joinpath("data/liver-loinc-conceptmap.json")
    concept_map = json.loads(text.read_text(encoding="utf-8"))
    mapping: dict[str, Analyte] = {}
    for group in concept_map["group"]:  # tests check source http://loinc.org, target analytes
        for element in group["element"]:
            (target,) = element["target"]  # exactly one analyte per LOINC code
            mapping[element["code"]] = Analyte(target["code"])
    return mapping
