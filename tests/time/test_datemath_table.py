"""Date math against Elasticsearch's documented results.

Each row is (expression, bound, now, expected instant). ``bound`` is the range
parameter the value is used in: ES rounds ``gt``/``lte`` up (to the last
millisecond of the unit, ``roundUp``) and ``gte``/``lt`` down. Sources:

* ES "Date math" (common options): ``now+1h``, ``now-1h``, ``now-1h/d`` with
  now = 2001-01-01 12:00:00, and ``2001-02-01||+1M/d`` (written with the
  ``date`` field's default format here instead of ``yyyy.MM.dd``);
* ES range query, "Date math and rounding": ``2014-11-18||/M`` for gt, gte, lt, lte;
* ES range query, "Missing date components": the round-up parser fills a
  missing month/day with 01 and time with 23:59:59.999 (``gt 2099-12`` is
  ``2099-12-01T23:59:59.999``);
* java.time arithmetic ES uses (``plusMonths``/``plusYears`` clamp the day),
  ``/w`` rounding to Monday, ``H`` = ``h``, an omitted amount meaning 1, and
  the date before ``||`` never rounded up (``JavaDateMathParser``).
"""

from __future__ import annotations

import pytest

from credwatch.timemath import format_ms, parse_date_bounds_ms, parse_date_math

DOCS_NOW = "2001-01-01T12:00:00.000Z"  # the ES date-math docs' example clock
SAT = "2026-01-31T10:17:42.500Z"  # a Saturday, the last day of a 31-day month
LEAP = "2024-02-29T23:59:59.999Z"  # the last millisecond of a leap day

TABLE: list[tuple[str, str, str, str]] = [
    # ES docs, "Date math"
    ("now", "gte", DOCS_NOW, "2001-01-01T12:00:00.000Z"),
    ("now+1h", "gte", DOCS_NOW, "2001-01-01T13:00:00.000Z"),
    ("now-1h", "gte", DOCS_NOW, "2001-01-01T11:00:00.000Z"),
    ("now-1h/d", "gte", DOCS_NOW, "2001-01-01T00:00:00.000Z"),
    ("now-1h/d", "lte", DOCS_NOW, "2001-01-01T23:59:59.999Z"),
    ("2001-02-01||+1M/d", "gte", DOCS_NOW, "2001-03-01T00:00:00.000Z"),
    # ES range query, "Date math and rounding"
    ("2014-11-18||/M", "gt", DOCS_NOW, "2014-11-30T23:59:59.999Z"),
    ("2014-11-18||/M", "gte", DOCS_NOW, "2014-11-01T00:00:00.000Z"),
    ("2014-11-18||/M", "lt", DOCS_NOW, "2014-11-01T00:00:00.000Z"),
    ("2014-11-18||/M", "lte", DOCS_NOW, "2014-11-30T23:59:59.999Z"),
    # ES range query, "Missing date components"
    ("2099-12", "gt", DOCS_NOW, "2099-12-01T23:59:59.999Z"),
    ("2099-12", "gte", DOCS_NOW, "2099-12-01T00:00:00.000Z"),
    ("2024", "lte", DOCS_NOW, "2024-01-01T23:59:59.999Z"),
    ("2024-05-01", "lte", DOCS_NOW, "2024-05-01T23:59:59.999Z"),
    ("2024-05-01", "gt", DOCS_NOW, "2024-05-01T23:59:59.999Z"),
    ("2024-05-01", "lt", DOCS_NOW, "2024-05-01T00:00:00.000Z"),
    ("2024-05-01T10", "lte", DOCS_NOW, "2024-05-01T10:59:59.999Z"),
    ("2024-05-01T10:30", "lte", DOCS_NOW, "2024-05-01T10:30:59.999Z"),
    ("2024-05-01T10:30:15", "lte", DOCS_NOW, "2024-05-01T10:30:15.999Z"),
    ("2024-05-01T10:30:15.5", "lte", DOCS_NOW, "2024-05-01T10:30:15.500Z"),
    ("2024-05-01T02:00:00+02:00", "gte", DOCS_NOW, "2024-05-01T00:00:00.000Z"),
    ("1714521600000", "lte", DOCS_NOW, "2024-05-01T00:00:00.000Z"),
    # `now` rounded per direction
    ("now/d", "gte", SAT, "2026-01-31T00:00:00.000Z"),
    ("now/d", "lt", SAT, "2026-01-31T00:00:00.000Z"),
    ("now/d", "gt", SAT, "2026-01-31T23:59:59.999Z"),
    ("now/d", "lte", SAT, "2026-01-31T23:59:59.999Z"),
    ("now/h", "gte", SAT, "2026-01-31T10:00:00.000Z"),
    ("now/h", "lte", SAT, "2026-01-31T10:59:59.999Z"),
    ("now/m", "gte", SAT, "2026-01-31T10:17:00.000Z"),
    ("now/s", "lte", SAT, "2026-01-31T10:17:42.999Z"),
    ("now/w", "gte", SAT, "2026-01-26T00:00:00.000Z"),
    ("now/w", "lte", SAT, "2026-02-01T23:59:59.999Z"),
    ("now/y", "gte", SAT, "2026-01-01T00:00:00.000Z"),
    ("now/y", "lte", SAT, "2026-12-31T23:59:59.999Z"),
    ("now/1d", "gte", SAT, "2026-01-31T00:00:00.000Z"),
    # calendar months and years
    ("now-1M", "gte", SAT, "2025-12-31T10:17:42.500Z"),
    ("now+1M", "gte", SAT, "2026-02-28T10:17:42.500Z"),
    ("now+1M-1M", "gte", SAT, "2026-01-28T10:17:42.500Z"),
    ("now-1M/M", "gte", SAT, "2025-12-01T00:00:00.000Z"),
    ("now-1M/M", "lte", SAT, "2025-12-31T23:59:59.999Z"),
    ("now-2y/y", "gte", SAT, "2024-01-01T00:00:00.000Z"),
    ("now/M", "lte", LEAP, "2024-02-29T23:59:59.999Z"),
    ("now+1y", "gte", LEAP, "2025-02-28T23:59:59.999Z"),
    ("now-4y", "gte", LEAP, "2020-02-29T23:59:59.999Z"),
    ("2024-01-31||+1M/d", "gte", DOCS_NOW, "2024-02-29T00:00:00.000Z"),
    ("2024-01-31||+1M/d", "lte", DOCS_NOW, "2024-02-29T23:59:59.999Z"),
    ("2023-01-31||+1M", "gte", DOCS_NOW, "2023-02-28T00:00:00.000Z"),
    ("2000-02-29||+100y", "gte", DOCS_NOW, "2100-02-28T00:00:00.000Z"),
    # chains, units and amounts
    ("now-1d-2h", "gte", SAT, "2026-01-30T08:17:42.500Z"),
    ("now-1d-2H", "gte", SAT, "2026-01-30T08:17:42.500Z"),
    ("now-1w", "gte", SAT, "2026-01-24T10:17:42.500Z"),
    ("now+d", "gte", SAT, "2026-02-01T10:17:42.500Z"),
    ("now/d+1h", "gte", SAT, "2026-01-31T01:00:00.000Z"),
    ("now/d+1h", "lte", SAT, "2026-02-01T00:59:59.999Z"),
    ("now-90s", "gte", SAT, "2026-01-31T10:16:12.500Z"),
    ("2024-05-01||", "lte", DOCS_NOW, "2024-05-01T00:00:00.000Z"),
    ("1714521600000||+1d", "gte", DOCS_NOW, "2024-05-02T00:00:00.000Z"),
    ("now-9999y", "gte", SAT, "-007973-01-31T10:17:42.500Z"),
]


