"""What a developer meets first with the CLI: --version, clear input errors, terminal text."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import pytest

from cds_service.cli.main import main
from cds_service.cli.terminal import render_answer
from cds_service.hooks.discovery import find_service
from cds_service.hooks.evaluation import answer_hook
from cds_service.settings import load_settings

ROOT = Path(__file__).parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
NOW = "2026-11-23T12:00:00Z"


def test_version_names_the_installed_release(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mipomersen-cds {metadata.version('mipomersen-cds')}"


def test_an_empty_file_is_called_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "request.json"
    empty.write_text("  \n")
    assert main(["evaluate", str(empty), "--now", NOW]) == 2
    err = capsys.readouterr().err
    assert "request.json is empty" in err and "not valid JSON" not in err


def test_empty_standard_input_is_called_empty(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert main(["evaluate", "-", "--now", NOW]) == 2
    assert "standard input is empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    "now",
    [
        "2026-11-23",
        "2026-11-23T12:00:00",
        "2026-11-23T12:00Z",
        "23/11/2026",
        "2026-13-01T00:00:00Z",
    ],
    ids=["date-only", "no-offset", "no-seconds", "not-iso", "no-such-month"],
)
def test_now_must_be_a_full_date_time_with_offset(
    now: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(EXAMPLES[0]), "--now", now]) == 2
    assert "date-time with offset" in capsys.readouterr().err


@pytest.mark.parametrize("now", ["2026-11-23T12:00:00Z", "2026-11-23T13:00:00.250+01:00"])
def test_now_with_an_offset_is_accepted(now: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["evaluate", str(ROOT / "examples" / "withhold-alt-5x-uln.json"), "--now", now]) == 0
    )
    assert capsys.readouterr().out.startswith("[CRITICAL] Withhold mipomersen")


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_text_output_shows_no_markdown_escapes(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(example), "--now", NOW]) == 0
    out = capsys.readouterr().out
    for escaped in ("\\<", "\\[", "\\]", "\\*", "**", "|---"):
        assert escaped not in out
    assert "\x1b[" not in out  # piped: plain text, no colour codes


def test_unusable_unit_list_reads_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "examples" / "repeat-test-latest-alt-unknown-unit.json"
    assert main(["evaluate", str(path), "--now", NOW]) == 0
    out = capsys.readouterr().out
    assert "[IU]/L" in out and "Results used:" in out


def test_a_terminal_gets_the_indicator_in_colour() -> None:
    settings = load_settings({})
    service = find_service("mipomersen-order-sign")
    assert service is not None
    body = json.loads((ROOT / "examples" / "withhold-alt-5x-uln.json").read_text())
    answer = answer_hook(
        body,
        service=service,
        settings=settings,
        now=datetime(2026, 11, 23, 12, tzinfo=UTC),
        new_id=lambda: "00000000-0000-4000-8000-000000000001",
    )
    coloured = render_answer(answer, terminal=True, width=100)
    assert "\x1b[" in coloured and "CRITICAL" in coloured
    plain = render_answer(answer, terminal=False)
    assert plain.splitlines()[0] == (
        "[CRITICAL] Withhold mipomersen: ALT 236 U/L = 5.9× ULN on 2026-11-20"
    )
