"""The fault suite (`tests/chaos.py`) at quick sizes: no 5xx but the expected 503s, nothing hung,
no record lost. `make chaos` runs the full sizes and prints the README's table."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import chaos


def assert_clean(row: chaos.Row, *, server_errors: int = 0) -> None:
    assert row.requests > 0, row
    assert (row.server_errors, row.hung, row.lost, row.notes) == (server_errors, 0, 0, []), row


def test_hostile_bodies_get_4xx_are_audited_and_nothing_is_written_to_home(
    tmp_path: Path,
) -> None:
    row = chaos.probe_hostile_input(tmp_path, repeat=1)
    assert_clean(row)
    assert not (tmp_path / "hostile" / "gunicorn.ctl").exists()  # removed on a clean stop


def test_sigkill_under_load_loses_no_answered_record(tmp_path: Path) -> None:
    row = chaos.probe_sigkill(tmp_path, rounds=1, seconds=1.5)
    assert row.requests > 0 and (row.server_errors, row.lost) == (0, 0), row


def test_a_database_outage_costs_no_card_and_feedback_gets_503(tmp_path: Path) -> None:
    hooks, feedback = chaos.probe_database_outage(tmp_path, calls=3)
    assert_clean(hooks)
    assert_clean(feedback, server_errors=3)


def test_a_replay_store_outage_fails_closed_and_recovers(tmp_path: Path) -> None:
    row = chaos.probe_replay_outage(tmp_path, calls=3)
    assert_clean(row, server_errors=3)


@pytest.mark.skipif(chaos.os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_data_disk_costs_no_card_and_kills_no_worker(tmp_path: Path) -> None:
    hooks, feedback = chaos.probe_full_disk(tmp_path, calls=3)
    assert_clean(hooks)
    assert_clean(feedback, server_errors=3)


@pytest.mark.skipif(chaos.NGINX is None, reason="nginx is not installed (apt-get install nginx)")
def test_slow_clients_starve_no_one_behind_nginx(tmp_path: Path) -> None:
    row = chaos.probe_slow_clients(tmp_path, seconds=2, through_nginx=True)
    assert row.notes and row.notes[0].startswith("slowest normal call"), row
    assert row.requests > 0 and (row.server_errors, row.hung) == (0, 0), row
