"""Policy 13 on the card as the service answers: every analyte's old abnormal result is history.

The service reads a record through its window (`reading_window`), which leaves out older results
no rule can use. Policy 13 lists, per analyte, the highest result above ULN taken before the
baseline window (a new start) or before the course began: so an old abnormal bilirubin or ALP
must reach the card too, not only ALT and AST. One row a scenario; each request is answered
through the lab lane and through the general path, which must agree.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from cds_service.hooks.discovery import find_service
from cds_service.hooks.evaluation import answer_hook
from cds_service.hooks.lab_lane import LaneBody, decode_hook_body
from cds_service.hooks.request import decode_json_body
from cds_service.settings import load_settings
from tests.conftest import NOW, sequential_ids
from tests.fhir_builders import hook_request, medication_request, observation

SETTINGS = load_settings({"MIPOMERSEN_CDS_AUTH": "off"})
HISTORY_HEADING = "**History**"


def _at(days_ago: int) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat()


def _lab(test: str, value: float, days_ago: int, high: float) -> dict[str, Any]:
    return observation(test, value, _at(days_ago), high=high)


RECENT_NORMAL_PANEL = (
    _lab("ALT", 20, 3, 40),
    _lab("AST", 22, 3, 40),
    _lab("TBIL", 0.6, 3, 1.2),
)  # no recent ALP: the new start's baseline is missing, so there is a card


def _history_lines(labs: tuple[dict[str, Any], ...], *, on_therapy_days: int | None) -> list[str]:
    """The history lines of the card answering an order-sign request, both paths alike."""
    medications = (
        (medication_request("m1", status="active", authoredOn=_at(on_therapy_days)[:10]),)
        if on_therapy_days is not None
        else ()
    )
    raw = json.dumps(
        hook_request(
            "order-sign",
            drafts=(medication_request("d1"),),
            labs=labs,
            medications=medications,
        )
    ).encode()
    service = find_service("mipomersen-order-sign")
    assert service is not None
    answers = []
    for decode in (decode_hook_body, decode_json_body):
        body = decode(raw)
        assert isinstance(body, LaneBody) == (decode is decode_hook_body)
        answer = answer_hook(
            body, service=service, settings=SETTINGS, now=NOW, new_id=sequential_ids()
        )
        answers.append(answer.body)
    lane, general = answers
    assert lane == general
    (card,) = lane["cards"]
    detail: str = card["detail"]
    if HISTORY_HEADING not in detail:
        return []
    section = detail.split(HISTORY_HEADING, 1)[1].split("\n\n", 2)[1]
    return [line for line in section.splitlines() if line.startswith("- ")]


@pytest.mark.parametrize(
    ("labs", "on_therapy_days", "expected"),
    [
        pytest.param(
            (*RECENT_NORMAL_PANEL, _lab("AST", 170, 600, 40)),
            None,
            ["AST 170 U/L = 4.2× ULN"],
            id="new start: an old AST 4x is history",
        ),
        pytest.param(
            (
                *RECENT_NORMAL_PANEL,
                _lab("TBIL", 2.4, 400, 1.2),
                _lab("ALP", 400, 500, 120),
                _lab("AST", 170, 600, 40),
            ),
            None,
            ["AST 170 U/L = 4.2× ULN", "total bilirubin 2.4 mg/dL = 2.0× ULN", "ALP 400 U/L"],
            id="new start: old bilirubin 2x and ALP 3.3x are listed beside the old AST",
        ),
        pytest.param(
            (
                *RECENT_NORMAL_PANEL,
                _lab("ALP", 300, 200, 120),
                _lab("ALP", 400, 500, 120),
                _lab("ALP", 130, 700, 120),
            ),
            None,
            ["ALP 400 U/L"],
            id="new start: the highest old ALP is the one listed",
        ),
        pytest.param(
            (*RECENT_NORMAL_PANEL, _lab("TBIL", 1.0, 400, 1.2), _lab("ALP", 100, 500, 120)),
            None,
            [],
            id="new start: old normal bilirubin and ALP are not history",
        ),
        pytest.param(
            (
                _lab("ALT", 60, 3, 40),  # 1.5x: a card, on which history shows
                _lab("AST", 22, 3, 40),
                _lab("ALP", 80, 3, 120),
                _lab("TBIL", 0.6, 3, 1.2),
                _lab("TBIL", 0.7, 100, 1.2),
                _lab("TBIL", 3.0, 300, 1.2),
            ),
            200,
            ["total bilirubin 3 mg/dL = 2.5× ULN"],
            id="on therapy: a bilirubin 2.5x before the course began is history",
        ),
    ],
)
def test_old_abnormal_results_of_every_analyte_are_history(
    labs: tuple[dict[str, Any], ...], on_therapy_days: int | None, expected: list[str]
) -> None:
    lines = _history_lines(labs, on_therapy_days=on_therapy_days)
    assert len(lines) == len(expected), lines
    when = "before therapy" if on_therapy_days is None else "before this course began"
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"- {start}")
        assert when in line
