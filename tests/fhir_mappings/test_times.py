"""parse_fhir_datetime: FHIR R4 date, dateTime and instant strings to aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_mappings import FhirMappingError, parse_fhir_datetime


@pytest.mark.parametrize(
    ("text", "expected", "date_only"),
    [
        pytest.param("2005-07-07", datetime(2005, 7, 7, tzinfo=UTC), True, id="date-only"),
        pytest.param(
            "2017-06-24T13:09:09+00:00",
            datetime(2017, 6, 24, 13, 9, 9, tzinfo=UTC),
            False,
            id="offset-zero",
        ),
        pytest.param(
            "2017-06-24T13:09:09Z", datetime(2017, 6, 24, 13, 9, 9, tzinfo=UTC), False, id="zulu"
        ),
        pytest.param(
            "2017-06-24T01:30:00+05:30",
            datetime(2017, 6, 23, 20, 0, tzinfo=UTC),
            False,
            id="positive-offset-crosses-midnight",
        ),
        pytest.param(
            "2017-06-24T22:00:00-04:00",
            datetime(2017, 6, 25, 2, 0, tzinfo=UTC),
            False,
            id="negative-offset",
        ),
        pytest.param(
            "2017-06-24T13:09:09.684+00:00",
            datetime(2017, 6, 24, 13, 9, 9, 684000, tzinfo=UTC),
            False,
            id="milliseconds",
        ),
        pytest.param(
            "2017-06-24T13:09:09.123456789Z",
            datetime(2017, 6, 24, 13, 9, 9, 123456, tzinfo=UTC),
            False,
            id="nanoseconds-cut",
        ),
        pytest.param(
            "2016-12-31T23:59:60Z",
            datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC),
            False,
            id="leap-second",
        ),
        pytest.param(
            "2017-06-24T13:09:09",
            datetime(2017, 6, 24, 13, 9, 9, tzinfo=UTC),
            False,
            id="naive-time-read-as-utc",
        ),
        pytest.param(" 2005-07-07 ", datetime(2005, 7, 7, tzinfo=UTC), True, id="padded"),
    ],
)
def test_parses_to_aware_utc(text: str, expected: datetime, date_only: bool) -> None:
    moment, is_date_only = parse_fhir_datetime(text, "x")

    assert moment == expected
    assert moment.tzinfo is UTC
    assert is_date_only is date_only


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("2017", "less than day precision", id="year"),
        pytest.param("2017-06", "less than day precision", id="year-month"),
        pytest.param("2017-06-24T13:09", "not a FHIR date", id="no-seconds"),
        pytest.param("24/06/2017", "not a FHIR date", id="other-format"),
        pytest.param("", "not a FHIR date", id="empty"),
        pytest.param("2017-13-01", "not a valid calendar", id="month-13"),
        pytest.param("2017-02-30", "not a valid calendar", id="february-30"),
        pytest.param("2017-06-24T25:00:00Z", "not a valid calendar", id="hour-25"),
        pytest.param("2017-06-24T10:00:00+25:00", "not a valid calendar", id="offset-25h"),
    ],
)
def test_unusable_text_raises_with_path(text: str, message: str) -> None:
    with pytest.raises(FhirMappingError, match=message) as raised:
        parse_fhir_datetime(text, "prefetch.labs.entry[0].resource.effectiveDateTime")

    assert raised.value.path == "prefetch.labs.entry[0].resource.effectiveDateTime"
