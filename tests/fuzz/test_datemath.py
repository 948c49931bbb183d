"""Fuzz targets: the date-math, ES date and duration parsers, and date queries compiled on them.

Random text (and text built from date-math pieces, so the parser gets deep)
never raises anything but credwatch's own errors; a parsed chain stays within
its operation cap and resolves (or fails with DateMathError) in both rounding
directions at any `now`, including far outside the datetime range.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from credwatch.backends.python import compile_query
from credwatch.errors import CredwatchError
from credwatch.timemath import (
    LONG_MAX,
    LONG_MIN,
    MAX_OPS,
    DateMathError,
    parse_date_math,
    parse_datetime,
    parse_duration,
    parse_instant,
    parse_rule_date_math,
)

from . import corpus, fuzz

PIECES = st.sampled_from(["now", "||", "+", "-", "/", "1", "9", "0", "2147483647", "99999999999",
                          "y", "M", "w", "d", "h", "H", "m", "s", "ms", "2024", "-05", "-31",
                          "T23", ":59", ".999", "Z", "+02:00", " ", "x", "\u0663", ""])
DATE_MATH = st.lists(PIECES, max_size=40).map("".join)
ANY_TEXT = st.text(max_size=120)
NOWS = st.integers(min_value=LONG_MIN, max_value=LONG_MAX)


def _parse_and_resolve(text: str, now: int) -> None:
    for parse in (parse_date_math, parse_rule_date_math):
        try:
            expr = parse(text)
        except DateMathError:
            continue
        assert len(expr.ops) <= MAX_OPS
        for up in (False, True):
            try:
                got = expr.resolve_ms(now, up)
            except DateMathError:
                continue
            assert LONG_MIN <= got <= LONG_MAX


@fuzz
@given(st.one_of(DATE_MATH, ANY_TEXT), NOWS)
def test_date_math_never_crashes(text: str, now: int) -> None:
    _parse_and_resolve(text, now)


def test_corpus_date_math() -> None:
    for data in corpus("datemath"):
        _parse_and_resolve(data.decode("utf-8", "replace"), 0)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), DATE_MATH, ANY_TEXT,
                    st.integers(min_value=0, max_value=3000).map(lambda n: "9" * n))


@fuzz
@given(SCALARS)
def test_event_dates_never_crash(value: Any) -> None:
    ms = parse_instant(value)
    assert ms is None or LONG_MIN <= ms <= LONG_MAX
    parse_datetime(value)


@fuzz
@given(st.one_of(ANY_TEXT, st.lists(PIECES, max_size=8).map("".join)))
def test_durations_never_crash(text: str) -> None:
    with contextlib.suppress(DateMathError):
        assert parse_duration(text).total_seconds() > 0


@fuzz
@given(st.one_of(DATE_MATH, ANY_TEXT), st.sampled_from([":", " > ", " >= ", " < ", " <= "]),
       SCALARS)
def test_date_queries_never_crash(value: str, op: str, event_value: Any) -> None:
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    try:
        matcher = compile_query(f"@timestamp{op}{quoted}")
    except CredwatchError:
        return
    assert matcher.matches({"@timestamp": event_value}) in (True, False)
