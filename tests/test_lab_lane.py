"""The lab lane answers every request exactly as the general path does (issue 13).

`decode_hook_body` decodes the lab Bundle into typed structs and reads it there; whatever it is
unsure of is decoded again as dicts and answered the general way. So for any request the two
must give the same answer: the same cards, the same evaluation (every result, number for
number), the same data sources, or the same error. Checked on the examples, on table rows
that must take or leave the lane, and on requests whose lab Bundle holds generated and mutated
Observations (those of the one-walk reader's differential test), with and without the HTTP
limits.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.workload import order_sign_request
from cds_service.errors import HttpError
from cds_service.hooks.discovery import find_service
from cds_service.hooks.evaluation import answer_hook
from cds_service.hooks.lab_lane import LaneBody, decode_hook_body
from cds_service.hooks.limits import HTTP_LIMITS, bounded_work
from cds_service.hooks.request import decode_json_body
from cds_service.settings import load_settings
from fhir_mappings.decimals import DecimalLiteral
from tests.fhir_builders import DROP
from tests.fhir_mappings.test_ordinary_observations import mutated_observation

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = load_settings({"MIPOMERSEN_CDS_AUTH": "off"})
PATIENT = "bench-patient"
REQUESTS = 300  # generated requests per run
TALLY: Counter[str] = Counter()


def _encoded(body: Any) -> bytes:
    """JSON of `body`, a `DecimalLiteral` written as its literal (as an EHR sent it)."""

    def mark(value: Any) -> Any:
        if isinstance(value, DecimalLiteral):
            return f"\x00{value.literal}\x00"
        if isinstance(value, dict):
            return {key: mark(item) for key, item in value.items()}
        if isinstance(value, list):
            return [mark(item) for item in value]
        return value

    text = json.dumps(mark(body))
    return re.sub(r'"\\u0000([^"]*)\\u0000"', r"\1", text).encode()


def _answer(raw: bytes, decode: Any, *, limits: bool) -> tuple[Any, ...]:
    """Everything a caller learns from a request: the answer, or the error."""
    ids = count()
    service_id = "mipomersen-" + (_hook(raw) or "order-sign")
    service = find_service(service_id) or find_service("mipomersen-order-sign")
    assert service is not None
    try:
        if limits:
            with bounded_work(HTTP_LIMITS):
                answer = answer_hook(
                    decode(raw), service=service, settings=SETTINGS, now=NOW,
                    new_id=lambda: f"id-{next(ids)}", limits=HTTP_LIMITS,
                )  # fmt: skip
        else:
            answer = answer_hook(
                decode(raw), service=service, settings=SETTINGS, now=NOW,
                new_id=lambda: f"id-{next(ids)}",
            )  # fmt: skip
    except HttpError as error:
        return ("error", type(error).__name__, str(error), error.path)
    return ("answer", answer.body, answer.evaluation, answer.data_sources)


def _hook(raw: bytes) -> str | None:
    try:
        hook = json.loads(raw).get("hook")
    except (ValueError, AttributeError):
        return None
    return hook if isinstance(hook, str) else None


def _same_answer(raw: bytes, *, limits: bool = False) -> bool:
    """Assert both paths answer `raw` alike; return True when the lane answered it itself."""
    declined: list[bool] = []
    original = LaneBody.as_dicts

    def spied(self: LaneBody) -> Any:
        declined.append(True)
        return original(self)

    LaneBody.as_dicts = spied  # type: ignore[method-assign]
    try:
        lane = _answer(raw, decode_hook_body, limits=limits)
    finally:
        LaneBody.as_dicts = original  # type: ignore[method-assign]
    general = _answer(raw, decode_json_body, limits=limits)
    assert lane == general
    try:
        taken = isinstance(decode_hook_body(raw), LaneBody) and not declined
    except HttpError:
        taken = False
    TALLY["lane" if taken else "general"] += 1
    return taken


def _request(observations: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """The benchmark's order-sign request with `observations` as its lab Bundle."""
    body = order_sign_request(0)
    body["prefetch"]["liverLabs"]["entry"] = [
        {"fullUrl": f"urn:uuid:lab-{index}", "resource": resource}
        for index, resource in enumerate(observations)
    ]
    body["prefetch"]["liverLabs"]["total"] = len(observations)
    body.update(changes)
    return body


def _history(count_: int = 12) -> list[dict[str, Any]]:
    history = order_sign_request(count_)["prefetch"]["liverLabs"]["entry"]
    return [entry["resource"] for entry in history]


