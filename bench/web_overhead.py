"""What the web layer adds to a hook call: CPU of the whole WSGI call minus decode + answer_hook.

    .venv/bin/python -m bench.web_overhead [--calls 300] [--observations 200] [--profile]

Builds the app as a gunicorn worker does (`create_app`, authentication off, audit on, SQLite in
a temporary directory, prometheus_client in multiprocess mode, the JSON request log on, written
to /dev/null, `warm_up`), then calls it as WSGI with distinct order-sign bodies
(`bench/workload.py` `distinct_bodies`: every call cold) and, on the same bodies, the view's own
work alone: `decode_hook_body` + `answer_hook` within `bounded_work(HTTP_LIMITS)`. Reports the
median CPU time (`time.thread_time`) of each and their difference, the web layer's overhead; the
bare Flask echo app (`bench/echo_app.py`) called the same way is the floor of any Flask app.
`--profile` prints a cProfile of the WSGI calls instead.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging.config
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any


def _environ(body: bytes, path: str) -> dict[str, Any]:
    """Return a WSGI environ like gunicorn's for a POST of `body` to `path`."""
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "RAW_URI": path,
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1:8080",
        "HTTP_CONNECTION": "keep-alive",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def _wsgi_call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> bytes:
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status.append(line)

    result = app(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not status[0].startswith("200"):
        raise RuntimeError(f"{status[0]}: {content[:300]!r}")
    return content


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="distinct bodies, each sent once")
    parser.add_argument("--observations", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="cProfile the WSGI calls")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key")
    parser.add_argument("--only", nargs="*", help="pstats restrictions (regex, count)")
    arguments = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as data_dir:
        # As under gunicorn: set before prometheus_client is imported (it picks its value class).
        metrics_dir = os.path.join(data_dir, "prometheus")
        os.mkdir(metrics_dir)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        return _run(arguments, data_dir)


def _run(arguments: argparse.Namespace, data_dir: str) -> int:
    from bench import echo_app
    from bench.workload import distinct_bodies, encoded, order_sign_request
    from cds_service import create_app
    from cds_service.cli.serve import warm_up
    from cds_service.hooks.discovery import find_service
    from cds_service.hooks.evaluation import answer_hook
    from cds_service.hooks.lab_lane import decode_hook_body
    from cds_service.hooks.limits import HTTP_LIMITS, bounded_work
    from cds_service.web.request_log import logging_config
    from cds_service.web.state import state_of

    config = logging_config()
    config["handlers"]["stderr"]["stream"] = open(os.devnull, "w")  # noqa: SIM115
    logging.config.dictConfig(config)

    path = "/cds-services/mipomersen-order-sign"
    service = find_service("mipomersen-order-sign")
    assert service is not None
    app = create_app({"AUTH": "off", "DATA_DIR": data_dir}, environ={})
    state = state_of(app)
    bodies = distinct_bodies(arguments.observations, arguments.calls)
    warm = encoded(order_sign_request(arguments.observations, tag="warm-"))
    for _ in range(3):
        _wsgi_call(app, _environ(warm, path))
        _wsgi_call(echo_app.app, _environ(warm, path))
    warm_up()

    def core(body: bytes) -> object:
        with bounded_work(HTTP_LIMITS):
            return answer_hook(
                decode_hook_body(body, max_depth=state.settings.max_json_depth),
                service=service,
                settings=state.settings,
                now=state.clock(),
                new_id=state.new_id,
                fetcher=state.fetcher,
                limits=HTTP_LIMITS,
            )

    environs = [_environ(body, path) for body in bodies]
    if arguments.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for environ in environs:
            _wsgi_call(app, environ)
        profiler.disable()
        stats = pstats.Stats(profiler)
        restrictions = [int(r) if r.isdigit() else r for r in arguments.only or ["45"]]
        stats.sort_stats(arguments.sort).print_stats(*restrictions)
        return 0

    echo_environs = [_environ(body, path) for body in bodies]
    samples: dict[str, list[float]] = {"wsgi": [], "alone": [], "echo": []}
    for index, (body, environ, echo_environ) in enumerate(
        zip(bodies, environs, echo_environs, strict=True)
    ):
        steps: list[tuple[str, Callable[[Any], object], Any]] = [
            ("wsgi", partial(_wsgi_call, app), environ),
            ("alone", core, body),
            ("echo", partial(_wsgi_call, echo_app.app), echo_environ),
        ]
        # Alternate which goes first, so neither always finds the other's garbage.
        for name, step, argument in steps if index % 2 else reversed(steps):
            began = time.thread_time()
            step(argument)
            samples[name].append((time.thread_time() - began) * 1000)
    wsgi, alone, echo = samples["wsgi"], samples["alone"], samples["echo"]
    state.database.close()
    median = statistics.median
    overhead = [w - a for w, a in zip(wsgi, alone, strict=True)]
    lines = [
        f"{arguments.calls} cold calls, {arguments.observations} Observations, "
        f"{len(bodies[0]):,} bytes; CPU ms per call (median):",
        f"  WSGI call (app)                     {median(wsgi):7.3f}",
        f"  decode + answer_hook (bounded)      {median(alone):7.3f}",
        f"  web overhead (median of diffs)      {median(overhead):7.3f}",
        f"  web overhead (diff of medians)      {median(wsgi) - median(alone):7.3f}",
        f"  bare Flask echo (WSGI call)         {median(echo):7.3f}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
