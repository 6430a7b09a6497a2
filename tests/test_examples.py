"""Every example in examples/ gives the decision its README table promises, via CLI and HTTP.

The HTTP answers are also golden files (tests/data/responses/<example>.json), compared byte for
byte with a fixed clock and sequential UUIDs. After an intended change of wording, regenerate
them with `UPDATE_GOLDEN=1 make test` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.cli.main import main
from cds_service.hooks.bundles import bundle_to_hook_request
from tests.conformance import response_problems
from tests.openapi_contract import assert_response_matches_openapi

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).parent / "data" / "responses"
NOW = "2026-11-23T12:00:00Z"
# A Bundle's row names no hook service (it is for the CLI and the playground, as order-sign).
_ROW = re.compile(
    r"^\| ([a-z0-9-]+) \| (mipomersen-[a-z-]+|CLI or playground \(as (order-sign)\)) \| "
    r"([a-z-]+) \| ?([a-z0-9-]*) ?\|$"
)


def expected_rows() -> list[tuple[str, str, str, str]]:
    text = (EXAMPLES / "README.md").read_text()
    rows = []
    for line in text.splitlines():
        if match := _ROW.match(line):
            name, service, bundle_hook, decision, reason = match.groups()
            rows.append(
                (name, f"mipomersen-{bundle_hook}" if bundle_hook else service, decision, reason)
            )
    return rows


ROWS = expected_rows()


def test_the_table_covers_every_example_file() -> None:
    assert sorted(row[0] for row in ROWS) == sorted(p.stem for p in EXAMPLES.glob("*.json"))
    decisions = {row[2] for row in ROWS}
    assert decisions == {
        "contraindicated",
        "discontinue",
        "withhold",
        "repeat-test",
        "monitor-closely",
        "none",
    }


def decision_of(body: dict[str, Any]) -> tuple[str, str]:
    if not body["cards"]:
        return "none", ""
    extension = body["cards"][0]["extension"]["io.github.mipomersen-cds"]
    return extension["decision"], extension["reason"]


@pytest.mark.parametrize(("name", "service", "decision", "reason"), ROWS, ids=[r[0] for r in ROWS])
def test_example_through_the_cli(
    name: str, service: str, decision: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["evaluate", str(EXAMPLES / f"{name}.json"), "--now", NOW, "--format", "json"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert decision_of(json.loads(out)) == (decision, reason)


@pytest.mark.parametrize(("name", "service", "decision", "reason"), ROWS, ids=[r[0] for r in ROWS])
def test_example_over_http_matches_table_and_golden(
    client: FlaskClient, name: str, service: str, decision: str, reason: str
) -> None:
    body = json.loads((EXAMPLES / f"{name}.json").read_text())
    if body.get("resourceType") == "Bundle":
        _, body = bundle_to_hook_request(body, None)
        body["hookInstance"] = "00000000-0000-4000-8000-00000000ffff"
    data = json.dumps(body).encode()
    path = f"/cds-services/{service}"
    response = client.post(path, data=data, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert_response_matches_openapi(response, method="POST", path=path, request_body=data)
    answer = response.get_json()
    assert response_problems(answer) == []
    assert decision_of(answer) == (decision, reason)
    golden = GOLDEN / f"{name}.json"
    actual = json.dumps(answer, ensure_ascii=False, indent=2) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual)
    assert golden.read_text() == actual
