"""schemathesis, driven by openapi.yaml, against the app with authentication required.

A bounded run for `make test`; `make fuzz` runs the same generators for at least 10,000 requests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from schemathesis import GenerationMode

from tests.fuzzing import fuzz_app, load_schema, main, run_hostile_tokens, run_schema

pytestmark = pytest.mark.slow  # schemathesis fuzzing

EXAMPLES = 40


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_generated_requests_get_documented_answers_and_never_a_5xx(
    tmp_path: Path, mode: GenerationMode
) -> None:
    app, counter = fuzz_app(tmp_path)
    run_schema(load_schema(app), examples=EXAMPLES, mode=mode, seed=20261123)
    assert counter.total >= EXAMPLES
    assert counter.server_errors == 0
    assert set(counter.statuses) - {401}  # authenticated requests did get through


def test_mangled_tokens_always_get_401(tmp_path: Path) -> None:
    app, counter = fuzz_app(tmp_path)
    run_hostile_tokens(app, examples=100, seed=20261123)
    assert set(counter.statuses) == {401}


def test_the_long_run_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--requests", "50", "--seed", "7"]) == 0
    out = capsys.readouterr().out
    assert "5xx answers: 0" in out and "requests: " in out
