"""Durations and date math as Kibana rules use them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from credwatch.rules.schedule_math import (
    DateMathError,
    format_duration,
    lookback,
    parse_date_math,
    parse_duration,
)

NOW = datetime(2026, 1, 31, 10, 17, 42, 500000, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("5m", timedelta(minutes=5)), ("30s", timedelta(seconds=30)), ("1h", timedelta(hours=1)),
    ("2d", timedelta(days=2)), (" 10m ", timedelta(minutes=10)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "5", "m", "-5m", "5M", "1.5h", "5 minutes", "0s",
                                  "36501d", "99999999999999999999d", "9" * 5000 + "s",
                                  "\u0665m", "5\u0665m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DateMathError):
        parse_duration(text)


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW),
    ("now-9m", NOW - timedelta(minutes=9)),
    ("now+1h", NOW + timedelta(hours=1)),
    ("now-1d-2h", NOW - timedelta(days=1, hours=2)),
    ("now-500ms", NOW - timedelta(milliseconds=500)),
    ("now-1M", datetime(2025, 12, 31, 10, 17, 42, 500000, tzinfo=UTC)),
    ("now+1M", datetime(2026, 2, 28, 10, 17, 42, 500000, tzinfo=UTC)),  # clamps to month end
    ("now-1y", datetime(2025, 1, 31, 10, 17, 42, 500000, tzinfo=UTC)),
    ("now/d", datetime(2026, 1, 31, tzinfo=UTC)),
    ("now-1d/h", datetime(2026, 1, 30, 10, tzinfo=UTC)),
    ("now/w", datetime(2026, 1, 26, tzinfo=UTC)),  # Monday
])
def test_date_math_resolves(text: str, expected: datetime) -> None:
    assert parse_date_math(text).resolve(NOW) == expected


@pytest.mark.parametrize("text", ["", "now-", "now-9", "now-9x", "2026-01-01", "now/q",
                                  "now - 9m"])
def test_bad_date_math(text: str) -> None:
    with pytest.raises(DateMathError):
        parse_date_math(text)


@pytest.mark.parametrize(("text", "position"), [
    ("now-99999999999y", 4),  # more than a Java int, as ES's Integer.parseInt
    ("now-" + "9" * 5000 + "m", 4),
    ("now-1d/2d", 6),
    ("2026-01-01||-1d", 0),  # a rule window is relative to now
])
def test_bad_rule_date_math_names_the_position(text: str, position: int) -> None:
    with pytest.raises(DateMathError) as info:
        parse_date_math(text)
    assert info.value.position == position
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("text", ["now-9000y", "now+8000y", "now-2147483647w"])
def test_windows_outside_years_1_to_9999_are_errors(text: str) -> None:
    with pytest.raises(DateMathError, match=r"outside the years 1 to 9999|supported range"):
        parse_date_math(text).resolve(NOW)


def test_rule_date_math_chains_and_rounds_like_kibana() -> None:
    assert parse_date_math("now-1d/d-1h").resolve(NOW) == datetime(2026, 1, 29, 23, tzinfo=UTC)
    assert parse_date_math("now-2H").resolve(NOW) == NOW - timedelta(hours=2)
    assert parse_date_math("now/M").resolve(NOW) == datetime(2026, 1, 1, tzinfo=UTC)


def test_lookback_is_window_minus_interval() -> None:
    assert lookback("5m", "now-9m") == timedelta(minutes=4)
    assert lookback("5m", "now-6m") == timedelta(minutes=1)
    assert lookback("1h", "now-1h", "now") == timedelta(0)
    with pytest.raises(DateMathError):
        parse_date_math("now-1M").offset()


def test_window_and_time_fields() -> None:
    from dataclasses import replace

    from credwatch.rules import default_rule
    from credwatch.rules.schedule_math import window

    rule = default_rule()
    assert window(rule.from_, rule.to, NOW) == (NOW - timedelta(minutes=9), NOW)
    assert rule.time_fields == ("event.ingested", "@timestamp")
    assert replace(rule, timestamp_override_fallback_disabled=True).time_fields == \
        ("event.ingested", None)
    assert replace(rule, timestamp_override=None).time_fields == ("@timestamp", None)
