"""The `mipomersen-cds` command: serve the CDS Hooks API, or evaluate files offline.

The commands over stored feedback and audit records live in `records_cli`; evaluating a corpus
(a directory, several files, JSON lines) in `corpus`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, TextIO

from cds_service.cli.corpus import corpus_files, run_corpus
from cds_service.cli.dev_token import add_command as add_dev_token_command
from cds_service.cli.exits import EXIT_BAD_INPUT, InputError
from cds_service.cli.records import add_commands as add_record_commands
from cds_service.cli.terminal import render_answer
from cds_service.errors import CdsServiceError, HttpError, PreconditionFailed
from cds_service.hooks.bundles import HOOK_SERVICES as _HOOK_SERVICES
from cds_service.hooks.bundles import bundle_to_hook_request
from cds_service.hooks.discovery import ServiceDefinition
from cds_service.hooks.evaluation import HookAnswer, answer_hook
from cds_service.hooks.fhir_client import FhirClient, build_session
from cds_service.hooks.request import decode_json_body
from cds_service.hooks.what_if import with_mipomersen_order
from cds_service.records.storage import open_database
from cds_service.settings import (
    Settings,
    load_settings,
    require_serving_settings,
    settings_help,
    settings_report,
)
from fhir_mappings import FhirMappingError, parse_fhir_datetime, preload_validators

# A date alone or a time without an offset would leave the instant to guess: refused.
_DATE_TIME_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})"
)

_DESCRIPTION = """\
Mipomersen (Kynamro) liver-safety CDS Hooks 2.0 service.

Settings come from environment variables (`mipomersen-cds settings` shows their values):
{settings}
"""

_EVALUATE_EPILOG = """\
FILE is either a CDS Hooks request (an object with "hook", "hookInstance", "context"...) or a
FHIR Bundle (collection, searchset or transaction, e.g. a Synthea patient). From a Bundle, draft
MedicationRequests become context.draftOrders and every other resource the prefetch; the hook
is order-sign when there are draft orders, patient-view otherwise, unless --hook says.
--add-mipomersen-order adds a mipomersen draft order (ATC C10AX11, authored at --now) to each
Bundle, asking "what if this patient started mipomersen today?".

One FILE: the card(s) as text (or the CDS Hooks response with --format json). Exit status: 0
with the card(s) or "No card" on standard output; 2 with a message on standard error when the
input is not usable (bad JSON, not CDS Hooks or FHIR, required data missing).

A directory (its *.json files, recursively), several FILEs or --format jsonl: one JSON line per
file on standard output, in one process:
  {"file", "decision", "reason", "rule", "values", "ms"}
decision is contraindicated, discontinue, withhold, repeat-test, monitor-closely, none (no card:
tests current and normal), not-involved (no mipomersen in the request), error (the file is not
usable; "error" says why, and the run goes on) or crash (a fault of this program; please
report it). A progress bar (on a terminal) and a table of decisions go to standard error.
Exit status: 0 when every file was evaluated; 1 when some file was not usable; 2 when nothing
could be evaluated (bad option, no files); 3 when some file hit a fault of this program.

With --fhir-server, prefetch keys the request lacks (or only began, with a `next` link) are
fetched from that FHIR server, as the service does for an EHR; --token-env names the variable
holding the bearer token.

