"""Parse FHIR R4 `date`, `dateTime` and `instant` strings (FHIR R4 §2.24.0.1 primitive types).

The rules compare times to day precision at least, so a year ("2017") or a year-month
("2017-06") is no usable date. A date alone is midnight UTC and flagged `date_only`. A time
without an offset is invalid FHIR; it is read as UTC rather than dropped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from fhir_mappings._errors import FhirMappingError

_DATE_TIME = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def parse_fhir_datetime(text: str, path: str) -> tuple[datetime, bool]:
    """Return `(moment in UTC, date_only)` for a FHIR date, dateTime or instant.

    Raise `FhirMappingError` at `path` when the text is not one, or has less than day precision.
    """
    match = _DATE_TIME.fullmatch(text.strip())
    if match is None:
        raise FhirMappingError(path, "not a FHIR date or dateTime")
    if match["day"] is None:
        raise FhirMappingError(path, "date has less than day precision")
    try:
        if match["hour"] is None:
            day = datetime(int(match["year"]), int(match["month"]), int(match["day"]), tzinfo=UTC)
            return day, True
        moment = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            min(int(match["second"]), 59),  # a leap second (":60") is valid FHIR
            int((match["fraction"] or "0")[:6].ljust(6, "0")),
            tzinfo=_zone(match["zone"]),
        )
    except ValueError as error:  # e.g. month 13, or an offset beyond ±24 h
        raise FhirMappingError(path, "not a valid calendar date or time") from error
    try:
        return moment.astimezone(UTC), False
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is past year 9999 in UTC
        raise FhirMappingError(path, "outside years 0001-9999 once converted to UTC") from None


def _zone(text: str | None) -> timezone:
    """Return the time zone of an offset such as `Z` or `+05:30`; no offset means UTC."""
    if text is None or text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = text[1:].split(":")
    return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
