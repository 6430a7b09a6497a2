"""`mipomersen-cds feedback export`, `audit export`, `report`, `audit purge` and `db upgrade`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from cds_service.cli.main import main
from cds_service.records.storage import Database
from tests.conftest import NOW, sequential_ids
from tests.databases import AppFactory
from tests.fhir_builders import hook_request, medication_request, observation

SIGN = "/cds-services/mipomersen-order-sign"
WITHHOLD = hook_request(
    drafts=(medication_request("draft-1"),),
    labs=(observation("ALT", 236, "2026-11-20", high=40),),
)
REPEAT = hook_request(
    drafts=(medication_request("draft-1"),),
    labs=(observation("ALT", 130, "2026-11-20", high=40),),
)
UNKNOWN_CARD = "f6b95768-b1c8-40dc-8385-bf3504b82ffb"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def database_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MIPOMERSEN_CDS_DATABASE_URL", database_url)
    return database_url


def card_for(app: Flask, body: dict[str, Any]) -> dict[str, Any]:
    card: dict[str, Any] = app.test_client().post(SIGN, json=body).get_json()["cards"][0]
    return card


def feedback(app: Flask, *items: dict[str, Any]) -> None:
    response = app.test_client().post(f"{SIGN}/feedback", json={"feedback": list(items)})
    assert response.status_code == 200, response.get_json()


def overridden(card: str, minute: int, **fields: Any) -> dict[str, Any]:
    return {
        "card": card,
        "outcome": "overridden",
        "outcomeTimestamp": f"2026-11-23T12:{minute:02d}:00Z",
        **fields,
    }


def accepted(card: dict[str, Any], minute: int) -> dict[str, Any]:
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}],
        "outcomeTimestamp": f"2026-11-23T12:{minute:02d}:00Z",
    }


def reason(code: str, **display: str) -> dict[str, Any]:
    return {"reason": {"system": "https://mipomersen-cds.github.io/x", "code": code, **display}}


@pytest.fixture
def history(make_app: AppFactory, database_env: str) -> dict[str, Any]:
    """Four withhold cards and two repeat-test cards, with the feedback clinicians gave."""
    app = make_app(clock=lambda: NOW, new_id=sequential_ids())
    withhold = [card_for(app, WITHHOLD) for _ in range(4)]
    repeat = [card_for(app, REPEAT) for _ in range(2)]
    feedback(
        app,
        accepted(withhold[0], 1),
        overridden(
            withhold[1]["uuid"],
            2,
            overrideReason=reason("specialist-advised", display="Specialist advised"),
        ),
        overridden(withhold[2]["uuid"], 3, overrideReason={"userComment": "seen"}),
        overridden(withhold[2]["uuid"], 1),  # earlier; the later item wins
        overridden(repeat[0]["uuid"], 4, overrideReason=reason("test-already-ordered")),
        accepted(repeat[1], 5),
        overridden(repeat[1]["uuid"], 6, overrideReason=reason("test-already-ordered")),
        overridden(UNKNOWN_CARD, 7),
    )
    return {"withhold": withhold, "repeat": repeat}


def test_feedback_export_prints_json_lines_in_the_order_received(
    history: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(["feedback", "export"], capsys)
    assert status == 0
    assert err.startswith("mipomersen-cds: using ") and err.count("\n") == 1
    items = lines(out)
    assert len(items) == 8
    assert items[0] == {
        "receivedAt": "2026-11-23T12:00:00Z",
        "service": "mipomersen-order-sign",
        "card": history["withhold"][0]["uuid"],
        "cardStatus": "issued",
        "outcome": "accepted",
        "outcomeTimestamp": "2026-11-23T12:01:00Z",
        "acceptedSuggestions": [{"id": history["withhold"][0]["suggestions"][0]["uuid"]}],
        "overrideReason": None,
    }
    assert items[1]["overrideReason"] == {
        "reason": {
            "system": "https://mipomersen-cds.github.io/x",
            "code": "specialist-advised",
            "display": "Specialist advised",
        },
        "userComment": None,
    }
    assert items[2]["overrideReason"] == {"reason": None, "userComment": "seen"}
    assert items[-1]["cardStatus"] == "unknown"


def test_audit_export_prints_one_line_per_hook_call(
    history: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(["audit", "export"], capsys)
    records = lines(out)
    assert status == 0
    assert [record["card"] for record in records] == [
        card["uuid"] for card in history["withhold"] + history["repeat"]
    ]
    first = records[0]
    assert list(first) == [
        "time",
        "service",
        "status",
        "hook",
        "hookInstance",
        "patient",
        "profile",
        "decision",
        "reason",
        "rule",
        "card",
        "suggestions",
        "resources",
        "dataSources",
        "issues",
        "durationMs",
    ]
    assert (first["time"], first["patient"], first["decision"]) == (
        "2026-11-23T12:00:00Z",
        "Patient/p1",
        "withhold",
    )


@pytest.mark.parametrize(
    ("since", "count"),
    [("2026-11-23", 6), ("2026-11-23T12:00:00Z", 6), ("2026-11-23T07:00:01-05:00", 0)],
)
def test_since_keeps_records_from_that_instant_on(
    history: dict[str, Any], capsys: pytest.CaptureFixture[str], since: str, count: int
) -> None:
    _, out, _ = run(["audit", "export", "--since", since], capsys)
    assert len(lines(out)) == count
    _, out, _ = run(["feedback", "export", "--since", since], capsys)
    assert len(lines(out)) == (8 if count else 0)


def test_report_counts_each_card_once_with_its_last_outcome(
    history: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(["report", "--format", "json"], capsys)
    assert status == 0
    report = json.loads(out)
    withhold, repeat = report["rows"]
    assert {k: withhold[k] for k in ("decision", "shown", "accepted", "overridden")} == {
        "decision": "withhold",
        "shown": 4,
        "accepted": 1,
        "overridden": 2,
    }
    assert (withhold["noFeedback"], withhold["overrideRate"]) == (1, 0.5)
    assert withhold["overrideReasons"] == {"specialist-advised": 1, "(comment only)": 1}
    assert {k: repeat[k] for k in ("decision", "shown", "accepted", "overridden")} == {
        "decision": "repeat-test",
        "shown": 2,
        "accepted": 0,
        "overridden": 2,
    }
    assert repeat["overrideReasons"] == {"test-already-ordered": 2}
    assert report["total"]["shown"] == 6 and report["total"]["overridden"] == 4
    assert report["feedbackOnUnknownCards"] == 1


def test_report_reads_as_a_table(
    history: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(["report", "--since", "2026-11-01"], capsys)
    assert status == 0
    header, withhold, repeat, total = out.splitlines()[2:6]
    assert header.split() == [
        "decision",
        "rule",
        "shown",
        "accepted",
        "overridden",
        "no",
        "feedback",
        "override",
        "rate",
        "override",
        "reasons",
    ]
    assert out.splitlines()[0] == "Cards issued since 2026-11-01T00:00:00Z"
    assert withhold.split()[0] == "withhold" and withhold.split()[2:7] == [
        "4",
        "1",
        "2",
        "1",
        "50%",
    ]
    assert withhold.endswith("specialist-advised 1, (comment only) 1")
    assert repeat.split()[2:8] == ["2", "0", "2", "0", "100%", "test-already-ordered"]
    assert total.split()[:6] == ["all", "6", "1", "4", "1", "67%"]
    assert out.splitlines()[-1] == "Feedback on cards this server did not issue: 1"


def test_report_on_an_empty_database(
    database: Database, database_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(["report"], capsys)
    assert status == 0
    assert out.splitlines()[0] == "Cards issued since the first record"
    assert out.splitlines()[3].split()[:6] == ["all", "0", "0", "0", "0", "0%"]


def test_purge_removes_what_is_older_than_the_retention(
    make_app: AppFactory, database_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    old = make_app(clock=lambda: now - timedelta(days=40))
    recent = make_app(clock=lambda: now - timedelta(days=1))
    old_card = card_for(old, WITHHOLD)
    feedback(old, overridden(old_card["uuid"], 1))
    card_for(recent, WITHHOLD)
    settings = {"MIPOMERSEN_CDS_AUDIT_RETENTION_DAYS": "30"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in settings.items():
            patch.setenv(name, value)
        status, out, _ = run(["audit", "purge", "--dry-run"], capsys)
        assert (status, out.split()[:7]) == (
            0,
            ["Would", "remove", "1", "audit", "records", "and", "1"],
        )
        assert "(retention 30 days, MIPOMERSEN_CDS_AUDIT_RETENTION_DAYS)" in out
        status, out, _ = run(["audit", "purge"], capsys)
        assert out.startswith("Removed 1 audit records and 1 feedback items older than ")
    _, out, _ = run(["audit", "export"], capsys)
    assert len(lines(out)) == 1
    _, out, _ = run(["feedback", "export"], capsys)
    assert out == ""


def test_db_upgrade_brings_a_new_database_to_the_current_schema(
    database_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(["db", "upgrade"], capsys)
    assert (status, out) == (0, "database schema at revision 0001 (current)\n")
    status, out, _ = run(["audit", "export"], capsys)
    assert (status, out) == (0, "")


@pytest.mark.parametrize(
    ("argv", "environment", "status", "message"),
    [
        (["audit", "export", "--since", "last week"], {}, 2, "--since 'last week' is not"),
        (["report"], {"MIPOMERSEN_CDS_DATABASE_URL": "mysql://db/cds"}, 2, "configuration error"),
        (["db", "upgrade"], {"MIPOMERSEN_CDS_AUDIT_RETENTION_DAYS": "0"}, 2, "configuration"),
        (
            ["feedback", "export"],
            {"MIPOMERSEN_CDS_DATABASE_URL": "postgresql://cds:hunter2@127.0.0.1:1/cds"},
            1,
            "database error: OperationalError: ",
        ),
        (
            ["db", "upgrade"],
            {"MIPOMERSEN_CDS_DATABASE_URL": "postgresql://cds:hunter2@127.0.0.1:1/cds"},
            1,
            "database error: OperationalError: ",
        ),
    ],
)
def test_failures_are_one_line_on_stderr_with_an_exit_status(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    environment: dict[str, str],
    status: int,
    message: str,
) -> None:
    main(["db", "upgrade"])  # the default SQLite database exists, as where the service runs
    capsys.readouterr()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    returned, out, err = run(argv, capsys)
    assert (returned, out) == (status, "")
    assert err.splitlines()[-1].startswith(f"mipomersen-cds: {message}")
    assert "hunter2" not in err


def test_records_commands_say_which_database_and_refuse_a_missing_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MIPOMERSEN_CDS_DATA_DIR")
    expected = elsewhere / "data" / "mipomersen-cds.sqlite3"
    for argv in (["report"], ["audit", "export"], ["feedback", "export"], ["audit", "purge"]):
        status, out, err = run(argv, capsys)
        assert (status, out) == (2, "")
        using, refusal = err.splitlines()
        assert using.startswith(f"mipomersen-cds: using SQLite file {expected} ")
        assert refusal.startswith(f"mipomersen-cds: no database at {expected}: ")
        assert not expected.exists()  # nothing created quietly


def test_db_upgrade_creates_the_database_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MIPOMERSEN_CDS_DATA_DIR", str(tmp_path / "fresh"))
    (tmp_path / "fresh").mkdir()
    status, out, err = run(["db", "upgrade"], capsys)
    assert status == 0 and "current" in out
    assert str(tmp_path / "fresh" / "mipomersen-cds.sqlite3") in err
    assert (tmp_path / "fresh" / "mipomersen-cds.sqlite3").exists()
    status, _, _ = run(["report"], capsys)
    assert status == 0


def test_a_postgresql_database_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MIPOMERSEN_CDS_DATABASE_URL", "postgresql://cds:hunter2@127.0.0.1:1/cds")
    _, _, err = run(["report"], capsys)
    assert "using postgresql+psycopg://cds:***@127.0.0.1:1/cds" in err
    assert "hunter2" not in err