Examples:
  mipomersen-cds evaluate examples/withhold-alt-5x-uln.json --now 2026-11-23T12:00:00Z
  mipomersen-cds evaluate patient-bundle.json --hook order-sign --format json
  mipomersen-cds evaluate synthea/fhir/ --add-mipomersen-order --now 2021-04-01T00:00:00Z \\
      > decisions.jsonl
  FHIR_TOKEN=... mipomersen-cds evaluate request.json --fhir-server https://ehr.example.org/fhir \\
      --token-env FHIR_TOKEN
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = arguments.handler
    return handler(arguments)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mipomersen-cds",
        description=_DESCRIPTION.format(settings=settings_help()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_installed_version()}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the HTTP service under gunicorn (a production WSGI server)",
        description="Run the CDS Hooks HTTP API under gunicorn.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    serve.add_argument(
        "--workers",
        type=int,
        help=f"worker processes (default: {Settings.variable('workers')}, else 2 per CPU core + 1)",
    )
    serve.add_argument(
        "--threads",
        type=int,
        help=f"threads per worker (default: {Settings.variable('threads')}, else 4)",
    )
    serve.set_defaults(handler=_serve)

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate CDS Hooks requests or FHIR Bundles from files and print the card(s)",
        description="Evaluate a CDS Hooks request or a FHIR Bundle and print the card(s);\n"
        "evaluate a directory or several files as JSON lines, one per file.",
        epilog=_EVALUATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="JSON file to read, - for stdin, or a directory of *.json files",
    )
    evaluate.add_argument(
        "--hook",
        choices=sorted(_HOOK_SERVICES),
        help="hook to evaluate a Bundle as (for a CDS Hooks request it must match its hook)",
    )
    evaluate.add_argument(
        "--now",
        help="evaluation instant as an ISO 8601 date-time with offset, e.g. "
        "2026-11-23T12:00:00Z; a date alone is refused (default: the clock)",
    )
    evaluate.add_argument(
        "--profile",
        choices=["label", "conservative"],
        help=f"rule profile (default: {Settings.variable('profile')}, else label)",
    )
    evaluate.add_argument(
        "--validate",
        choices=["consumed", "full"],
        help="FHIR validation of the resources the rules read: the elements they read, or "
        f"every element (default: {Settings.variable('fhir_validation')}, else consumed)",
    )
    evaluate.add_argument(
        "--fhir-server",
        metavar="URL",
        help="FHIR base URL to fetch what the request's prefetch lacks from (sets fhirServer; "
        f"https unless {Settings.variable('allow_http_fhir_server')}=true)",
    )
    evaluate.add_argument(
        "--token-env",
        metavar="VAR",
        help="name of an environment variable holding a bearer token for --fhir-server "
        "(the token itself never goes on the command line)",
    )
    evaluate.add_argument(
        "--add-mipomersen-order",
        action="store_true",
        help="add a mipomersen draft order for the Bundle's patient, authored at --now "
        "(what if this patient started today?); Bundles only",
    )
    evaluate.add_argument(
        "--format",
        choices=["text", "json", "jsonl"],
        help="text (default for one FILE) reads like the card an EHR shows; json is the CDS "
        "Hooks response body; jsonl (default for a directory or several FILEs) is one line "
        "per file",
    )
    evaluate.set_defaults(handler=_evaluate)
    shown = commands.add_parser(
        "settings",
        help="print every setting: its variable, value (secrets masked), default and meaning",
        description="Print every setting the service reads from the environment: its variable, "
        "its value here (secrets masked), its default and its meaning. Exit status 2 when a "
        "value is refused.",
    )
    shown.add_argument("--format", choices=["text", "json"], default="text")
    shown.set_defaults(handler=_settings)
    add_record_commands(commands)
    add_dev_token_command(commands)
    return parser


def _installed_version() -> str:
    try:
        return metadata.version("mipomersen-cds")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare source tree
        return "unknown (not installed)"


def _serve(arguments: argparse.Namespace) -> int:
    try:
        # Fail before forking workers, naming the variable; migrate SQLite (or check the
        # PostgreSQL schema) once, before the workers start.
        settings = load_settings(os.environ)
        require_serving_settings(settings)
        open_database(
            settings.database_url,
            timeout_seconds=settings.database_timeout_seconds,
            tolerate_outage=True,
        ).close()
    except CdsServiceError as error:
        _print(f"mipomersen-cds: configuration error: {error}", sys.stderr)
        return EXIT_BAD_INPUT
    from cds_service.cli.serve import run_gunicorn

    run_gunicorn(
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        threads=arguments.threads,
    )
    return 0


def _settings(arguments: argparse.Namespace) -> int:
    try:
        settings = load_settings(os.environ)
    except CdsServiceError as error:
        _print(f"mipomersen-cds: configuration error: {error}", sys.stderr)
        return EXIT_BAD_INPUT
    rows = settings_report(settings, given=os.environ)
    if arguments.format == "json":
        body = [row.to_json() for row in rows]
        _print(json.dumps(body, ensure_ascii=False, indent=2), sys.stdout)
        return 0
    for row in rows:
        origin = "set" if row.set else "not set"
        _print(f"{row.variable}={row.value}  ({origin}; default {row.default})", sys.stdout)
        _print(f"    {row.meaning}", sys.stdout)
    return 0


def _evaluate(arguments: argparse.Namespace) -> int:
    try:
        corpus = _is_corpus(arguments)
        overrides = {"PROFILE": arguments.profile} if arguments.profile else {}
        if arguments.validate:
            overrides["FHIR_VALIDATION"] = arguments.validate
        settings = load_settings(os.environ, overrides or None)
        now = _parse_now(arguments.now)
        if corpus:
            files = corpus_files(arguments.files)
            if not files:
                raise InputError("no *.json files found in " + ", ".join(arguments.files))
        answer = _answerer(arguments, settings, now)
        if corpus:
            preload_validators()  # once, not on the first file
            return run_corpus(
                files,
                answer=lambda raw: answer(raw).evaluation,
                describe=_describe,
                read=_read_input,
            ).exit_status
        answered = answer(_read_input(arguments.files[0]))
    except (CdsServiceError, FhirMappingError, OSError) as error:
        _print(f"mipomersen-cds: {_describe(error)}", sys.stderr)
        return EXIT_BAD_INPUT
    if arguments.format == "json":
        _print(json.dumps(answered.body, ensure_ascii=False, indent=2), sys.stdout)
    else:
        _print(render_answer(answered, terminal=sys.stdout.isatty()), sys.stdout)
    return 0


