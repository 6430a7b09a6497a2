"""Every example in examples/ gives the decision of its golden answer, via CLI and HTTP.

A case is two files paired by name: the request `examples/<case>.json` and the HTTP answer
`tests/data/golden/<case>.response.json`, compared byte for byte with a fixed clock and
sequential UUIDs. After an intended change of wording, regenerate the answers with
`UPDATE_GOLDEN=1 make test` and review the diff; regenerating never changes a decision or its
reason (edit or delete that answer by hand). A new example gets its answer the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.cli.main import main
from cds_service.hooks.bundles import bundle_to_hook_request
from cds_service.hooks.discovery import SERVICES
from tests.conformance import response_problems
from tests.openapi_contract import assert_response_matches_openapi

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).parent / "data" / "golden"
RESPONSE_SUFFIX = ".response.json"
NOW = "2026-11-23T12:00:00Z"
CASES = sorted(path.stem for path in EXAMPLES.glob("*.json"))
README_HEADER = ["| Example | Service | Decision | Reason |", "|---|---|---|---|"]


def golden_path(case: str) -> Path:
    return GOLDEN / f"{case}{RESPONSE_SUFFIX}"


def decision_of(body: dict[str, Any]) -> tuple[str, str]:
    if not body["cards"]:
        return "none", ""
    extension = body["cards"][0]["extension"]["io.github.mipomersen-cds"]
    return extension["decision"], extension["reason"]


def golden_decision(case: str) -> tuple[str, str]:
    return decision_of(json.loads(golden_path(case).read_text(encoding="utf-8")))


def example(case: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EXAMPLES / f"{case}.json").read_text(encoding="utf-8"))
    return body


def is_bundle(case: str) -> bool:
    return example(case).get("resourceType") == "Bundle"


def hook_request_of(case: str) -> dict[str, Any]:
    """Return the example as the CDS Hooks request the HTTP test sends."""
    body = example(case)
    if is_bundle(case):
        _, body = bundle_to_hook_request(body, None)
        body["hookInstance"] = "00000000-0000-4000-8000-00000000ffff"
    return body


def service_of(body: dict[str, Any]) -> str:
    (service,) = (service.id for service in SERVICES if service.hook == body["hook"])
    return service


def readme_service(case: str) -> str:
    """Return the Service cell of the README: a Bundle is for the CLI and the playground."""
    body = hook_request_of(case)
    return f"CLI or playground (as {body['hook']})" if is_bundle(case) else service_of(body)


def test_every_example_has_a_golden_answer_and_every_answer_an_example() -> None:
    answers = sorted(path.name.removesuffix(RESPONSE_SUFFIX) for path in GOLDEN.iterdir())

    assert answers == CASES


def test_the_examples_cover_every_decision() -> None:
    assert {golden_decision(case)[0] for case in CASES} == {
        "contraindicated",
        "discontinue",
        "withhold",
        "repeat-test",
        "monitor-closely",
        "none",
    }


def test_the_readme_table_lists_each_example_with_its_service_and_golden_decision() -> None:
    lines = (EXAMPLES / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index(README_HEADER[0])
    table = lines[start : lines.index("", start)]
    rows = [
        f"| {case} | {readme_service(case)} | {' | '.join(golden_decision(case))} |"
        for case in CASES
    ]

    assert table[:2] == README_HEADER
    assert sorted(table[2:]) == sorted(row.replace("|  |", "| |") for row in rows)


@pytest.mark.parametrize("case", CASES)
def test_example_through_the_cli(case: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["evaluate", str(EXAMPLES / f"{case}.json"), "--now", NOW, "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert decision_of(json.loads(out)) == golden_decision(case)


@pytest.mark.parametrize("case", CASES)
def test_example_over_http_matches_its_golden_answer(client: FlaskClient, case: str) -> None:
    body = hook_request_of(case)
    data = json.dumps(body).encode()
    path = f"/cds-services/{service_of(body)}"
    response = client.post(path, data=data, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_response_matches_openapi(response, method="POST", path=path, request_body=data)
    answer = response.get_json()
    assert response_problems(answer) == []
    golden = golden_path(case)
    actual = json.dumps(answer, ensure_ascii=False, indent=2) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        if golden.exists():
            assert decision_of(answer) == golden_decision(case), (
                f"{case}: the decision changed; check it and edit or delete {golden} by hand"
            )
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    assert golden.read_text(encoding="utf-8") == actual
