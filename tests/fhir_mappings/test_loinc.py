"""LOINC -> analyte ConceptMap (REFERENCE.md §3): FHIR-valid data, V codes only, with sources."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from fhir.resources.R4B.codesystem import CodeSystem
from fhir.resources.R4B.conceptmap import ConceptMap

from fhir_mappings import analyte_for_loinc, loinc_codes
from fhir_mappings.values import Analyte

# Every code marked V in REFERENCE.md §3, by analyte.
VERIFIED = {
    Analyte.ALT: ("1742-6", "1743-4", "1744-2", "76625-3"),
    Analyte.AST: ("1920-8", "30239-8", "88112-8"),
    Analyte.TOTAL_BILIRUBIN: ("1975-2", "42719-5", "59828-4", "14631-6", "54363-7"),
    Analyte.DIRECT_BILIRUBIN: ("1968-7", "14629-0"),
    Analyte.ALP: ("6768-6", "1783-0"),
    Analyte.GGT: ("2324-2",),
    Analyte.INR: ("6301-6", "34714-6", "46418-0", "38875-1"),
}
UNVERIFIED = ("77144-4", "48134-1", "16324-6", "14409-7", "48136-6", "35194-0", "77137-8")
ORDER_PANELS = ("24325-3", "24323-8")


def _data(name: str) -> dict[str, Any]:
    text = resources.files("fhir_mappings").joinpath(f"data/{name}").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.mark.parametrize(
    ("code", "analyte"),
    [
        pytest.param(code, analyte, id=f"{analyte}-{code}")
        for analyte, codes in VERIFIED.items()
        for code in codes
    ],
)
def test_every_verified_code_maps_to_its_analyte(code: str, analyte: Analyte) -> None:
    assert analyte_for_loinc(code) is analyte


@pytest.mark.parametrize(
    "code",
    [
        *(pytest.param(code, id=f"unverified-{code}") for code in UNVERIFIED),
        *(pytest.param(code, id=f"order-panel-{code}") for code in ORDER_PANELS),
        pytest.param("59827-6", id="secondary-source-arterial-bilirubin"),
        pytest.param("2345-7", id="glucose"),
    ],
)
def test_unverified_codes_and_order_panels_are_not_mapped(code: str) -> None:
    assert analyte_for_loinc(code) is None


def test_loinc_codes_lists_every_mapped_code_once() -> None:
    codes = loinc_codes()

    assert sorted(codes) == sorted(code for group in VERIFIED.values() for code in group)
    assert len(set(codes)) == len(codes)


def test_loinc_codes_of_chosen_analytes_keep_map_order() -> None:
    assert loinc_codes([Analyte.AST, Analyte.GGT]) == ("1920-8", "30239-8", "88112-8", "2324-2")
    assert loinc_codes([]) == ()


def test_prefetch_template_can_be_built_from_the_codes() -> None:
    query = ",".join(f"http://loinc.org|{code}" for code in loinc_codes([Analyte.ALT]))

    assert query.startswith("http://loinc.org|1742-6,http://loinc.org|1743-4,")


def test_concept_map_is_a_valid_fhir_concept_map_from_loinc_to_the_analyte_code_system() -> None:
    data = _data("liver-loinc-conceptmap.json")
    code_system = _data("liver-analyte-codesystem.json")

    ConceptMap.model_validate(data)
    (group,) = data["group"]
    assert group["source"] == "http://loinc.org"
    assert group["target"] == code_system["url"]
    for element in group["element"]:
        (target,) = element["target"]
        assert target["comment"].startswith("V (REFERENCE.md §3): ")
        assert target["equivalence"] == "wider"


def test_code_system_lists_each_analyte_with_its_canonical_unit() -> None:
    data = _data("liver-analyte-codesystem.json")

    CodeSystem.model_validate(data)
    units = {concept["code"]: concept["property"][0]["valueString"] for concept in data["concept"]}
    assert units == {analyte.value: analyte.canonical_unit for analyte in Analyte}