def _with(resources: list[dict[str, Any]], index: int, **changes: Any) -> list[dict[str, Any]]:
    """A copy of `resources` with the `index`-th changed (a key given as DROP is removed)."""
    changed = copy.deepcopy(resources)
    changed[index].update(changes)
    changed[index] = {key: value for key, value in changed[index].items() if value is not DROP}
    return changed


def _paged(body: dict[str, Any]) -> dict[str, Any]:
    body["prefetch"]["liverLabs"]["link"] = [
        {"relation": "next", "url": "https://ehr.example.org/fhir/Observation?page=2"}
    ]
    return body


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
@pytest.mark.parametrize("limits", [False, True], ids=["no-limits", "http-limits"])
def test_every_example_is_answered_alike(path: Path, limits: bool) -> None:
    _same_answer(path.read_bytes(), limits=limits)


HISTORY = _history()
BILIRUBIN = next(i for i, r in enumerate(HISTORY) if r["code"]["coding"][0]["code"] == "1975-2")
# One row per scenario, as a table reads: the formatter would spread each over many lines.
# fmt: off
ROWS: list[tuple[str, dict[str, Any], bool]] = [
    ("a normal history", _request(HISTORY), True),
    ("an empty lab Bundle", _request([]), True),
    ("a non-liver Observation beside them", _request([*HISTORY, {
        "resourceType": "Observation", "id": "ldl", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "13457-7"}]},
        "subject": {"reference": f"Patient/{PATIENT}"}, "valueQuantity": {"value": 90},
    }]), True),
    ("an elevated ALT", _request(_with(HISTORY, 0, valueQuantity={
        "value": 236, "unit": "U/L", "system": "http://unitsofmeasure.org", "code": "U/L"
    })), True),
    ("an old bilirubin with an invalid id", _request(_with(HISTORY, BILIRUBIN, id="a b")), False),
    ("a null note", _request(_with(HISTORY, 3, note=None)), False),
    ("a subject as an absolute URL", _request(_with(HISTORY, 2, subject={
        "reference": f"https://ehr.example.org/fhir/Patient/{PATIENT}"
    })), False),
    ("another patient's result", _request(_with(HISTORY, 2, subject={
        "reference": "Patient/someone-else"
    })), False),
    ("a result with no subject", _request(_with(HISTORY, 1, subject=DROP)), False),
    ("an effectivePeriod", _request(_with(HISTORY, 0, effectivePeriod={
        "start": "2026-11-20"
    })), False),
    ("a paged lab Bundle", _paged(_request(HISTORY)), False),
    ("a number past the largest double", _request(_with(HISTORY, 0, valueQuantity={
        "value": DecimalLiteral("1e400")
    })), False),
    # The shared elements (code, subject, reference range, meta) are kept as bytes and decoded
    # once per distinct value: what they hold is checked all the same.
    # A number no double holds where no rule reads it: read past by both paths alike
    ("a number past the largest double in a note", _request(_with(HISTORY, 3, note=[
        {"text": "n", "extension": [{"url": "http://x", "valueDecimal": DecimalLiteral("1e999")}]}
    ])), True),
    ("an integer of 400 digits in a note", _request(_with(HISTORY, 3, note=[
        {"text": "n", "extension": [{"url": "http://x", "valueInteger": 10**400}]}
    ])), False),
    ("a reference range past the largest double", _request(_with(HISTORY, 0, referenceRange=[
        {"high": {"value": DecimalLiteral("1e400"), "unit": "U/L"}}
    ])), False),
    ("a reference range given as an integer and as a decimal", _request(
        _with(_with(HISTORY, 0, referenceRange=[{"high": {"value": 40}}]), 5,
              referenceRange=[{"high": {"value": DecimalLiteral("40.0")}}])
    ), True),
    ("a null meta", _request(_with(HISTORY, 4, meta=None)), False),
    ("a meta with an unknown key", _request(_with(HISTORY, 4, meta={"versionId": "1", "x": 1})),
     False),
    ("an id holding a line break", _request(_with(HISTORY, 6, id="obs\n6")), False),
    # ids, version ids and instants are checked together, in one pass each
    ("a version id that is not an id", _request(_with(HISTORY, 6, meta={"versionId": "a b"})),
     False),
    ("a lastUpdated on 30 February", _request(_with(HISTORY, 6, meta={
        "lastUpdated": "2026-02-30T12:00:00Z"
    })), False),
    ("an issued holding a line break", _request(_with(HISTORY, 6, issued="2026-01-05T12:00:00Z\n")),
     False),
    ("an issued on 31 April", _request(_with(HISTORY, 6, issued="2026-04-31T12:00:00Z")), False),
    ("an issued on 31 March", _request(_with(HISTORY, 6, issued="2026-03-31T12:00:00Z")), True),
    ("issued as the time", _request(_with(HISTORY, 6, effectiveDateTime=DROP)), True),
    ("an effectiveDateTime on 29 February 2025", _request(
        _with(HISTORY, 6, effectiveDateTime="2025-02-29")
    ), False),
    ("an effectiveDateTime on 29 February 2024", _request(
        _with(HISTORY, 6, effectiveDateTime="2024-02-29T08:00:00+01:00")
    ), True),
    ("an effectiveDateTime holding a line break", _request(
        _with(HISTORY, 6, effectiveDateTime="2026-01-05\n")
    ), False),
    ("an effectiveDateTime of a year", _request(_with(HISTORY, 6, effectiveDateTime="2025")),
     True),
    ("an effectiveDateTime that is not a date", _request(
        _with(HISTORY, 6, effectiveDateTime="2026-1-5")
    ), False),
    ("an invalid issued as the time", _request(
        _with(HISTORY, 6, effectiveDateTime=DROP, issued="2026-13-01T00:00:00Z")
    ), False),
    ("a code with a null coding", _request(_with(HISTORY, 7, code={"coding": None})), False),
    # Elements no rule reads: their top level is typed (a null is refused), their content raw
    ("elements no rule reads, of every JSON kind", _request(_with(HISTORY, 3,
        note=[{"text": "haemolysed"}], implicitRules="http://example.org/rules",
        text={"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">ALT</div>"},
    )), True),
    ("a null implicitRules", _request(_with(HISTORY, 3, implicitRules=None)), False),
    ("a null category on a non-liver Observation", _request([*HISTORY, {
        "resourceType": "Observation", "id": "ldl", "status": "final", "category": None,
        "code": {"coding": [{"system": "http://loinc.org", "code": "13457-7"}]},
        "subject": {"reference": f"Patient/{PATIENT}"}, "valueQuantity": {"value": 90},
    }]), False),
    ("a non-liver Observation with an odd subject", _request([*HISTORY, {
        "resourceType": "Observation", "id": "ldl", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "13457-7"}]},
        "subject": {"reference": 5},
    }]), False),
]
# fmt: on


