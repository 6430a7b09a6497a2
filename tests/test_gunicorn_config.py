"""The gunicorn configuration file: values from settings, timeouts from the request budget."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

from cds_service.cli.serve import (
    MULTIPROCESS_DIR_VARIABLE,
    WORKER_SWITCH_INTERVAL_SECONDS,
    default_metrics_directory,
    gunicorn_options,
    prepare_metrics_directory,
    remove_metrics_directory,
)
from cds_service.settings import load_settings


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param(
            {},
            {
                "graceful_timeout": 6,
                "timeout": 30,
                "threads": 4,
                "worker_class": "cds_service.cli.gunicorn_worker.BalancingThreadWorker",
            },
            id="defaults: 2 s FHIR budget + 2 s database + 1 s",
        ),
        pytest.param(
            {
                "MIPOMERSEN_CDS_FHIR_DEADLINE_SECONDS": "20",
                "MIPOMERSEN_CDS_THREADS": "16",
                "MIPOMERSEN_CDS_WORKERS": "3",
            },
            {"graceful_timeout": 24, "timeout": 48, "threads": 16, "workers": 3},
            id="a longer FHIR budget lengthens both timeouts",
        ),
    ],
)
def test_options_follow_the_settings(environ: dict[str, str], expected: dict[str, object]) -> None:
    options = gunicorn_options(load_settings({"MIPOMERSEN_CDS_AUTH": "off", **environ}))
    assert {key: options[key] for key in expected} == expected
    assert options["accesslog"] is None  # the app's JSON request line replaces it


@pytest.mark.parametrize(
    ("cpus", "workers"),
    [
        pytest.param(1, 3, id="1 CPU: 3 workers"),
        pytest.param(2, 5, id="2 CPUs: 5 workers"),
        pytest.param(4, 9, id="4 CPUs: 9 workers"),
        pytest.param(16, 33, id="16 CPUs: 33 workers"),
        pytest.param(None, 3, id="CPU count unknown: as for 1 CPU"),
    ],
)
def test_default_workers_follow_the_cpu_count(
    cpus: int | None, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gunicorn's advice, two workers per core plus one, worked out by hand per row."""
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    options = gunicorn_options(load_settings({"MIPOMERSEN_CDS_AUTH": "off"}))
    assert options["workers"] == workers


def test_the_config_module_exposes_settings_and_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIPOMERSEN_CDS_AUTH", "off")
    monkeypatch.setenv("MIPOMERSEN_CDS_WORKERS", "2")
    module = importlib.reload(importlib.import_module("cds_service.cli.gunicorn_conf"))
    assert module.workers == 2
    for hook in ("on_starting", "post_worker_init", "child_exit", "on_exit"):
        assert callable(getattr(module, hook))


def test_a_worker_lets_a_call_run_longer_before_switching_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MIPOMERSEN_CDS_AUTH", "off")
    module = importlib.reload(importlib.import_module("cds_service.cli.gunicorn_conf"))
    # Neither gc.freeze nor gunicorn's error page replaced in the test process.
    monkeypatch.setattr(module, "warm_up", lambda: None)
    monkeypatch.setattr(module, "render_server_errors_as_operation_outcomes", lambda: None)
    default = sys.getswitchinterval()
    try:
        module.post_worker_init(worker=None)
        assert sys.getswitchinterval() == pytest.approx(WORKER_SWITCH_INTERVAL_SECONDS)
    finally:
        sys.setswitchinterval(default)
    assert WORKER_SWITCH_INTERVAL_SECONDS > default


def test_metrics_directory_starts_empty_and_lives_off_the_data_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set then delete through monkeypatch, so the variable is gone again after the test: a
    # leftover would switch every later app's /metrics to multiprocess mode.
    monkeypatch.setenv(MULTIPROCESS_DIR_VARIABLE, "unset-after-the-test")
    monkeypatch.delenv(MULTIPROCESS_DIR_VARIABLE)
    expected = default_metrics_directory(tmp_path)
    assert expected.parent == Path("/dev/shm")  # tmpfs: a full data disk cannot SIGBUS
    stale = expected / "counter_123.db"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"old")
    directory = prepare_metrics_directory(tmp_path)
    assert directory == expected
    assert list(directory.iterdir()) == []
    assert os.environ[MULTIPROCESS_DIR_VARIABLE] == str(directory)
    remove_metrics_directory(tmp_path)
    assert not directory.exists()


def test_without_dev_shm_the_metrics_stay_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cds_service.cli.serve.RUNTIME_ROOT", tmp_path / "no-shm")
    assert default_metrics_directory(tmp_path) == tmp_path / "prometheus"


def test_the_control_socket_stays_in_the_data_directory(tmp_path: Path) -> None:
    settings = load_settings(
        {"MIPOMERSEN_CDS_AUTH": "off", "MIPOMERSEN_CDS_DATA_DIR": str(tmp_path)}
    )
    options = gunicorn_options(settings)
    assert options["control_socket"] == str(tmp_path.resolve() / "gunicorn.ctl")
    deep = tmp_path / ("d" * 120)
    long_settings = load_settings(
        {"MIPOMERSEN_CDS_AUTH": "off", "MIPOMERSEN_CDS_DATA_DIR": str(deep)}
    )
    assert gunicorn_options(long_settings)["control_socket_disable"] is True


@pytest.mark.parametrize(
    ("threads", "connections", "defers"),
    [
        pytest.param(4, 0, False, id="an idle worker accepts at once"),
        pytest.param(4, 3, False, id="a worker with a spare thread accepts at once"),
        pytest.param(4, 4, True, id="a connection for every thread: another worker goes first"),
        pytest.param(4, 9, True, id="more connections than threads: it still accepts, later"),
    ],
)
def test_a_full_worker_leaves_a_new_connection_to_another_first(
    threads: int, connections: int, defers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gunicorn.workers.gthread import ThreadWorker

    from cds_service.cli import gunicorn_worker

    events: list[str] = []
    monkeypatch.setattr(gunicorn_worker.time, "sleep", lambda seconds: events.append("wait"))
    monkeypatch.setattr(ThreadWorker, "accept", lambda self, listener: events.append("accept"))
    worker = object.__new__(gunicorn_worker.BalancingThreadWorker)
    worker.cfg = type("Config", (), {"threads": threads})()
    worker.nr_conns = connections

    worker.accept(listener=None)

    assert events == (["wait", "accept"] if defers else ["accept"])
