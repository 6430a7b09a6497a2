"""`mipomersen-cds` commands over the stored records: exports, the report, purging, migrations.

    mipomersen-cds feedback export [--since ISO]   feedback items as JSON lines
    mipomersen-cds audit export [--since ISO]      audit records as JSON lines
    mipomersen-cds audit purge [--dry-run]         remove what is older than the retention
    mipomersen-cds report [--since ISO] [--format text|json]
    mipomersen-cds db upgrade                      migrate the database to this version

They read the same MIPOMERSEN_CDS_* settings as the service. Exit status: 0; 1 when the
database fails; 2 for a bad argument or setting.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from cds_service.cli.exits import EXIT_BAD_INPUT, InputError
from cds_service.errors import CdsServiceError
from cds_service.records.report import build_report, render_text
from cds_service.records.storage import (
    Database,
    describe_database_error,
    head_revision,
    open_database,
    upgrade,
)
from cds_service.records.storage.database import is_sqlite
from cds_service.records.storage.models import iso_instant
from cds_service.records.storage.repository import (
    audit_records,
    count_feedback_on_unknown_cards,
    feedback_records,
    issued_cards_with_feedback,
    purge_before,
)
from cds_service.settings import Settings, load_settings
from fhir_mappings import FhirMappingError, parse_fhir_datetime

EXIT_DATABASE = 1
# Commands may wait longer than a hook call for a lock or a long statement (a large purge).
COMMAND_TIMEOUT_SECONDS = 300.0

_SINCE_HELP = "only records from this instant on: an ISO 8601 date or date-time (UTC if no zone)"


def add_commands(commands: Any) -> None:
    """Add the `feedback`, `audit`, `report` and `db` commands to the CLI's subparsers."""
    feedback = commands.add_parser("feedback", help="export the feedback clinicians gave")
    feedback_commands = feedback.add_subparsers(required=True, metavar="ACTION")
    export = feedback_commands.add_parser(
        "export",
        help="print feedback items as JSON lines, in the order received",
        description="Print feedback items as JSON lines, in the order they were received.",
    )
    export.add_argument("--since", help=_SINCE_HELP + " (time received)")
    export.set_defaults(handler=_with_database(_export_feedback))

    audit = commands.add_parser("audit", help="export or purge the audit trail of hook calls")
    audit_commands = audit.add_subparsers(required=True, metavar="ACTION")
    export = audit_commands.add_parser(
        "export",
        help="print audit records as JSON lines, oldest first",
        description="Print the audit records of hook calls as JSON lines, oldest first.",
    )
    export.add_argument("--since", help=_SINCE_HELP)
    export.set_defaults(handler=_with_database(_export_audit))
    retention = Settings.variable("audit_retention_days")
    purge = audit_commands.add_parser(
        "purge",
        help=f"remove audit records and feedback older than {retention}",
        description=(
            "Remove audit records made, and feedback received, longer ago than "
            f"{retention} (default {Settings().audit_retention_days:g})."
        ),
    )
    purge.add_argument("--dry-run", action="store_true", help="count, remove nothing")
    purge.set_defaults(handler=_with_database(_purge))

    report = commands.add_parser(
        "report",
        help="cards shown, accepted and overridden per decision and rule",
        description=(
            "Per decision and rule: cards shown, accepted, overridden, without feedback, the "
            "override rate (overridden / shown) and the override reasons. A card counts once, "
            "with the last feedback about it."
        ),
    )
    report.add_argument("--since", help=_SINCE_HELP + " (time the card was issued)")
    report.add_argument("--format", choices=["text", "json"], default="text")
    report.set_defaults(handler=_with_database(_report))

    database = commands.add_parser("db", help="manage the database schema")
    database_commands = database.add_subparsers(required=True, metavar="ACTION")
    migrate = database_commands.add_parser(
        "upgrade",
        help="migrate the database to the schema of this version",
        description=(
            f"Migrate {Settings.variable('database_url')} to the schema of this version. Needed "
            "once per release for PostgreSQL; SQLite is migrated automatically on start."
        ),
    )
    migrate.set_defaults(handler=_upgrade)


Command = Callable[[argparse.Namespace, Settings, Database], None]


