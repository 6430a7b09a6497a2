"""Fuzz the HTTP API from openapi.yaml with schemathesis, in process, with real JWTs.

schemathesis generates requests from the document (valid ones, and with `negative` mode invalid
ones), each signed with a fresh sandbox-shaped JWT for the URL it calls, and sends them to the
WSGI app with authentication required. A WSGI middleware counts every answer, including the
unauthenticated probes schemathesis sends to prove that authentication is enforced.

`tests/test_fuzz.py` runs a bounded number of examples in `make test`; `make fuzz` runs
`python -m tests.fuzzing --requests 10000` and prints how many requests were sent and how many
got a 5xx answer (the goal is none).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import BaseSchema, Case, CheckFunction, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cds_service import create_app
from tests.openapi_contract import OPENAPI_PATH
from tests.tokens import PUBLIC_URL, auth_settings, ec_key, rsa_key, sandbox_token

# Not `positive_data_acceptance`: a request valid for the document is still refused (400) when
# its `hook` is not the service's, a rule OpenAPI cannot tie to the path. Not
# `negative_data_rejection`: the service reads requests leniently (unknown fields, any
# hookInstance text), as CDS Hooks clients vary.
CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass
class StatusCounter:
    """WSGI middleware counting the status of every answer."""

    app: WsgiApp
    statuses: Counter[int] = field(default_factory=Counter)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def counting_start_response(status: str, *args: Any) -> Any:
            self.statuses[int(status.split(" ", 1)[0])] += 1
            return start_response(status, *args)

        return self.app(environ, counting_start_response)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)


def fuzz_app(data_dir: Path) -> tuple[Flask, StatusCounter]:
    """Return an app with authentication required (sandbox keys), and its answer counter."""
    app = create_app(auth_settings(data_dir, ec_key(), rsa_key()), environ={})
    counter = StatusCounter(app.wsgi_app)
    app.wsgi_app = counter  # type: ignore[method-assign]
    return app, counter


def load_schema(app: Flask) -> BaseSchema:
    """Load openapi.yaml for `app`, minting a fresh JWT for each generated request."""
    schema = schemathesis.openapi.from_path(OPENAPI_PATH)
    schema.app = app  # in process: requests go to the WSGI app, never to the network

    @schema.auth(refresh_interval=None)  # never cache: every jti may be used only once
    class SandboxJwt:
        def get(self, case: Case, context: Any) -> str:
            return sandbox_token(aud=PUBLIC_URL + case.formatted_path)

        def set(self, case: Case, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return schema


def run_schema(
    schema: BaseSchema,
    *,
    examples: int,
    mode: GenerationMode,
    seed: int,
    failures: list[str] | None = None,
) -> None:
    """Send `examples` generated requests; raise on a failed check unless `failures` collects it.

    Checks: no 5xx, status codes, media types, headers and bodies as documented, and
    authentication enforced on every operation that declares it.
    """

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate] if failures is not None else [Phase.generate, Phase.shrink],
    )
    @hypothesis.given(case=schema.as_strategy(mode, auth_storage=schema.auth))
    def send(case: Case) -> None:
        response = case.call()
        try:
            case.validate_response(response, checks=CHECKS)
        except AssertionError as error:
            if failures is None:
                raise
            failures.append(str(error).splitlines()[0] if str(error) else type(error).__name__)

    send()


def run_hostile_tokens(app: Flask, *, examples: int, seed: int) -> None:
    """Send discovery calls whose Authorization header is a mangled or random token."""
    valid = sandbox_token(aud=PUBLIC_URL + "/cds-services")
    # Only what HTTP can carry in a header: latin-1, no line breaks.
    header_text = st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=60)
    mangled = st.builds(_mangle, st.just(valid), st.integers(0, len(valid) - 1), header_text)
    scheme = st.sampled_from(["Bearer ", "bearer ", "Bearer  ", "", "Basic "])
    value = st.builds(
        str.__add__,
        scheme,
        mangled
        | header_text
        | st.from_regex(r"[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*", fullmatch=True),
    )

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(authorization=value)
    def send(authorization: str) -> None:
        response = app.test_client().get("/cds-services", headers={"Authorization": authorization})
        assert response.status_code == 401, response.status_code

    send()


def _mangle(token: str, position: int, insert: str) -> str:
    return token[:position] + insert + token[position + 1 :]


def main(argv: Sequence[str] | None = None) -> int:
    """Run at least `--requests` fuzzed requests; print the count of requests and of 5xx."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=10_000, help="minimum requests to send")
    parser.add_argument("--seed", type=int, default=None, help="first random seed")
    arguments = parser.parse_args(argv)
    seed = arguments.seed if arguments.seed is not None else random.randrange(2**32)
    started = time.monotonic()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as data_dir:
        app, counter = fuzz_app(Path(data_dir))
        schema = load_schema(app)
        batch = 0
        while counter.total < arguments.requests:
            remaining = arguments.requests - counter.total
            examples = max(10, min(500, remaining // 3))
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run_schema(
                    schema, examples=examples, mode=mode, seed=seed + batch, failures=failures
                )
            run_hostile_tokens(app, examples=examples // 2, seed=seed + batch)
            batch += 1
    elapsed = time.monotonic() - started
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(counter.statuses.items()))
    _print(f"seed: {seed}")
    _print(f"requests: {counter.total} in {elapsed:.0f} s ({statuses})")
    _print(f"5xx answers: {counter.server_errors}")
    _print(f"failed checks: {len(failures)}")
    for failure, count in Counter(failures).most_common(10):
        _print(f"  {count} x {failure}")
    return 1 if counter.server_errors or failures else 0


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