@pytest.mark.parametrize(("scenario", "body", "lane"), ROWS, ids=[row[0] for row in ROWS])
@pytest.mark.parametrize("limits", [False, True], ids=["no-limits", "http-limits"])
def test_requests_take_the_lane_only_when_it_answers_alike(
    scenario: str, body: dict[str, Any], lane: bool, limits: bool
) -> None:
    assert _same_answer(_encoded(body), limits=limits) is lane


def test_under_http_limits_a_bundle_over_the_entry_limit_is_refused_alike() -> None:
    many = _history(HTTP_LIMITS.max_bundle_entries + 1)
    assert _same_answer(_encoded(_request(many)), limits=True) is False
    assert _answer(_encoded(_request(many)), decode_hook_body, limits=True)[1] == "InvalidFields"


def _ours(resource: dict[str, Any]) -> dict[str, Any]:
    resource = copy.deepcopy(resource)
    if isinstance(resource.get("subject"), dict):
        resource["subject"]["reference"] = f"Patient/{PATIENT}"
    return resource


@pytest.mark.slow  # hypothesis: requests whose lab Bundle holds mutated Observations
@settings(
    max_examples=REQUESTS,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(mutated_observation(), min_size=1, max_size=5),
    st.integers(0, 12),
    st.booleans(),
)
def test_requests_with_mutated_observations_are_answered_alike(
    mutated: list[dict[str, Any]], where: int, limits: bool
) -> None:
    observations = HISTORY[:where] + [_ours(resource) for resource in mutated] + HISTORY[where:]
    _same_answer(_encoded(_request(observations)), limits=limits)


def test_the_lane_and_the_general_path_were_both_exercised() -> None:
    if TALLY["lane"] + TALLY["general"] < REQUESTS:
        pytest.skip("runs after the generated requests")
    least = REQUESTS // 10
    assert TALLY["lane"] >= least and TALLY["general"] >= least, TALLY
