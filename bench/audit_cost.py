"""What writing the audit record costs a hook call: p50/p99 with the audit on and off.

    .venv/bin/python bench/audit_cost.py [--calls 2000] [--database-url URL]

Calls the order-sign service in-process (Flask test client, no network) with
examples/withhold-alt-5x-uln.json, alternating an app that writes the audit record with the same
app whose audit trail neither builds nor writes the record, and prints the latency of each and
the difference. The default database is a fresh SQLite file (WAL; audit commits are
synchronous=NORMAL, see cds_service/records/storage/database.py) in a temporary directory; pass
--database-url for PostgreSQL (migrated first with `mipomersen-cds db upgrade`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flask import Flask

from cds_service import create_app
from cds_service.records.audit import AuditTrail, HookCall
from cds_service.web.state import EXTENSION_NAME, ServiceState

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "withhold-alt-5x-uln.json"
PATH = "/cds-services/mipomersen-order-sign"


class _SkippedAudit(AuditTrail):
    """The audit trail with the record neither built nor written: the baseline."""

    def _record(self, call: HookCall, status: int, issues: Any, duration_ms: float) -> None:
        return None


def _without_audit(app: Flask) -> Flask:
    state: ServiceState = app.extensions[EXTENSION_NAME]
    skipped = _SkippedAudit(state.database, profile=state.settings.rules.profile)
    app.extensions[EXTENSION_NAME] = dataclasses.replace(state, audit=skipped)
    return app


def percentile(samples: list[float], fraction: float) -> float:
    """Return the sample at `fraction` of the sorted samples (nearest rank)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(calls: int, database_url: str | None) -> dict[str, dict[str, float]]:
    """Return p50, p99 and mean (ms) of hook calls with the audit on and off."""
    body = json.dumps(json.loads(EXAMPLE.read_text())).encode()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = {"AUTH": "off", "DATA_DIR": data_dir}
        if database_url:
            settings["DATABASE_URL"] = database_url
        on = create_app(settings, environ={})
        off = _without_audit(create_app(settings, environ={}))
        clients = {"audit on": on.test_client(), "audit off": off.test_client()}
        samples: dict[str, list[float]] = {name: [] for name in clients}
        for index in range(calls + calls // 10):  # the first tenth warms up
            for name, client in clients.items():
                started = time.perf_counter()
                response = client.post(PATH, data=body, content_type="application/json")
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, response.get_data(as_text=True)
                if index >= calls // 10:
                    samples[name].append(elapsed)
        for app in (on, off):
            app.extensions[EXTENSION_NAME].database.close()
    return {
        name: {
            "p50": percentile(values, 0.50),
            "p99": percentile(values, 0.99),
            "mean": statistics.fmean(values),
        }
        for name, values in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per variant")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    arguments = parser.parse_args(argv)
    figures = measure(arguments.calls, arguments.database_url)
    database = "PostgreSQL" if arguments.database_url else "SQLite"
    lines = [f"hook call latency, {arguments.calls} calls each, {database}:"]
    for name, values in figures.items():
        lines.append(
            f"  {name:<10} p50 {values['p50']:6.2f} ms   p99 {values['p99']:6.2f} ms"
            f"   mean {values['mean']:6.2f} ms"
        )
    on, off = figures["audit on"], figures["audit off"]
    cost = {key: on[key] - off[key] for key in on}
    lines.append(
        f"  {'cost':<10} p50 {cost['p50']:+6.2f} ms   p99 {cost['p99']:+6.2f} ms"
        f"   mean {cost['mean']:+6.2f} ms"
    )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
