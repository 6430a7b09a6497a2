"""Convert liver test values to their analyte's canonical unit (policy 5 and §4).

Enzymes (ALT, AST, ALP, GGT) go to U/L, bilirubin to mg/dL; INR is unitless. Every accepted
spelling is listed below with its source; anything else is an unknown unit, never guessed.

- UCUM `U` is µmol/min and `kat` is mol/s, so 1 µkat/L = 60 U/L (docs.rs `uom` catalytic_activity;
  a public LOINC converter's factor 0.0167 for U/L -> µkat/L on 1920-8 and 76625-3).
- `[IU]/L` equals `U/L` for these enzymes by domain convention (REFERENCE §4, status S); a UCUM
  library will not convert it, so the equality is written here.
- Bilirubin 1 mg/dL = 17.1 µmol/L (molar mass 584.66 g/mol; REFERENCE §4).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fhir_mappings.values import Analyte

UCUM_SYSTEM = "http://unitsofmeasure.org"


@dataclass(frozen=True, slots=True)
class UnitFactor:
    """Multiply then divide a value by exact source numbers to reach the canonical unit."""

    multiply: float = 1.0
    divide: float = 1.0

    def to_canonical(self, value: float) -> float:
        """Return `value` in the canonical unit (the value itself, exact, when it is in it)."""
        if self.multiply == self.divide == 1.0:
            return value
        return value * self.multiply / self.divide


_SAME = UnitFactor()
_MICROKATAL = UnitFactor(multiply=60.0)  # 1 µkat/L = 60 U/L
_MICROMOLE_BILIRUBIN = UnitFactor(divide=17.1)  # 17.1 µmol/L = 1 mg/dL


@dataclass(frozen=True, slots=True)
class _UnitTable:
    """The units accepted for one group of analytes."""

    ucum: Mapping[str, UnitFactor]  # UCUM codes, compared exactly (UCUM is case-sensitive)
    text: Mapping[str, UnitFactor]  # `Quantity.unit` texts, compared after strip() and casefold()
    unitless: bool = False  # a value with neither unit code nor unit text is acceptable


def _texts(spellings: Mapping[str, UnitFactor]) -> Mapping[str, UnitFactor]:
    """Key unit texts by their case-folded form (which also folds µ, U+00B5, to μ, U+03BC)."""
    return MappingProxyType({text.casefold(): factor for text, factor in spellings.items()})


_ENZYME = _UnitTable(
    ucum=MappingProxyType(
        {
            "U/L": _SAME,
            "U/l": _SAME,  # UCUM accepts `l` and `L` for the litre
            "[IU]/L": _SAME,
            "[IU]/l": _SAME,
            "IU/L": _SAME,  # not valid UCUM, but sent as the code by Synthea (tests/data/fhir)
            "ukat/L": _MICROKATAL,
            "ukat/l": _MICROKATAL,
            "mU/mL": _SAME,  # 1 mU/mL = 1000 mU/L = 1 U/L
            "mU/ml": _SAME,
        }
    ),
    text=_texts(
        {
            "U/L": _SAME,  # also U/l, u/l: texts are compared case-insensitively
            "IU/L": _SAME,  # German mapper: local "IU/l" -> [IU]/L (REFERENCE §4)
            "[IU]/L": _SAME,
            "ukat/L": _MICROKATAL,
            "µkat/L": _MICROKATAL,  # micro sign; the Greek mu spelling folds to the same key
            "mU/mL": _SAME,
        }
    ),
)
_BILIRUBIN = _UnitTable(
    ucum=MappingProxyType(
        {
            "mg/dL": _SAME,
            "mg/dl": _SAME,
            "umol/L": _MICROMOLE_BILIRUBIN,
            "umol/l": _MICROMOLE_BILIRUBIN,
        }
    ),
    text=_texts(
        {
            "mg/dL": _SAME,
            "umol/L": _MICROMOLE_BILIRUBIN,
            "µmol/L": _MICROMOLE_BILIRUBIN,
        }
    ),
)
_RATIO = _UnitTable(
    ucum=MappingProxyType({"{INR}": _SAME, "1": _SAME, "{ratio}": _SAME}),
    text=_texts({"INR": _SAME, "{INR}": _SAME, "{ratio}": _SAME, "1": _SAME}),
    unitless=True,
)
_TABLES: Mapping[Analyte, _UnitTable] = MappingProxyType(
    {
        Analyte.ALT: _ENZYME,
        Analyte.AST: _ENZYME,
        Analyte.ALP: _ENZYME,
        Analyte.GGT: _ENZYME,
        Analyte.TOTAL_BILIRUBIN: _BILIRUBIN,
        Analyte.DIRECT_BILIRUBIN: _BILIRUBIN,
        Analyte.INR: _RATIO,
    }
)


def supported_units(analyte: Analyte) -> tuple[str, ...]:
    """Return every unit code accepted for `analyte`, its canonical unit first."""
    codes = _TABLES[analyte].ucum
    canonical = analyte.canonical_unit
    return (canonical, *(code for code in codes if code != canonical))


def to_canonical(
    analyte: Analyte, value: float, ucum_code: str | None = None, unit_text: str | None = None
) -> float | None:
    """Return `value` in the canonical unit of `analyte`, or None when the unit is not known.

    A UCUM code decides when given; otherwise the unit text does. Only INR accepts no unit.
    """
    factor = unit_factor(analyte, ucum_code, unit_text)
    return factor.to_canonical(value) if factor is not None else None


def unit_factor(
    analyte: Analyte, ucum_code: str | None = None, unit_text: str | None = None
) -> UnitFactor | None:
    """Return the conversion `to_canonical` applies for this unit, or None when it is unknown."""
    table = _TABLES[analyte]
    if ucum_code is not None:
        return table.ucum.get(ucum_code)
    if unit_text is not None and unit_text.strip():
        return table.text.get(unit_text.strip().casefold())
    return _SAME if table.unitless else None
