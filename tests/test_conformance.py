"""The conformance checker itself: it accepts HL7's example and names each broken invariant."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import response_problems

EXAMPLE = json.loads(
    (
        Path(__file__).parent / "data" / "cds-hooks" / "example-Binary-CDSHooksResponse.json"
    ).read_text()
)


def test_hl7_example_response_is_conformant() -> None:
    assert response_problems(EXAMPLE) == []


def _broken(change: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE)
    change(body["cards"][0])
    return body


@pytest.mark.parametrize(
    ("change", "invariant"),
    [
        pytest.param(
            lambda card: card.update(suggestions=[{"label": "x", "actions": []}]),
            "cds-resp-6",
            id="suggestions-without-selectionBehavior",
        ),
        pytest.param(
            lambda card: card.update(
                selectionBehavior="any",
                suggestions=[
                    {
                        "label": "x",
                        "actions": [{"type": "delete", "description": "d", "resource": {}}],
                    }
                ],
            ),
            "cds-resp-2",
            id="delete-with-resource-and-no-resourceId",
        ),
        pytest.param(
            lambda card: card.update(overrideReasons=[{"system": "s", "code": "c"}]),
            "cds-resp-4",
            id="override-reason-without-display",
        ),
        pytest.param(
            lambda card: card["links"].append(
                {"label": "l", "url": "https://x", "type": "absolute", "appContext": "{}"}
            ),
            "cds-resp-3",
            id="appContext-on-absolute-link",
        ),
        pytest.param(
            lambda card: card.update(
                selectionBehavior="at-most-one",
                suggestions=[
                    {"label": "a", "isRecommended": True},
                    {"label": "b", "isRecommended": True},
                ],
            ),
            "cds-resp-1",
            id="two-recommended-with-at-most-one",
        ),
        pytest.param(lambda card: card.update(summary="x" * 140), "summary", id="summary-140"),
        pytest.param(lambda card: card.update(detail=None), "empty", id="null-field"),
        pytest.param(lambda card: card.update(colour="red"), "not an element", id="unknown-key"),
    ],
)
def test_checker_names_each_broken_invariant(change: Any, invariant: str) -> None:
    problems = response_problems(_broken(change))
    assert any(invariant in problem for problem in problems), problems
