"""Liver Conditions (REFERENCE.md §5, policies 9 and 10): listed codes, status, recorded time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from fhir_mappings.values import Coding, LiverCondition, LiverConditionKind, ResourceRef
from tests.fhir_builders import DROP, ICD_10_CM, SNOMED, condition, record_of

DISEASE = LiverConditionKind.ACTIVE_LIVER_DISEASE
SYMPTOM = LiverConditionKind.LIVER_INJURY_SYMPTOM
CODE_LISTS: dict[str, Any] = json.loads(
    resources.files("fhir_mappings")
    .joinpath("data/liver-condition-codes.json")
    .read_text(encoding="utf-8")
)
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def _kind(resource: dict[str, Any]) -> LiverConditionKind | None:
    record = record_of(resource)
    assert record.skipped == ()
    return record.conditions[0].kind if record.conditions else None


@pytest.mark.parametrize(
    ("system", "code", "kind"),
    [
        pytest.param(
            entry["system"], entry["code"], LiverConditionKind(entry["kind"]), id=entry["code"]
        )
        for entry in CODE_LISTS["codes"]
    ],
)
def test_every_listed_code_is_recognised(system: str, code: str, kind: LiverConditionKind) -> None:
    assert _kind(condition(code, system)) is kind


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        pytest.param("K70.30", DISEASE, id="K70-alcoholic-cirrhosis"),
        pytest.param("K71.6", DISEASE, id="K71-toxic-liver-disease"),
        pytest.param("K7460", DISEASE, id="K74.60-without-dot"),
        pytest.param("k76.0", DISEASE, id="lower-case"),
        pytest.param("K77", DISEASE, id="K77-category"),
        pytest.param("B15.9", DISEASE, id="B15-hepatitis-A"),
        pytest.param("B18.2", DISEASE, id="B18-chronic-hepatitis-C"),
        pytest.param("B19.10", DISEASE, id="B19-viral-hepatitis"),
        pytest.param("R53.83", SYMPTOM, id="R53.83-other-fatigue"),
        pytest.param("R5383", SYMPTOM, id="R53.83-without-dot"),
        pytest.param("R50.9", SYMPTOM, id="R50.9-fever"),
    ],
)
def test_icd_10_cm_codes_match_without_dot_and_by_block_prefix(
    code: str, kind: LiverConditionKind
) -> None:
    assert _kind(condition(code, ICD_10_CM)) is kind


@pytest.mark.parametrize(
    ("system", "code"),
    [
        *(
            pytest.param(entry["system"], entry["code"], id=f"not-listed-{entry['code']}")
            for entry in CODE_LISTS["not_listed"]
        ),
        pytest.param(ICD_10_CM, "K80.20", id="gallstones-outside-block"),
        pytest.param(ICD_10_CM, "K69", id="before-block"),
        pytest.param(ICD_10_CM, "B20", id="HIV-after-block"),
        pytest.param(ICD_10_CM, "R11.10", id="U-vomiting"),
        pytest.param(SNOMED, "K70.30", id="ICD-code-with-SNOMED-system"),
        pytest.param(ICD_10_CM, "235856003", id="SNOMED-code-with-ICD-system"),
        pytest.param("http://hl7.org/fhir/sid/icd-10", "K70.3", id="WHO-ICD-10-system"),
        pytest.param(SNOMED, "44054006", id="diabetes"),
    ],
)
def test_unlisted_codes_are_not_matched(system: str, code: str) -> None:
    assert _kind(condition(code, system)) is None


def test_u_codes_and_inactive_concepts_are_kept_out_of_the_lists() -> None:
    listed = {(entry["system"], entry["code"]) for entry in CODE_LISTS["codes"]}

    assert {entry["status"] for entry in CODE_LISTS["codes"]} <= {"V", "S"}
    assert {entry["status"] for entry in CODE_LISTS["prefixes"]} <= {"V", "S"}
    assert all(entry["source"] for entry in CODE_LISTS["codes"] + CODE_LISTS["prefixes"])
    assert {(ICD_10_CM, c) for c in ("R17", "R11.0", "R11.10", "R10.9")}.isdisjoint(listed)
    assert (SNOMED, "111370006") not in listed


def _status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


@pytest.mark.parametrize(
    ("overrides", "counts"),
    [
        pytest.param({}, True, id="active-confirmed"),
        pytest.param({"clinicalStatus": _status(CLINICAL, "recurrence")}, True, id="recurrence"),
        pytest.param({"clinicalStatus": _status(CLINICAL, "relapse")}, True, id="relapse"),
        pytest.param({"clinicalStatus": _status(CLINICAL, "inactive")}, False, id="inactive"),
        pytest.param({"clinicalStatus": _status(CLINICAL, "remission")}, False, id="remission"),
        pytest.param({"clinicalStatus": _status(CLINICAL, "resolved")}, False, id="resolved"),
        pytest.param(
            {"clinicalStatus": {"coding": [{"code": "resolved"}]}}, False, id="resolved-no-system"
        ),
        pytest.param({"clinicalStatus": DROP}, True, id="no-clinical-status-counts"),
        pytest.param({"clinicalStatus": {"text": "ongoing"}}, True, id="text-only-status-counts"),
        pytest.param(
            {"clinicalStatus": _status("http://local", "resolved")},
            True,
            id="resolved-in-other-system-is-unknown",
        ),
        pytest.param({"verificationStatus": DROP}, True, id="no-verification"),
        pytest.param(
            {"verificationStatus": _status(VERIFICATION, "unconfirmed")}, True, id="unconfirmed"
        ),
        pytest.param(
            {"verificationStatus": _status(VERIFICATION, "provisional")}, True, id="provisional"
        ),
        pytest.param({"verificationStatus": _status(VERIFICATION, "refuted")}, False, id="refuted"),
        pytest.param(
            {"verificationStatus": _status(VERIFICATION, "entered-in-error")},
            False,
            id="entered-in-error",
        ),
    ],
)
def test_condition_counts_only_while_active_and_not_refuted(
    overrides: dict[str, Any], counts: bool
) -> None:
    assert (_kind(condition("19943007", **overrides)) is not None) is counts


@pytest.mark.parametrize(
    ("overrides", "recorded"),
    [
        pytest.param({}, datetime(2026, 10, 20, tzinfo=UTC), id="recorded-date"),
        pytest.param(
            {"recordedDate": DROP, "onsetDateTime": "2026-10-18T10:00:00+02:00"},
            datetime(2026, 10, 18, 8, tzinfo=UTC),
            id="onset-date-time",
        ),
        pytest.param(
            {"recordedDate": DROP, "onsetPeriod": {"start": "2026-10-17"}},
            datetime(2026, 10, 17, tzinfo=UTC),
            id="onset-period-start",
        ),
        pytest.param(
            {"recordedDate": "2026", "onsetDateTime": "2026-10-18"},
            datetime(2026, 10, 18, tzinfo=UTC),
            id="year-only-recorded-falls-back-to-onset",
        ),
        pytest.param({"recordedDate": DROP}, None, id="none"),
        pytest.param(
            {"recordedDate": DROP, "onsetPeriod": {"end": "2026-10-17"}}, None, id="period-no-start"
        ),
    ],
)
def test_recorded_time(overrides: dict[str, Any], recorded: datetime | None) -> None:
    (found,) = record_of(condition("386661006", **overrides)).conditions

    assert found.recorded == recorded


def test_condition_value_keeps_coding_as_sent_and_its_source() -> None:
    resource = condition("K74.60", ICD_10_CM, id="c-7", meta={"versionId": "2"})
    resource["code"]["coding"][0]["display"] = "Unspecified cirrhosis of liver"

    assert record_of(resource).conditions == (
        LiverCondition(
            kind=DISEASE,
            coding=Coding(ICD_10_CM, "K74.60", "Unspecified cirrhosis of liver"),
            recorded=datetime(2026, 10, 20, tzinfo=UTC),
            source=ResourceRef("Condition", "c-7", "prefetch.p.entry[0].resource", "2"),
            name="Unspecified cirrhosis of liver",
        ),
    )


@pytest.mark.parametrize(
    ("code", "name"),
    [
        pytest.param(
            {
                "coding": [{"system": SNOMED, "code": "18165001", "display": "Icterus"}],
                "text": "Yellow skin",
            },
            "Yellow skin",
            id="text-first",
        ),
        pytest.param(
            {"coding": [{"system": SNOMED, "code": "18165001", "display": "Icterus"}]},
            "Icterus",
            id="coding-display",
        ),
        pytest.param(
            {"coding": [{"system": SNOMED, "code": "18165001"}]}, "Jaundice", id="list-display"
        ),
        pytest.param(
            {"coding": [{"system": ICD_10_CM, "code": "B18.2"}]},
            "Viral hepatitis (ICD-10-CM block B15-B19)",
            id="block-display",
        ),
    ],
)
def test_condition_name_for_the_card(code: dict[str, Any], name: str) -> None:
    (found,) = record_of(condition("x", code=code)).conditions

    assert found.name == name


def test_active_liver_disease_wins_when_codings_fall_in_both_groups() -> None:
    code = {
        "coding": [
            {"system": SNOMED, "code": "84229001"},
            {"system": ICD_10_CM, "code": "K76.0"},
        ]
    }

    (found,) = record_of(condition("x", code=code)).conditions

    assert (found.kind, found.coding.code) == (DISEASE, "K76.0")


def test_symptom_found_after_an_unlisted_coding() -> None:
    code = {
        "coding": [
            {"system": "http://local", "code": "N1"},
            {"system": SNOMED, "display": "Nausea"},
            {"system": SNOMED, "code": "422587007"},
        ]
    }

    (found,) = record_of(condition("x", code=code)).conditions

    assert (found.kind, found.coding.code) == (SYMPTOM, "422587007")
