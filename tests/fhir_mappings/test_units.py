"""Unit conversion to the canonical unit (REFERENCE.md policy 5 and §4): listed units only."""

from __future__ import annotations

import pytest

from fhir_mappings import supported_units, to_canonical
from fhir_mappings.values import Analyte
from tests.conversions import from_canonical

ENZYMES = (Analyte.ALT, Analyte.AST, Analyte.ALP, Analyte.GGT)
BILIRUBINS = (Analyte.TOTAL_BILIRUBIN, Analyte.DIRECT_BILIRUBIN)


@pytest.mark.parametrize(
    ("analyte", "value", "code", "text", "expected"),
    [
        pytest.param(Analyte.ALT, 50, "U/L", None, 50, id="ALT-U/L"),
        pytest.param(Analyte.ALT, 50, "U/l", None, 50, id="ALT-U/l-code"),
        pytest.param(Analyte.AST, 50, "[IU]/L", None, 50, id="AST-[IU]/L"),
        pytest.param(Analyte.AST, 50, "IU/L", None, 50, id="AST-IU/L-synthea-code"),
        pytest.param(Analyte.ALT, 2, "ukat/L", None, 120, id="ALT-ukat/L-x60"),
        pytest.param(Analyte.GGT, 0.5, "ukat/l", None, 30, id="GGT-ukat/l-x60"),
        pytest.param(Analyte.ALP, 130, "mU/mL", None, 130, id="ALP-mU/mL"),
        pytest.param(Analyte.ALT, 50, None, "U/L", 50, id="text-U/L"),
        pytest.param(Analyte.ALT, 50, None, "u/l", 50, id="text-u/l"),
        pytest.param(Analyte.ALT, 50, None, "IU/l", 50, id="text-IU/l"),
        pytest.param(Analyte.ALT, 50, None, " [IU]/L ", 50, id="text-[IU]/L-padded"),
        pytest.param(Analyte.ALT, 2, None, "µkat/L", 120, id="text-micro-sign-kat"),
        pytest.param(Analyte.ALT, 2, None, "μkat/l", 120, id="text-greek-mu-kat"),
        pytest.param(Analyte.ALT, 2, None, "ukat/L", 120, id="text-ukat/L"),
        pytest.param(Analyte.ALT, 50, None, "mU/mL", 50, id="text-mU/mL"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, 1.5, "mg/dL", None, 1.5, id="TBIL-mg/dL"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, 34.2, "umol/L", None, 2.0, id="TBIL-umol/L-/17.1"),
        pytest.param(Analyte.DIRECT_BILIRUBIN, 5.13, "umol/l", None, 0.3, id="DBIL-umol/l"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, 8.6, None, "mg/dL", 8.6, id="text-mg/dL-us-core"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, 8.6, None, "mg/dl", 8.6, id="text-mg/dl"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, 17.1, None, "µmol/L", 1.0, id="text-µmol/L"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, 17.1, None, "umol/L", 1.0, id="text-umol/L"),
        pytest.param(Analyte.INR, 1.1, "{INR}", None, 1.1, id="INR-{INR}"),
        pytest.param(Analyte.INR, 1.1, "1", None, 1.1, id="INR-1"),
        pytest.param(Analyte.INR, 1.1, "{ratio}", None, 1.1, id="INR-{ratio}"),
        pytest.param(Analyte.INR, 1.1, None, "INR", 1.1, id="INR-text"),
        pytest.param(Analyte.INR, 1.1, None, None, 1.1, id="INR-no-unit"),
        pytest.param(Analyte.INR, 1.1, None, "  ", 1.1, id="INR-blank-text"),
    ],
)
def test_supported_units_convert_to_canonical(
    analyte: Analyte, value: float, code: str | None, text: str | None, expected: float
) -> None:
    assert to_canonical(analyte, value, code, text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("analyte", "code", "text"),
    [
        pytest.param(Analyte.ALT, "mmol/L", None, id="ALT-mmol/L"),
        pytest.param(Analyte.ALT, "IU/mL", None, id="ALT-IU/mL-not-per-litre"),
        pytest.param(Analyte.ALT, "u/l", None, id="ALT-lowercase-u-is-not-UCUM"),
        pytest.param(Analyte.ALT, "mg/dL", None, id="ALT-mass-unit"),
        pytest.param(Analyte.ALT, None, None, id="ALT-no-unit"),
        pytest.param(Analyte.ALT, None, "units", id="ALT-text-units"),
        pytest.param(Analyte.ALT, "%", "U/L", id="code-decides-over-text"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, "U/L", None, id="TBIL-enzyme-unit"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, "mmol/L", None, id="TBIL-mmol/L"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, None, None, id="TBIL-no-unit"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, None, "mg%", id="TBIL-mg%"),
        pytest.param(Analyte.INR, "s", None, id="INR-seconds-is-prothrombin-time"),
        pytest.param(Analyte.INR, None, "%", id="INR-percent"),
    ],
)
def test_unknown_units_are_not_guessed(
    analyte: Analyte, code: str | None, text: str | None
) -> None:
    assert to_canonical(analyte, 10, code, text) is None


@pytest.mark.parametrize(
    ("analyte", "units"),
    [
        pytest.param(
            analyte,
            ("U/L", "U/l", "[IU]/L", "[IU]/l", "IU/L", "ukat/L", "ukat/l", "mU/mL", "mU/ml"),
            id=str(analyte),
        )
        for analyte in ENZYMES
    ]
    + [
        pytest.param(analyte, ("mg/dL", "mg/dl", "umol/L", "umol/l"), id=str(analyte))
        for analyte in BILIRUBINS
    ]
    + [pytest.param(Analyte.INR, ("{INR}", "1", "{ratio}"), id="INR")],
)
def test_supported_units_list_canonical_first(analyte: Analyte, units: tuple[str, ...]) -> None:
    assert supported_units(analyte) == units
    assert supported_units(analyte)[0] == analyte.canonical_unit


@pytest.mark.parametrize(
    ("analyte", "unit", "canonical", "expected"),
    [
        pytest.param(Analyte.ALT, "ukat/L", 120, 2, id="120-U/L-is-2-ukat/L"),
        pytest.param(Analyte.TOTAL_BILIRUBIN, "umol/L", 2, 34.2, id="2-mg/dL-is-34.2-umol/L"),
        pytest.param(Analyte.INR, "1", 1.3, 1.3, id="INR"),
    ],
)
def test_from_canonical_expresses_a_value_in_a_unit(
    analyte: Analyte, unit: str, canonical: float, expected: float
) -> None:
    assert from_canonical(analyte, canonical, unit) == pytest.approx(expected)


def test_from_canonical_refuses_an_unsupported_unit() -> None:
    with pytest.raises(ValueError, match="'mmol/L' is not supported for ALT"):
        from_canonical(Analyte.ALT, 40, "mmol/L")