def _ms(iso: str) -> int:
    bounds = parse_date_bounds_ms(iso)
    assert bounds is not None
    return bounds[0]


@pytest.mark.parametrize(("expr", "bound", "now", "expected"), TABLE,
                         ids=[f"{e}|{b}" for e, b, _, _ in TABLE])
def test_es_documented_result(expr: str, bound: str, now: str, expected: str) -> None:
    parsed = parse_date_math(expr)
    got = parsed.resolve_ms(_ms(now), round_up=bound in ("gt", "lte"))
    assert format_ms(got) == expected


def test_table_is_big_enough() -> None:
    assert len(TABLE) >= 40
    assert len({(e, b, n) for e, b, n, _ in TABLE}) == len(TABLE)


@pytest.mark.parametrize(("expr", "position", "message"), [
    ("now-", 4, "truncated"),
    ("now-1", 5, "truncated"),
    ("now/", 4, "truncated"),
    ("now/2d", 3, "single unit"),
    ("now-1x", 5, "unit 'x'"),
    ("now-1ms", 6, "operator 's'"),  # ES has no ms unit (Kibana rule schedules do)
    ("now - 1d", 3, "operator ' '"),
    ("nowish", 3, "operator 'i'"),
    ("now-99999999999y", 4, "too large"),
    ("now-2147483648d", 4, "too large"),
    ("now-300000000y", 0, "64-bit"),
    ("now+999990000y+9999y", 14, "supported range"),
    ("||+1d", 0, "before ||"),
    ("2024-13-01", 0, "not a date"),
    ("2024-02-30", 0, "not a date"),
    ("2023-02-29||+1d", 0, "before ||"),
    ("24:00", 0, "not a date"),
    ("2024-05-01T24:00", 0, "not a date"),
    ("2024-05-01||+1d/", 16, "truncated"),
    ("now" + "+1d" * 65, 3 + 64 * 3, "more than 64"),
])
def test_rejected_like_es_with_the_position(expr: str, position: int, message: str) -> None:
    from credwatch.timemath import DateMathError

    with pytest.raises(DateMathError) as info:
        parse_date_math(expr).resolve_ms(_ms(SAT))
    assert info.value.position == position and message in info.value.message, info.value
    assert "^" in info.value.render()


def test_amount_fits_a_java_int() -> None:
    got = parse_date_math("now-2147483647s").resolve_ms(_ms(SAT))
    assert format_ms(got) == "1958-01-13T07:03:35.500Z"
