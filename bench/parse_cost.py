"""Measure the edges of a hook call: decoding the body, and `answer_hook` around the rules.

`python bench/parse_cost.py [--observations 200 10000] [--bodies N]` prints CPU medians
(`time.thread_time`, cold distinct bodies from `bench.workload.distinct_bodies`, after
`warm_up()`) of `decode_json_body` and its parts, the floors (`json.loads`, plain msgspec), and
of `answer_hook` with `read_patient_record`, `evaluate` and `render_cards` replaced by stubs that
return a precomputed answer: what remains is parsing the hook request, the prefetch plans, the
identity check and choosing the orders. Point `PYTHONPATH` at another tree to measure it with
the same bodies; `--json` prints the figures as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.append(str(Path(__file__).resolve().parent.parent))  # `bench`, unless PYTHONPATH has one

import msgspec  # noqa: E402

from bench.workload import NOW, distinct_bodies  # noqa: E402
from cds_service.cli.serve import warm_up  # noqa: E402
from cds_service.hooks import evaluation as hook_evaluation  # noqa: E402
from cds_service.hooks.discovery import find_service  # noqa: E402
from cds_service.hooks.json_limits import nesting_depth  # noqa: E402
from cds_service.hooks.limits import HTTP_LIMITS  # noqa: E402
from cds_service.hooks.request import decode_json_body  # noqa: E402
from cds_service.settings import load_settings  # noqa: E402


def _cpu_ms(
    function: Callable[[Any], object],
    inputs: list[Any],
    prepare: Callable[[Any], Any] = lambda value: value,
) -> float:
    """Return the median CPU milliseconds of `function` over `inputs`, each called once.

    `prepare` turns an input into the argument outside the timing, one at a time, so that only
    one request's objects are alive at once, as in the service.
    """
    samples = []
    for value in inputs:
        argument = prepare(value)
        began = time.thread_time()
        function(argument)
        samples.append((time.thread_time() - began) * 1000)
        del argument
    return statistics.median(samples)


def measure(observations: int, count: int) -> dict[str, float]:
    """Return the CPU medians of the parts for `count` distinct bodies of `observations`."""
    service = find_service("mipomersen-order-sign")
    assert service is not None
    settings = load_settings({"MIPOMERSEN_CDS_AUTH": "off"})
    bodies = distinct_bodies(observations, count)
    # The HTTP service's limits, where they admit the body (at most 1,000 entries per Bundle).
    limits = HTTP_LIMITS if observations <= HTTP_LIMITS.max_bundle_entries else None

    def answer(decoded: Any) -> object:
        return hook_evaluation.answer_hook(
            decoded,
            service=service,
            settings=settings,
            now=NOW,
            new_id=lambda: "x",
            limits=limits,
        )

    real = answer(decode_json_body(bodies[0]))  # imports, validators; the stubs' answer
    assert real.evaluation is not None
    record = hook_evaluation.read_patient_record(
        [item for items in real.request.prefetch.values() for item in items or ()],
        draft_orders=real.request.draft_orders,
        medication_codes=settings.medication_codes,
    )
    warm_up()
    figures = {
        "decode_json_body": _cpu_ms(decode_json_body, bodies),
        "json.loads": _cpu_ms(json.loads, bodies),
        "msgspec": _cpu_ms(msgspec.json.Decoder().decode, bodies),
        "nesting_depth": _cpu_ms(nesting_depth, bodies),
        "utf-8 decode": _cpu_ms(bytes.decode, bodies),
    }
    stubs = {
        "read_patient_record": lambda *a, **k: record,
        "evaluate": lambda *a, **k: real.evaluation,
        "render_cards": lambda *a, **k: [],
    }
    originals = {name: getattr(hook_evaluation, name) for name in stubs}
    try:
        for name, stub in stubs.items():
            setattr(hook_evaluation, name, stub)
        figures["answer_hook without record/rules/cards"] = _cpu_ms(
            answer, bodies, decode_json_body
        )
    finally:
        for name, original in originals.items():
            setattr(hook_evaluation, name, original)
    figures["answer_hook (all)"] = _cpu_ms(answer, bodies[:50], decode_json_body)
    return figures


def _bodies(observations: int) -> int:
    """Return how many distinct bodies to measure: 300 small ones, fewer large ones."""
    return 300 if observations <= 200 else max(6, 60_000 // observations)


def main() -> None:
    """Print the figures for each size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--observations", type=int, nargs="+", default=[200, 10000])
    parser.add_argument("--bodies", type=int, default=0, help="bodies per size (default: by size)")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    results = {
        size: measure(size, arguments.bodies or _bodies(size)) for size in arguments.observations
    }
    if arguments.json:
        print(json.dumps(results))  # noqa: T201
        return
    for size, figures in results.items():
        for name, value in figures.items():
            print(f"{size:>6} {name:<42} {value:9.3f} ms")  # noqa: T201


if __name__ == "__main__":
    main()
