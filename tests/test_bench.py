"""The benchmark scripts under bench/ still run (a few calls, not a measurement)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_audit_cost_prints_latency_with_and_without_the_audit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main = runpy.run_path(str(BENCH / "audit_cost.py"))["main"]
    assert main(["--calls", "10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "hook call latency, 10 calls each, SQLite:"
    assert [line.split()[0] for line in lines[1:]] == ["audit", "audit", "cost"]
