"""Liver-test Observations -> LabResult or UnusableResult (REFERENCE.md policies 4 and 5)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_mappings.values import (
    Analyte,
    Bound,
    LabResult,
    ResourceRef,
    UnusableReason,
    UnusableResult,
)
from tests.fhir_builders import DROP, LOINC, UCUM, observation, quantity, record_of

NOV_1 = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)


def _result(resource: dict[str, Any]) -> LabResult:
    record = record_of(resource)
    assert record.unusable_results == () and record.skipped == ()
    (result,) = record.lab_results
    return result


def _unusable(resource: dict[str, Any]) -> UnusableResult:
    record = record_of(resource)
    assert record.lab_results == () and record.skipped == ()
    (result,) = record.unusable_results
    return result


def test_usable_result_carries_everything_the_rules_and_cards_need() -> None:
    resource = observation(id="alt-7", meta={"versionId": "3"})

    assert _result(resource) == LabResult(
        analyte=Analyte.ALT,
        loinc="1742-6",
        value=50.0,
        bound=Bound.EXACT,
        effective=NOV_1,
        source=ResourceRef("Observation", "alt-7", "prefetch.p.entry[0].resource", "3"),
        reference_high=None,
        preliminary=False,
        reported="50 U/L",
        date_only=False,
    )


@pytest.mark.parametrize(
    ("loinc", "value_quantity", "value", "reported"),
    [
        pytest.param("1742-6", quantity(50, "U/L"), 50, "50 U/L", id="ALT-U/L"),
        pytest.param("1742-6", quantity(50, "[IU]/L"), 50, "50 [IU]/L", id="ALT-[IU]/L"),
        pytest.param("1920-8", quantity(163.4, "IU/L"), 163.4, "163.4 IU/L", id="AST-IU/L"),
        pytest.param("1742-6", quantity(3.9, "ukat/L"), 234, "3.9 ukat/L", id="ALT-ukat/L"),
        pytest.param(
            "1742-6", quantity(3.9, "ukat/L", unit="µkat/L"), 234, "3.9 µkat/L", id="ALT-µkat/L"
        ),
        pytest.param("6768-6", quantity(130, "mU/mL"), 130, "130 mU/mL", id="ALP-mU/mL"),
        pytest.param("2324-2", quantity(1, "ukat/L"), 60, "1 ukat/L", id="GGT-ukat/L"),
        pytest.param("1975-2", quantity(1.5, "mg/dL"), 1.5, "1.5 mg/dL", id="TBIL-mg/dL"),
        pytest.param("14631-6", quantity(34.2, "umol/L"), 2.0, "34.2 umol/L", id="TBIL-umol/L"),
        pytest.param(
            "1968-7", quantity(5.13, None, unit="µmol/L"), 0.3, "5.13 µmol/L", id="DBIL-text"
        ),
        pytest.param(
            "1975-2",
            {"value": 8.6, "unit": "mg/dL", "system": UCUM},
            8.6,
            "8.6 mg/dL",
            id="TBIL-text-with-UCUM-system-but-no-code",
        ),
        pytest.param("1742-6", quantity(50, None, unit="U/l"), 50, "50 U/l", id="ALT-text-U/l"),
        pytest.param(
            "1742-6",
            {"value": 50, "unit": "U/L", "system": "http://local", "code": "UPL"},
            50,
            "50 U/L",
            id="non-UCUM-code-read-by-its-text",
        ),
        pytest.param("6301-6", quantity(1.1, "{INR}"), 1.1, "1.1 {INR}", id="INR-{INR}"),
        pytest.param("34714-6", quantity(1.1, None), 1.1, "1.1", id="INR-no-unit"),
        pytest.param("6301-6", quantity(1.1, None, unit="INR"), 1.1, "1.1 INR", id="INR-text"),
        pytest.param("1742-6", quantity("50.0", "U/L"), 50, "50.0 U/L", id="decimal-as-string"),
    ],
)
def test_value_is_normalised_and_reported_as_sent(
    loinc: str, value_quantity: dict[str, Any], value: float, reported: str
) -> None:
    result = _result(observation(loinc=loinc, valueQuantity=value_quantity))

    assert result.value == pytest.approx(value)
    assert result.reported == reported


@pytest.mark.parametrize(
    ("loinc", "value_quantity", "named"),
    [
        pytest.param("1742-6", quantity(4, "mmol/L"), "unit 'mmol/L'", id="ALT-mmol/L"),
        pytest.param("1742-6", quantity(50, None), "no unit", id="ALT-no-unit"),
        pytest.param(
            "1742-6", quantity(50, None, unit="units"), "unit 'units'", id="ALT-text-units"
        ),
        pytest.param("1975-2", quantity(1, "g/L"), "unit 'g/L'", id="TBIL-g/L"),
        pytest.param(
            "1742-6",
            {"value": 50, "system": "http://local", "code": "UPL"},
            "unit code 'UPL' from system 'http://local'",
            id="non-UCUM-code-without-text",
        ),
        pytest.param(
            "6301-6",
            {"value": 1.1, "system": "http://local", "code": "X"},
            "unit code 'X' from system 'http://local'",
            id="INR-non-UCUM-code-is-not-no-unit",
        ),
        pytest.param("6301-6", quantity(12.5, "s"), "unit 's'", id="INR-seconds"),
    ],
)
def test_unknown_unit_is_unusable_and_named(
    loinc: str, value_quantity: dict[str, Any], named: str
) -> None:
    result = _unusable(observation(loinc=loinc, valueQuantity=value_quantity))

    assert result.reason is UnusableReason.UNKNOWN_UNIT
    assert result.detail.startswith(f"{named} is not a recognised unit for ")
    assert "accepted: " in result.detail
    assert result.effective == NOV_1


@pytest.mark.parametrize(
    ("comparator", "bound", "reported"),
    [
        pytest.param(None, Bound.EXACT, "5 U/L", id="none-exact"),
        pytest.param("<", Bound.AT_MOST, "<5 U/L", id="less"),
        pytest.param("<=", Bound.AT_MOST, "<=5 U/L", id="less-or-equal"),
        pytest.param(">", Bound.AT_LEAST, ">5 U/L", id="greater"),
        pytest.param(">=", Bound.AT_LEAST, ">=5 U/L", id="greater-or-equal"),
    ],
)
def test_comparator_gives_bound(comparator: str | None, bound: Bound, reported: str) -> None:
    value_quantity = quantity(5, "U/L")
    if comparator is not None:
        value_quantity["comparator"] = comparator

    result = _result(observation(valueQuantity=value_quantity))

    assert (result.bound, result.reported) == (bound, reported)


@pytest.mark.parametrize(
    ("overrides", "reason", "detail"),
    [
        pytest.param(
            {"status": "entered-in-error"},
            UnusableReason.RETRACTED,
            "status 'entered-in-error': the result was withdrawn",
            id="entered-in-error",
        ),
        pytest.param(
            {"status": "cancelled", "valueQuantity": DROP},
            UnusableReason.RETRACTED,
            "status 'cancelled': the result was withdrawn",
            id="cancelled",
        ),
        pytest.param(
            {"status": "registered"},
            UnusableReason.STATUS,
            "status 'registered' is not a reported result",
            id="registered",
        ),
        pytest.param(
            {"status": "unknown"},
            UnusableReason.STATUS,
            "status 'unknown' is not a reported result",
            id="unknown",
        ),
        pytest.param(
            {"status": "bogus"},
            UnusableReason.STATUS,
            "status 'bogus' is not a reported result",
            id="other-status-not-checked-by-fhir-resources",
        ),
        pytest.param(
            {"valueQuantity": DROP, "dataAbsentReason": {"text": "Specimen haemolysed"}},
            UnusableReason.DATA_ABSENT,
            "no value: Specimen haemolysed",
            id="data-absent-text",
        ),
        pytest.param(
            {
                "valueQuantity": DROP,
                "dataAbsentReason": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                            "code": "not-performed",
                            "display": "Not Performed",
                        }
                    ]
                },
            },
            UnusableReason.DATA_ABSENT,
            "no value: Not Performed",
            id="data-absent-coding-display",
        ),
        pytest.param(
            {"valueQuantity": DROP, "dataAbsentReason": {"coding": [{"code": "error"}]}},
            UnusableReason.DATA_ABSENT,
            "no value: error",
            id="data-absent-coding-code",
        ),
        pytest.param(
            {"valueQuantity": DROP, "dataAbsentReason": {"coding": [{"system": "urn:x"}]}},
            UnusableReason.DATA_ABSENT,
            "no value: data absent",
            id="data-absent-empty-coding",
        ),
        pytest.param(
            {"valueQuantity": DROP},
            UnusableReason.NO_VALUE,
            "no value",
            id="no-value-at-all",
        ),
        pytest.param(
            {"valueQuantity": DROP, "valueString": "<5 U/L"},
            UnusableReason.NO_VALUE,
            "the value is a valueString, not a valueQuantity",
            id="value-string",
        ),
        pytest.param(
            {"valueQuantity": DROP, "valueCodeableConcept": {"text": "high"}},
            UnusableReason.NO_VALUE,
            "the value is a valueCodeableConcept, not a valueQuantity",
            id="value-codeable-concept",
        ),
        pytest.param(
            {"valueQuantity": {"unit": "U/L", "system": UCUM, "code": "U/L"}},
            UnusableReason.NO_VALUE,
            "valueQuantity has no numeric value",
            id="quantity-without-value",
        ),
        pytest.param(
            {"valueQuantity": quantity(5, comparator="~")},
            UnusableReason.INVALID,
            "comparator '~' is not one of <, <=, >=, >",
            id="comparator-outside-binding",
        ),
        pytest.param(
            {"effectiveDateTime": DROP},
            UnusableReason.NO_DATE,
            "no effective time and no issued time",
            id="no-date",
        ),
        pytest.param(
            {"effectiveDateTime": "2017"},
            UnusableReason.NO_DATE,
            "effectiveDateTime '2017': date has less than day precision",
            id="year-only",
        ),
        pytest.param(
            {"effectiveDateTime": "2017-06", "issued": "2017-06-24T13:09:09Z"},
            UnusableReason.NO_DATE,
            "effectiveDateTime '2017-06': date has less than day precision",
            id="year-month-not-replaced-by-issued",
        ),
    ],
)
def test_each_unusable_case_has_a_reason_and_detail(
    overrides: dict[str, Any], reason: UnusableReason, detail: str
) -> None:
    result = _unusable(observation(**overrides))

    assert (result.analyte, result.loinc, result.reason) == (Analyte.ALT, "1742-6", reason)
    assert result.detail == detail
    assert result.source.path == "prefetch.p.entry[0].resource"
    assert result.is_retracted is (reason is UnusableReason.RETRACTED)


def test_unusable_result_keeps_its_date_when_it_has_one() -> None:
    assert _unusable(observation(status="registered")).effective == NOV_1
    assert _unusable(observation(effectiveDateTime=DROP)).effective is None


@pytest.mark.parametrize(
    ("status", "preliminary"),
    [
        pytest.param("final", False, id="final"),
        pytest.param("amended", False, id="amended"),
        pytest.param("corrected", False, id="corrected"),
        pytest.param("preliminary", True, id="preliminary"),
    ],
)
def test_reportable_statuses_are_usable(status: str, preliminary: bool) -> None:
    assert _result(observation(status=status)).preliminary is preliminary


NORMAL = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/referencerange-meaning",
            "code": "normal",
        }
    ]
}
TREATMENT = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/referencerange-meaning",
            "code": "treatment",
        }
    ]
}


@pytest.mark.parametrize(
    ("value_quantity", "ranges", "high"),
    [
        pytest.param(quantity(), [{"high": quantity(40, "U/L")}], 40, id="same-unit"),
        pytest.param(quantity(), [{"high": quantity(0.5, "ukat/L")}], 30, id="high-in-ukat/L"),
        pytest.param(
            quantity(2, "ukat/L"), [{"high": {"value": 0.67}}], 40.2, id="bare-high-in-value-unit"
        ),
        pytest.param(
            quantity(2, None, unit="µkat/L"),
            [{"high": {"value": 0.5}}],
            30,
            id="bare-high-in-value-text-unit",
        ),
        pytest.param(
            quantity(), [{"high": quantity(40, None, unit="IU/L")}], 40, id="high-text-unit"
        ),
        pytest.param(quantity(), [{"high": quantity(40, "mmol/L")}], None, id="unknown-unit"),
        pytest.param(
            quantity(),
            [{"high": {"value": 40, "system": "http://local", "code": "UPL"}}],
            None,
            id="non-UCUM-high-without-text",
        ),
        pytest.param(quantity(), [{"high": quantity(0, "U/L")}], None, id="zero"),
        pytest.param(quantity(), [{"high": quantity(-4, "U/L")}], None, id="negative"),
        pytest.param(quantity(), [{"low": quantity(7, "U/L")}], None, id="low-only"),
        pytest.param(quantity(), [], None, id="no-range"),
        pytest.param(
            quantity(),
            [{"low": quantity(7, "U/L")}, {"high": quantity(35, "U/L")}],
            35,
            id="first-range-with-high",
        ),
        pytest.param(
            quantity(),
            [{"high": {"unit": "U/L"}}, {"high": quantity(35, "U/L")}],
            35,
            id="high-without-value-skipped",
        ),
        pytest.param(
            quantity(), [{"type": NORMAL, "high": quantity(45, "U/L")}], 45, id="typed-normal"
        ),
        pytest.param(
            quantity(),
            [{"type": TREATMENT, "high": quantity(20, "U/L")}, {"high": quantity(45, "U/L")}],
            45,
            id="treatment-range-skipped",
        ),
        pytest.param(
            quantity(),
            [{"type": {"text": "Normal"}, "high": quantity(20, "U/L")}],
            None,
            id="type-without-coding-skipped",
        ),
        pytest.param(
            quantity(1.5, "mg/dL"),
            [{"high": quantity(20.5, "umol/L")}],
            20.5 / 17.1,
            id="bilirubin-high-in-umol/L",
        ),
    ],
)
def test_reference_high_is_the_normal_upper_limit_in_canonical_unit(
    value_quantity: dict[str, Any], ranges: list[dict[str, Any]], high: float | None
) -> None:
    loinc = "1975-2" if value_quantity.get("code") == "mg/dL" else "1742-6"
    resource = observation(loinc=loinc, valueQuantity=value_quantity, referenceRange=ranges)

    assert _result(resource).reference_high == (None if high is None else pytest.approx(high))


@pytest.mark.parametrize(
    ("overrides", "effective", "date_only"),
    [
        pytest.param(
            {"effectiveDateTime": "2005-07-07"}, datetime(2005, 7, 7, tzinfo=UTC), True, id="date"
        ),
        pytest.param(
            {"effectiveDateTime": "2026-11-01T09:30:00+01:00"}, NOV_1, False, id="offset-to-utc"
        ),
        pytest.param(
            {
                "effectiveDateTime": DROP,
                "effectivePeriod": {"start": "2026-11-01T08:30:00Z", "end": "2026-11-02"},
            },
            NOV_1,
            False,
            id="period-start",
        ),
        pytest.param(
            {"effectiveDateTime": DROP, "effectivePeriod": {"end": "2026-11-01"}},
            datetime(2026, 11, 1, tzinfo=UTC),
            True,
            id="period-end-when-no-start",
        ),
        pytest.param(
            {"effectiveDateTime": DROP, "effectiveInstant": "2026-11-01T08:30:00.000Z"},
            NOV_1,
            False,
            id="instant",
        ),
        pytest.param(
            {"effectiveDateTime": DROP, "issued": "2026-11-01T03:30:00-05:00"},
            NOV_1,
            False,
            id="issued-when-no-effective",
        ),
        pytest.param(
            {
                "effectiveDateTime": DROP,
                "effectivePeriod": {},
                "issued": "2026-11-01T08:30:00Z",
            },
            NOV_1,
            False,
            id="issued-when-period-is-empty",
        ),
        pytest.param(
            {
                "effectiveDateTime": DROP,
                "effectiveTiming": {"event": ["2026-10-01"]},
                "issued": "2026-11-01T08:30:00Z",
            },
            NOV_1,
            False,
            id="issued-when-effective-is-a-timing",
        ),
        pytest.param(
            {"effectiveDateTime": "2026-11-01T08:30:00Z", "issued": "2026-11-03T00:00:00Z"},
            NOV_1,
            False,
            id="effective-before-issued",
        ),
    ],
)
def test_effective_time(overrides: dict[str, Any], effective: datetime, date_only: bool) -> None:
    result = _result(observation(**overrides))

    assert (result.effective, result.date_only) == (effective, date_only)


@pytest.mark.parametrize(
    "code",
    [
        pytest.param({"coding": [{"system": LOINC, "code": "2345-7"}]}, id="glucose"),
        pytest.param({"coding": [{"system": "http://local", "code": "1742-6"}]}, id="not-LOINC"),
        pytest.param({"coding": [{"system": LOINC, "code": "24325-3"}]}, id="hepatic-panel"),
        pytest.param({"coding": [{"system": LOINC}]}, id="no-code"),
        pytest.param({"text": "ALT"}, id="text-only"),
    ],
)
def test_other_observations_are_ignored(code: dict[str, Any]) -> None:
    record = record_of(observation(code=code))

    assert record.lab_results == () and record.unusable_results == () and record.skipped == ()


@pytest.mark.parametrize(
    "codings",
    [
        pytest.param(
            [{"system": "urn:oid:2.16.840.1.113883.6.1", "code": "1742-6"}], id="LOINC-OID"
        ),
        pytest.param(
            [
                {"system": "http://acme.org/labs", "code": "ALT"},
                {"system": LOINC, "code": "1742-6"},
            ],
            id="LOINC-after-local-code",
        ),
    ],
)
def test_liver_test_found_by_any_loinc_coding(codings: list[dict[str, Any]]) -> None:
    assert _result(observation(code={"coding": codings})).loinc == "1742-6"


def test_results_keep_the_order_of_the_request() -> None:
    record = record_of(
        observation(id="a"),
        observation("AST", id="b"),
        observation(id="c", status="registered"),
        observation("TBIL", id="d", valueQuantity=quantity(1, "mg/dL")),
    )

    assert [result.source.id for result in record.lab_results] == ["a", "b", "d"]
    assert [result.source.id for result in record.unusable_results] == ["c"]


def test_each_code_element_is_read_as_its_own_json_when_a_record_repeats_codes() -> None:
    alt = {"coding": [{"system": LOINC, "code": "1742-6", "userSelected": True}]}
    look_alikes = [
        {"coding": [{"system": LOINC, "code": "1742-6", "userSelected": 1}]},  # == alt
        {"coding": [{"system": LOINC, "code": 1742}]},
        {"coding": [{"system": [LOINC], "code": "1742-6"}]},
        {"coding": [{"system": LOINC, "code": "1920-8"}]},
    ]
    record = record_of(
        *(observation(id=f"o{index}", code=code) for index, code in enumerate([alt, *look_alikes]))
    )

    read = {result.source.id: result.loinc for result in record.lab_results}
    read |= {result.source.id: result.loinc for result in record.unusable_results}
    assert read == {"o0": "1742-6", "o1": "1742-6", "o4": "1920-8"}
