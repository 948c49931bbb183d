"""ES ``date`` values (strict_date_optional_time || epoch_millis) and the datetime edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credwatch.alerts.build import iso_ms, parse_event_time
from credwatch.timemath import (
    DATETIME_MAX_MS,
    DATETIME_MIN_MS,
    LONG_MAX,
    civil_from_days,
    clamp_datetime,
    datetime_to_ms,
    days_from_civil,
    format_ms,
    ms_to_datetime,
    parse_datetime,
    parse_instant,
    shift,
)

MAY1 = 1714521600000  # 2024-05-01T00:00:00Z


@pytest.mark.parametrize(("value", "expected"), [
    ("2024-05-01T00:00:00Z", MAY1),
    ("2024-05-01T00:00:00z", MAY1),
    ("2024-05-01 00:00:00Z", MAY1),  # a space for T, as today
    ("2024-05-01T00:00:00.123456789Z", MAY1 + 123),  # a date field keeps milliseconds
    ("2024-05-01T00:00:00,5Z", MAY1 + 500),
    ("2024-05-01T02:00:00+02:00", MAY1),
    ("2024-05-01T02:00:00+0200", MAY1),
    ("2024-05-01T02:00:00+02", MAY1),
    ("2024-04-30T06:00:00-18:00", MAY1),  # java.time's widest offset
    ("2024-05-01T00:00:00", MAY1),  # no zone: UTC (the detection engine's Zulu)
    ("2024-05-01", MAY1),  # a partial date is its first millisecond
    ("2024-05", MAY1),
    ("  2024-05-01T00:00:00Z  ", MAY1),
    (str(MAY1), MAY1),  # epoch_millis as a string
    ("123", 123),  # not a 4-digit year: epoch millis
    ("2024", 1704067200000),  # 4 digits: a year
    (MAY1, MAY1),
    (float(MAY1) + 0.7, MAY1),
    (99999999999999999, 99999999999999999),  # year 3170843: ES stores it
    (-99999999999999999, -99999999999999999),
    (LONG_MAX, LONG_MAX),
    ("0001-01-01T00:00:00Z", DATETIME_MIN_MS),
    ("9999-12-31T23:59:59.999Z", DATETIME_MAX_MS),
])
def test_dates_es_indexes(value: Any, expected: int) -> None:
    assert parse_instant(value) == expected


@pytest.mark.parametrize("value", [
    None, True, False, [], {}, "", "now", "now-1d", "2024-05-01||+1d",  # no date math in events
    "2024-13-01", "2024-02-30", "2023-02-29", "0000-01-01", "2024-05-01T24:00",
    "2024-05-01T23:60", "2024-05-01T23:59:60", "2024-05-01T00:00:00+18:01",
    "2024-05-01T00:00:00+99:00", "2024-05-01T00:00:00+02:60", "20240501T000000Z",
    "\u0662\u0660\u0662\u0664-05-01", "\uff11\uff12\uff13",  # non-ASCII digits
    "-5", "1.5", "1e3", "abc",
    LONG_MAX + 1, "9" * 20, "1" + "0" * 5000,
    float("inf"), float("-inf"), float("nan"), 1e300,
    "2024-05-01T00:00:00." + "9" * 2000,
])
def test_values_es_would_not_index(value: Any) -> None:
    assert parse_instant(value) is None
    assert parse_datetime(value) is None
    assert parse_event_time(value) is None


def test_an_integer_of_thousands_of_digits_is_not_a_date() -> None:
    huge = 10**5000  # str(huge) itself raises ValueError: nothing may format it
    assert parse_instant(huge) is None and parse_event_time(huge) is None


def test_valid_dates_beyond_datetime_are_none_as_datetimes() -> None:
    assert parse_instant(99999999999999999) is not None
    assert parse_datetime(99999999999999999) is None
    assert ms_to_datetime(DATETIME_MAX_MS + 1) is None and ms_to_datetime(DATETIME_MIN_MS - 1) is None


def test_edges_convert_clamp_and_format() -> None:
    top = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    bottom = datetime(1, 1, 1, tzinfo=UTC)
    assert datetime_to_ms(top) == DATETIME_MAX_MS and datetime_to_ms(bottom) == DATETIME_MIN_MS
    assert shift(top, timedelta(minutes=2)) == top
    assert shift(bottom, -timedelta(minutes=2)) == bottom
    assert shift(top, -timedelta(minutes=2)) == top - timedelta(minutes=2)
    assert clamp_datetime(10**30) == top and clamp_datetime(-(10**30)) == bottom
    assert iso_ms(bottom) == "0001-01-01T00:00:00.000Z"  # strftime wrote "1-01-01"
    assert iso_ms(datetime(999, 3, 4, 5, 6, 7, 8999)) == "0999-03-04T05:06:07.008Z"
    assert format_ms(99999999999999999) == "+3170843-11-07T09:46:39.999Z"  # java.time: same
    assert format_ms(-1) == "1969-12-31T23:59:59.999Z"
    local = datetime(2024, 5, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert datetime_to_ms(local) == MAY1 and datetime_to_ms(datetime(2024, 5, 1)) == MAY1


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
def test_integer_calendar_agrees_with_datetime(naive: datetime) -> None:
    t = naive.replace(tzinfo=UTC, microsecond=naive.microsecond // 1000 * 1000)
    ms = datetime_to_ms(t)
    assert ms_to_datetime(ms) == t
    assert parse_instant(iso_ms(t)) == ms
    days = ms // 86_400_000
    assert civil_from_days(days) == (t.year, t.month, t.day)
    assert days_from_civil(t.year, t.month, t.day) == days


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_civil_round_trip_far_beyond_datetime(days: int) -> None:
    assert days_from_civil(*civil_from_days(days)) == days


COMMON_FORM = st.builds(
    lambda y, mo, d, h, mi, s, frac: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}Z",
    st.integers(0, 9999), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
    st.integers(0, 61), st.integers(0, 61),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,9}", fullmatch=True)))


@given(COMMON_FORM)
def test_cached_common_form_agrees_with_the_general_parser(text: str) -> None:
    """``2026-12-01T10:00:00.123Z`` takes a cached fast path; it must answer as the parser does."""
    from credwatch.timemath import parse_date_bounds_ms

    bounds = parse_date_bounds_ms(text)
    expected = bounds[0] if bounds else None
    assert parse_instant(text) == expected
    assert parse_instant(text) == expected  # the second time from the cache