def _is_corpus(arguments: argparse.Namespace) -> bool:
    """Return whether the output is JSON lines: a directory, several files or --format jsonl."""
    several = len(arguments.files) > 1 or any(os.path.isdir(name) for name in arguments.files)
    if several and arguments.format in ("text", "json"):
        raise InputError(
            f"--format {arguments.format} is for one FILE; a directory or several FILEs give "
            "JSON lines (--format jsonl)"
        )
    if "-" in arguments.files and (several or arguments.format == "jsonl"):
        raise InputError("- (stdin) is for one request; name the files instead")
    if arguments.add_mipomersen_order and arguments.hook == "patient-view":
        raise InputError("--add-mipomersen-order adds an order: use order-sign or order-select")
    return several or arguments.format == "jsonl"


def _answerer(
    arguments: argparse.Namespace, settings: Settings, now: datetime
) -> Callable[[bytes], HookAnswer]:
    """Return the function that answers one file's bytes with these options."""
    fetcher = None
    token = None
    if arguments.fhir_server:
        token = _token(arguments.token_env)
        fetcher = FhirClient(build_session(settings), settings)

    def answer(raw: bytes) -> HookAnswer:
        body = decode_json_body(raw)
        if arguments.add_mipomersen_order:
            body = _with_what_if_order(body, now)
        service, request_body = _as_hook_request(body, arguments.hook)
        if arguments.fhir_server:
            request_body = _with_fhir_server(request_body, arguments.fhir_server, token)
        return answer_hook(
            request_body,
            service=service,
            settings=settings,
            now=now,
            new_id=_new_id,
            fetcher=fetcher,
        )

    return answer


def _with_what_if_order(body: Any, now: datetime) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise InputError("--add-mipomersen-order needs a FHIR Bundle (a patient's resources)")
    return with_mipomersen_order(body, now)


def _token(variable: str | None) -> str | None:
    if variable is None:
        return None
    token = os.environ.get(variable)
    if not token:
        raise InputError(f"--token-env {variable}: that environment variable is not set")
    return token


def _with_fhir_server(body: dict[str, Any], url: str, token: str | None) -> dict[str, Any]:
    """Return the request with `fhirServer` (and a bearer token) for fetching missing data."""
    body = {**body, "fhirServer": url}
    if token is not None:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "mipomersen-cds-cli",
        }
    return body


def _new_id() -> str:
    return str(uuid.uuid4())


def _parse_now(text: str | None) -> datetime:
    """Return the evaluation instant: a full date-time with an offset, nothing less."""
    if text is None:
        return datetime.now(UTC)
    problem = f"--now {text!r} is not an ISO 8601 date-time with offset (e.g. 2026-11-23T12:00:00Z)"
    if not _DATE_TIME_WITH_OFFSET.fullmatch(text):
        raise InputError(problem)
    try:
        moment, _ = parse_fhir_datetime(text, "--now")
    except FhirMappingError:
        raise InputError(problem) from None
    return moment


def _read_input(name: str) -> bytes:
    if name == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(name, "rb") as handle:
            data = handle.read()
    if not data.strip():
        where = "standard input" if name == "-" else name
        raise InputError(f"{where} is empty: give a CDS Hooks request or a FHIR Bundle as JSON")
    return data


def _describe(error: Exception) -> str:
    if isinstance(error, PreconditionFailed):
        keys = ", ".join(error.missing_keys)
        return f"cannot evaluate: {error} (prefetch {keys}); include the missing data in the file"
    if isinstance(error, HttpError):
        where = f" (at {error.path})" if error.path else ""
        return f"invalid input: {error}{where}"
    if isinstance(error, OSError):
        return f"cannot read {error.filename or 'input'}: {error.strerror or error}"
    return str(error)


def _as_hook_request(body: Any, hook: str | None) -> tuple[ServiceDefinition, Any]:
    """Return the service and CDS Hooks request body for a decoded input file."""
    if not isinstance(body, dict):
        raise InputError("input must be a JSON object: a CDS Hooks request or a FHIR Bundle")
    if body.get("resourceType") == "Bundle":
        return bundle_to_hook_request(body, hook)
    if "resourceType" in body:
        raise InputError(
            f"input is a FHIR {body['resourceType']!s:.40}, not a Bundle or a CDS Hooks request"
        )
    sent_hook = body.get("hook")
    service = _HOOK_SERVICES.get(sent_hook) if isinstance(sent_hook, str) else None
    if service is None:
        raise InputError(
            "input has no supported 'hook' (expected one of "
            + ", ".join(sorted(_HOOK_SERVICES))
            + ")"
        )
    if hook is not None and hook != sent_hook:
        raise InputError(f"--hook {hook} does not match the request's hook {sent_hook}")
    return service, body


def _print(text: str, stream: TextIO) -> None:
    stream.write(text + "\n")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
