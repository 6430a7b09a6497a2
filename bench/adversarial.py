"""Adversarial section of the benchmark (issue 12): the costliest bodies under the size limit.

    .venv/bin/python -m bench.adversarial [--quick]

Each body is near MIPOMERSEN_CDS_MAX_BODY_BYTES (10 MiB) and shaped to cost the most CPU per
byte: many Bundle entries, huge arrays inside one resource the rules validate (identifiers,
codings, notes, extensions), contained resources, reference ranges, many object keys, many
prefetch keys, deep nesting, long strings, numbers. Each is posted through the Flask test
client (the whole request: body read, decode, limits, rules, audit write) and timed in CPU
seconds of this thread. The worst body and its time are printed; the goal is under 1 s.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIGN = "/cds-services/mipomersen-order-sign"
LIMIT = 10 * 1024 * 1024
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "withhold-alt-5x-uln.json").read_text())
GOAL_CPU_SECONDS = 1.0


def _fill(item_bytes: int, budget: int = LIMIT - 20_000) -> int:
    return max(1, budget // (item_bytes + 2))


def _lab_array(key: str, item: Any) -> bytes:
    body = copy.deepcopy(EXAMPLE)
    lab = body["prefetch"]["liverLabs"]["entry"][0]["resource"]
    count = _fill(len(json.dumps(item)))
    if key == "coding":
        lab["code"]["coding"] += [item] * count
    else:
        lab[key] = [item] * count
    return json.dumps(body).encode()


def _entries(resource: dict[str, Any], *, key: str = "liverLabs", count: int = 1000) -> bytes:
    body = copy.deepcopy(EXAMPLE)
    body["prefetch"][key] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": resource}] * count,
    }
    return json.dumps(body).encode()


MIN_LAB = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "1742-6"}]},
    "valueQuantity": {"value": 30, "code": "U/L", "system": "http://unitsofmeasure.org"},
    "effectiveDateTime": "2026-11-20",
    "subject": {"reference": "Patient/pat-1001"},
}


def _many_keys_bundles() -> bytes:
    body = copy.deepcopy(EXAMPLE)
    entry = {"resourceType": "Bundle", "entry": [{"resource": MIN_LAB}] * 1000}
    per_key = len(json.dumps(entry))
    for index in range(_fill(per_key)):
        body["prefetch"][f"k{index}"] = entry
    return json.dumps(body).encode()


def _object_keys() -> bytes:
    body = copy.deepcopy(EXAMPLE)
    lab = body["prefetch"]["liverLabs"]["entry"][0]["resource"]
    for index in range(_fill(12)):
        lab[f"k{index}"] = 1
    return json.dumps(body).encode()


def _deep() -> bytes:
    body = copy.deepcopy(EXAMPLE)
    body["x"] = json.loads("[" * 63 + "]" * 63)
    text = json.dumps(body)
    filler = (
        ',"y":['
        + ",".join(
            [
                "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
            ]
            * _fill(126)
        )
        + "]"
    )  # noqa: E501
    return (text[:-1] + filler + "}").encode()


def _numbers() -> bytes:
    body = copy.deepcopy(EXAMPLE)
    body["x"] = [1.2345678901234567e300] * _fill(22)
    return json.dumps(body).encode()


def _long_string() -> bytes:
    body = copy.deepcopy(EXAMPLE)
    body["hookInstance"] = "é" * (LIMIT // 2 - 20_000)
    return json.dumps(body, ensure_ascii=False).encode()


def _escapes() -> bytes:
    body = copy.deepcopy(EXAMPLE)
    body["x"] = "\ud83d\ude00" * _fill(12)
    return json.dumps(body).encode()  # every character a surrogate-pair escape


def _contained() -> bytes:
    body = copy.deepcopy(EXAMPLE)
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["contained"] = [{"resourceType": "Medication", "id": "m", "code": {"text": "x"}}] * 20
    order["identifier"] = [{"value": "x"}] * 3000  # just under the per-resource size limit
    body["context"]["draftOrders"]["entry"] *= 150
    return json.dumps(body).encode()


BODIES: dict[str, Callable[[], bytes]] = {
    "1000 minimal ALT results in liverLabs": lambda: _entries(MIN_LAB),
    "1000 entries in each of 40 prefetch keys": _many_keys_bundles,
    "one Observation with 600,000 identifiers": lambda: _lab_array("identifier", {"value": "x"}),
    "one Observation with 200,000 codings": lambda: _lab_array(
        "coding", {"system": "http://loinc.org", "code": "9-9"}
    ),
    "one Observation with 650,000 notes": lambda: _lab_array("note", {"text": "a"}),
    "one Observation with 240,000 extensions": lambda: _lab_array(
        "extension", {"url": "http://x", "valueString": "a"}
    ),
    "one Observation with 500,000 reference ranges": lambda: _lab_array(
        "referenceRange", {"high": {"value": 40}}
    ),
    "one Observation with 800,000 keys": _object_keys,
    "150 orders with 20 contained and 3000 identifiers": _contained,
    "arrays nested 64 deep, repeated": _deep,
    "500,000 doubles": _numbers,
    "5 million characters in hookInstance": _long_string,
    "surrogate-pair escapes, 10 MB": _escapes,
}


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Post every body once (after a warm-up) and return its status, size and CPU time."""
    os.environ.setdefault("MIPOMERSEN_CDS_DATA_DIR", tempfile.mkdtemp(prefix="mipomersen-adv-"))
    from cds_service import create_app
    from cds_service.cli.serve import warm_up

    app = create_app({"AUTH": "off"}, environ=dict(os.environ))
    warm_up()
    client = app.test_client()
    client.post(SIGN, data=json.dumps(EXAMPLE), content_type="application/json")
    rows = []
    names = list(BODIES)[:4] if quick else list(BODIES)
    for name in names:
        body = BODIES[name]()
        started = time.thread_time()
        response = client.post(SIGN, data=body, content_type="application/json")
        cpu = time.thread_time() - started
        rows.append(
            {
                "body": name,
                "bytes": len(body),
                "status": response.status_code,
                "cpu_seconds": round(cpu, 3),
            }
        )
    return rows


def worst_body(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the row of the body that cost the most CPU, and whether it met the goal."""
    worst = max(rows, key=lambda row: row["cpu_seconds"])
    met = worst["cpu_seconds"] < GOAL_CPU_SECONDS
    return {**worst, "goal_cpu_seconds": GOAL_CPU_SECONDS, "met": met}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first four bodies only")
    rows = run(parser.parse_args(argv).quick)
    print(f"{'body':<40} {'bytes':>10} {'status':>6} {'CPU s':>7}")  # noqa: T201
    for row in rows:
        print(  # noqa: T201
            f"{row['body']:<40} {row['bytes']:>10} {row['status']:>6} {row['cpu_seconds']:>7.3f}"
        )
    worst = worst_body(rows)
    verdict = "meets" if worst["met"] else "MISSES"
    print(  # noqa: T201
        f"worst: {worst['body']}, {worst['cpu_seconds']:.3f} s of CPU: {verdict} the goal of "
        f"{GOAL_CPU_SECONDS} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