def _with_database(command: Command) -> Callable[[argparse.Namespace], int]:
    """Run `command` with the settings and an open database; turn failures into exit codes."""

    def run(arguments: argparse.Namespace) -> int:
        try:
            settings = load_settings(os.environ)
            url = settings.database_url
            _say_which_database(url)
            _require_existing_sqlite(url)
            with open_database(url, timeout_seconds=COMMAND_TIMEOUT_SECONDS) as database:
                command(arguments, settings, database)
        except InputError as error:
            return _fail(str(error), EXIT_BAD_INPUT)
        except CdsServiceError as error:
            return _fail(f"configuration error: {error}", EXIT_BAD_INPUT)
        except SQLAlchemyError as error:
            return _fail(f"database error: {describe_database_error(error)}", EXIT_DATABASE)
        return 0

    return run


def describe_database(url: str) -> str:
    """Return the database a URL names, for people: a SQLite file's path, else the URL."""
    parsed = make_url(url)
    if is_sqlite(parsed):
        return f"SQLite file {Path(parsed.database or '').absolute()}"
    return parsed.render_as_string(hide_password=True)  # never print a password


def _say_which_database(url: str) -> None:
    """Print on standard error which database the command uses (stdout stays the data)."""
    sys.stderr.write(
        f"mipomersen-cds: using {describe_database(url)} "
        f"({Settings.variable('database_url')}, else {Settings.variable('data_dir')})\n"
    )


def _require_existing_sqlite(url: str) -> None:
    """Refuse a SQLite file that does not exist, rather than report on a new, empty one."""
    parsed = make_url(url)
    if is_sqlite(parsed) and not Path(parsed.database or "").exists():
        raise InputError(
            f"no database at {Path(parsed.database or '').absolute()}: run the command where "
            f"the service runs, or set {Settings.variable('data_dir')} or "
            f"{Settings.variable('database_url')} to the service's database "
            "(`mipomersen-cds db upgrade` creates a new one)"
        )


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment, _ = parse_fhir_datetime(text, "--since")
    except FhirMappingError:
        raise InputError(
            f"--since {text!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01)"
        ) from None
    return moment


def _export_feedback(arguments: argparse.Namespace, _settings: Settings, db: Database) -> None:
    since = _since(arguments.since)
    with db.session() as session:
        _print_lines(item.to_json() for item in feedback_records(session, since=since))


def _export_audit(arguments: argparse.Namespace, _settings: Settings, db: Database) -> None:
    since = _since(arguments.since)
    with db.session() as session:
        _print_lines(record.to_json() for record in audit_records(session, since=since))


def _print_lines(items: Iterable[dict[str, Any]]) -> None:
    for item in items:
        sys.stdout.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")


def _report(arguments: argparse.Namespace, _settings: Settings, db: Database) -> None:
    since = _since(arguments.since)
    with db.session() as session:
        report = build_report(
            issued_cards_with_feedback(session, since=since),
            since=since,
            feedback_on_unknown_cards=count_feedback_on_unknown_cards(session, since=since),
        )
    if arguments.format == "json":
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(report) + "\n")


def _purge(arguments: argparse.Namespace, settings: Settings, db: Database) -> None:
    cutoff = datetime.now(UTC) - settings.audit_retention
    with db.session() as session:
        purged = purge_before(session, cutoff)
        if not arguments.dry_run:
            session.commit()
    verb = "Would remove" if arguments.dry_run else "Removed"
    sys.stdout.write(
        f"{verb} {purged.audit_records} audit records and {purged.feedback} feedback items "
        f"older than {iso_instant(cutoff)} "
        f"(retention {settings.audit_retention.days} days, "
        f"{Settings.variable('audit_retention_days')})\n"
    )


def _upgrade(_arguments: argparse.Namespace) -> int:
    try:
        settings = load_settings(os.environ)
        _say_which_database(settings.database_url)
        upgrade(settings.database_url)
    except CdsServiceError as error:
        return _fail(f"configuration error: {error}", EXIT_BAD_INPUT)
    except SQLAlchemyError as error:
        return _fail(f"database error: {describe_database_error(error)}", EXIT_DATABASE)
    sys.stdout.write(f"database schema at revision {head_revision()} (current)\n")
    return 0


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"mipomersen-cds: {message}\n")
    return status
