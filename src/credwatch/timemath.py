"""Time for every layer: Elasticsearch date math, ES ``date`` parsing, rule durations.

This is the lowest layer of credwatch (it imports only :mod:`credwatch.errors`),
so the in-process evaluator, the SQL targets, the ES DSL target, the rule
loader, the scheduler and triage all agree on what a time means.

Instants are plain ``int`` epoch milliseconds, as an Elasticsearch ``date``
field stores them. Python ints never overflow, so a date of year 9999, an epoch
of 10^17 ms or ``now-9999y`` is an ordinary number here; only the edges that
turn an instant into a :class:`~datetime.datetime` (years 1..9999) clamp it or
return ``None``. Nothing in this module raises ``OverflowError`` or
``ValueError`` to a caller: bad input is a :class:`DateMathError` (with the
position of the problem) or ``None``.

Date math follows Elasticsearch's ``JavaDateMathParser``:

* an anchor, ``now`` or an absolute date followed by ``||`` (``2024-01-31||``);
  a plain date with no ``||`` is a date, not math;
* then ``+N<unit>`` / ``-N<unit>`` / ``/<unit>`` operations, applied left to
  right; ``N`` may be omitted (``now-d`` is ``now-1d``) and must fit a Java
  ``int``; units ``y M w d h H m s`` (``H`` and ``h`` are both hours) and, for
  Kibana rule schedules only, ``ms``;
* months and years are calendar arithmetic that clamps the day (Jan 31 + 1M =
  Feb 28/29), days and weeks are whole UTC days;
* ``/unit`` rounds down to the start of the unit (weeks start on Monday); when
  rounding *up* (a ``gt``/``lte`` bound, or the ``lte`` half of ``f:value``)
  it goes to the last millisecond of the unit instead, as ES's ``roundUp``;
* a plain partial date rounds too: missing parts are the minimum rounding
  down, and rounding up ES fills a missing month and day with 01 and a missing
  time with 23:59:59.999 (``2024-05-01`` ends at ``23:59:59.999`` that day,
  ``2024-05`` at ``2024-05-01T23:59:59.999``); the date before ``||`` is
  never rounded up (ES parses it with ``roundUp=false``).

All rounding is in UTC: the detection engine sends ``time_zone: Zulu``.

``now`` is taken per evaluation: :func:`now_ms` reads the instant the engine
set with :func:`evaluating_at` for the current run tick or batch, and the wall
clock otherwise. Compiled matchers call it at evaluation time, not at compile
time, so a long ``run`` or ``watch`` never evaluates with a stale ``now``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from credwatch.errors import ConfigError, caret_excerpt

MS_SECOND = 1_000
MS_MINUTE = 60 * MS_SECOND
MS_HOUR = 60 * MS_MINUTE
MS_DAY = 24 * MS_HOUR
MS_WEEK = 7 * MS_DAY

#: Length in ms of the units with a fixed length (``M`` and ``y`` are calendar units).
FIXED_UNIT_MS: dict[str, int] = {
    "ms": 1, "s": MS_SECOND, "m": MS_MINUTE, "h": MS_HOUR, "H": MS_HOUR, "d": MS_DAY, "w": MS_WEEK,
}
CALENDAR_UNITS = frozenset({"M", "y"})

#: ES stores a date as a signed 64-bit count of milliseconds.
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1
#: java.time's year range: ES fails a query whose date math leaves it, so do we.
MAX_ABS_YEAR = 999_999_999
#: ES reads a date-math amount with ``Integer.parseInt``.
MAX_AMOUNT = 2**31 - 1
#: Longest date text parsed (ES has no limit; ours keeps input bounded).
MAX_TEXT = 1024
#: Most operations in one date-math chain (each costs a step at every new ``now``).
MAX_OPS = 64
#: Longest rule ``interval`` accepted (a century: anything longer is a typo).
MAX_DURATION = timedelta(days=36_500)


class DateMathError(ConfigError):
    """A date, duration or date-math expression that cannot be parsed or is out of range.

    ``text`` is the expression, ``position`` the 0-based offset of the problem
    in it; :meth:`render` adds a caret under that position.
    """

    def __init__(self, message: str, text: str | None = None, position: int = 0) -> None:
        self.message = message
        self.text = text
        self.position = position
        if text is None:  # durations and type errors carry their value in the message
            super().__init__(message)
            return
        shown = text if len(text) <= 80 else text[:77] + "..."
        super().__init__(f"invalid date math {shown!r} at position {position + 1}: {message}")

    def render(self) -> str:
        if not self.text or len(self.text) > 200:
            return str(self)
        return f"{self}\n{caret_excerpt(self.text, 1, self.position + 1)}"


# --- the proleptic Gregorian calendar on integers ----------------------------------------

def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, no overflow)."""
    # Howard Hinnant's algorithm: years start in March so the leap day is last.
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    return era * 146_097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719_468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """The (year, month, day) of a count of days since 1970-01-01."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def is_leap(year: int) -> bool:
    """Whether ``year`` is a Gregorian leap year (proleptic, any sign)."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    """Length of ``month`` (1-12) of ``year``."""
    if month == 2:
        return 29 if is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def year_of(ms: int) -> int:
    """The UTC year of an instant."""
    return civil_from_days(ms // MS_DAY)[0]


def add_months(ms: int, months: int) -> int:
    """``ms`` plus a number of calendar months, clamping the day (java.time ``plusMonths``)."""
    days, rest = divmod(ms, MS_DAY)
    year, month, day = civil_from_days(days)
    index = year * 12 + month - 1 + months
    year, month0 = divmod(index, 12)
    day = min(day, days_in_month(year, month0 + 1))
    return days_from_civil(year, month0 + 1, day) * MS_DAY + rest


def add_unit(ms: int, amount: int, unit: str) -> int:
    """``ms`` plus ``amount`` units (calendar arithmetic for ``M`` and ``y``)."""
    if unit == "M":
        return add_months(ms, amount)
    if unit == "y":
        return add_months(ms, 12 * amount)
    return ms + amount * FIXED_UNIT_MS[unit]


def round_down(ms: int, unit: str) -> int:
    """The first millisecond of the ``unit`` holding ``ms`` (UTC; weeks start on Monday)."""
    if unit in ("s", "m", "h", "H", "d"):
        return ms - ms % FIXED_UNIT_MS[unit]
    day = ms - ms % MS_DAY
    if unit == "w":
        # 1970-01-01 was a Thursday: (days + 3) % 7 is 0 on Mondays.
        return day - ((day // MS_DAY + 3) % 7) * MS_DAY
    year, month, _ = civil_from_days(day // MS_DAY)
    if unit == "M":
        return days_from_civil(year, month, 1) * MS_DAY
    if unit == "y":
        return days_from_civil(year, 1, 1) * MS_DAY
    return ms  # "ms": already a whole millisecond


def round_up(ms: int, unit: str) -> int:
    """The last millisecond of the ``unit`` holding ``ms`` (ES's ``roundUp``)."""
    return add_unit(round_down(ms, unit), 1, unit) - 1


_last_ms_of = round_up  # DateMath.resolve_ms's ``round_up`` flag shadows the name


# --- datetimes at the edges ----------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
#: The instants a Python ``datetime`` can hold (years 1..9999, UTC).
DATETIME_MIN_MS = days_from_civil(1, 1, 1) * MS_DAY
DATETIME_MAX_MS = days_from_civil(10_000, 1, 1) * MS_DAY - 1


def datetime_to_ms(t: datetime) -> int:
    """Epoch milliseconds of ``t`` (naive means UTC; sub-millisecond digits are dropped)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    # The difference of two datetimes always fits a timedelta: no overflow here.
    return (t - _EPOCH) // _ONE_MS


def ms_to_datetime(ms: int) -> datetime | None:
    """The UTC datetime of ``ms``, or None when it lies outside years 1..9999."""
    if not DATETIME_MIN_MS <= ms <= DATETIME_MAX_MS:
        return None
    return _from_ms(ms)


def clamp_datetime(ms: int) -> datetime:
    """The UTC datetime of ``ms``, clamped into years 1..9999."""
    return _from_ms(min(max(ms, DATETIME_MIN_MS), DATETIME_MAX_MS))


def _from_ms(ms: int) -> datetime:
    days, rest = divmod(ms, MS_DAY)
    year, month, day = civil_from_days(days)
    seconds, milli = divmod(rest, MS_SECOND)
    return datetime(year, month, day, seconds // 3600, seconds // 60 % 60, seconds % 60,
                    milli * 1000, tzinfo=UTC)


def shift(t: datetime, delta: timedelta) -> datetime:
    """``t + delta``, clamped into years 1..9999 instead of raising ``OverflowError``."""
    return clamp_datetime(datetime_to_ms(t) + delta // _ONE_MS)


def format_ms(ms: int) -> str:
    """``ms`` as ISO-8601 UTC with milliseconds; years outside 0..9999 get a sign (ISO expanded)."""
    days, rest = divmod(ms, MS_DAY)
    year, month, day = civil_from_days(days)
    seconds, milli = divmod(rest, MS_SECOND)
    ytext = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+07d}"
    return (f"{ytext}-{month:02d}-{day:02d}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
            f"{seconds % 60:02d}.{milli:03d}Z")


# --- the current time of an evaluation -------------------------------------------------------

_EVAL_NOW: ContextVar[int | None] = ContextVar("credwatch_eval_now", default=None)


def now_ms() -> int:
    """``now`` for the evaluation in progress: the engine's tick/batch time, else the wall clock."""
    current = _EVAL_NOW.get()
    return current if current is not None else time.time_ns() // 1_000_000


@contextmanager
def evaluating_at(now: datetime) -> Iterator[None]:
    """Evaluate everything inside the block with ``now`` as the current time.

    The run engine wraps one tick in this (``watch`` one batch), so date math
    such as ``now-1d/d`` in a query resolves against the tick's time. The value
    is context-local: other threads and contexts keep their own.
    """
    token = _EVAL_NOW.set(datetime_to_ms(now))
    try:
        yield
    finally:
        _EVAL_NOW.reset(token)


# --- Elasticsearch ``date`` values: strict_date_optional_time || epoch_millis ------------------

_ISO = re.compile(
    r"(?P<y>[0-9]{4})(?:-(?P<mo>[0-9]{2})(?:-(?P<d>[0-9]{2})(?:[T ](?P<h>[0-9]{2})(?::(?P<mi>[0-9]{2})"
    r"(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?)?)?)?)?"
    r"(?P<tz>[Zz]|(?P<sign>[+-])(?P<oh>[0-9]{2})(?::?(?P<om>[0-9]{2}))?)?"
)
_DIGITS = re.compile(r"[0-9]+")
#: Most digits an epoch in a Java long can have (9223372036854775807 has 19).
_MAX_EPOCH_DIGITS = 19


def _in_long(ms: int) -> int | None:
    return ms if LONG_MIN <= ms <= LONG_MAX else None


def _iso_fields(m: re.Match[str]) -> tuple[int, int, int, int, int, int, int] | None:
    g = m.groupdict()
    year, month, day = int(g["y"]), int(g["mo"] or 1), int(g["d"] or 1)
    hour, minute, second = int(g["h"] or 0), int(g["mi"] or 0), int(g["s"] or 0)
    if year < 1 or not 1 <= month <= 12 or not 1 <= day <= days_in_month(year, month):
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset = 0
    if g["sign"]:
        oh, om = int(g["oh"]), int(g["om"] or 0)
        if om > 59 or oh * 60 + om > 18 * 60:  # java.time ZoneOffset: at most +-18:00
            return None
        offset = (oh * MS_HOUR + om * MS_MINUTE) * (1 if g["sign"] == "+" else -1)
    milli = int((g["f"] or "")[:3].ljust(3, "0"))  # a date field keeps whole milliseconds
    return year, month, day, hour, minute, second * MS_SECOND + milli, offset


def parse_date_bounds_ms(text: str) -> tuple[int, int] | None:
    """The (round-down, round-up) instants of an ES date string (None if it is not one).

    A full timestamp is one millisecond (finer fractions are truncated). A
    partial one is filled as ES fills missing components: with the minimum
    when rounding down (``gte``/``lt``), and when rounding up (``gt``/``lte``)
    with month 01, day 01 and time 23:59:59.999, so ``2024-05-01`` is the whole
    day but ``2024-05`` rounds up to ``2024-05-01T23:59:59.999``. Digits only
    (other than a 4-digit year) are epoch milliseconds. Dates without a zone
    are UTC. No date math here: see :func:`parse_date_math`.
    """
    text = text.strip()
    if len(text) > MAX_TEXT:
        return None
    if _DIGITS.fullmatch(text) and len(text) != 4:
        if len(text) > _MAX_EPOCH_DIGITS:
            return None
        epoch = _in_long(int(text))
        return None if epoch is None else (epoch, epoch)
    m = _ISO.fullmatch(text)
    fields = _iso_fields(m) if m else None
    if m is None or fields is None:
        return None
    year, month, day, hour, minute, sub_minute, offset = fields
    local = (days_from_civil(year, month, day) * MS_DAY + hour * MS_HOUR + minute * MS_MINUTE
             + sub_minute)
    lo = local - offset
    for group, fill in (("f", 0), ("s", MS_SECOND - 1), ("mi", MS_MINUTE - 1),
                        ("h", MS_HOUR - 1)):
        if m[group] is not None:
            return lo, lo + fill
    # ES's round-up parser defaults a missing month and day to 01 and a missing time to
    # 23:59:59.999 (documented under "Missing date components"): `lte 2024-05` is the
    # end of May 1st, not of May.
    return lo, lo + MS_DAY - 1


#: The form nearly every event time takes (``2026-12-01T10:00:00.123Z``): its whole-second
#: part is parsed once and cached (events come in bursts within the same seconds).
_COMMON = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.([0-9]{1,9}))?Z")
_SECONDS: dict[str, int | None] = {}
_SECONDS_MAX = 1 << 14


def _common_instant(text: str, frac: str | None) -> int | None:
    """Epoch ms of text in the common form (None if its date or time is invalid)."""
    head = text[:19]
    if head in _SECONDS:
        start = _SECONDS[head]
    else:
        bounds = parse_date_bounds_ms(head + "Z")
        start = bounds[0] if bounds else None
        if len(_SECONDS) >= _SECONDS_MAX:
            _SECONDS.clear()
        _SECONDS[head] = start
    return None if start is None else start + (int(frac[:3].ljust(3, "0")) if frac else 0)


def parse_instant(value: Any) -> int | None:
    """Epoch ms of an event value as an ES ``date`` field indexes it; None if it would not.

    Accepts ISO-8601 strings (the start of a partial date), epoch milliseconds
    as a number or a digit string, and nothing else: no date math (ES does not
    index ``"now"``), no booleans, no NaN/inf, nothing beyond a Java long.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _in_long(value)
    if isinstance(value, float):
        return _in_long(int(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        m = _COMMON.fullmatch(value)
        if m is not None:
            return _common_instant(value, m.group(1))
        bounds = parse_date_bounds_ms(value)
        return bounds[0] if bounds else None
    return None


def parse_datetime(value: Any) -> datetime | None:
    """An event value as a UTC datetime (see :func:`parse_instant`); None outside years 1..9999."""
    ms = parse_instant(value)
    return None if ms is None else ms_to_datetime(ms)


# --- date math ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MathOp:
    """One step of a date-math chain: ``+``/``-`` ``amount`` ``unit``, or ``/`` ``unit``."""

    op: str
    amount: int
    unit: str
    position: int  #: offset of the operator in the expression text


@dataclass(frozen=True, slots=True)
class DateMath:
    """A parsed date or date-math expression; resolve it with a ``now`` and a direction.

    ``anchor`` is None for ``now``, else the (round-down, round-up) instants
    of the absolute date (equal for ``date||…``, which ES never rounds up).
    """

    text: str
    anchor: tuple[int, int] | None
    ops: tuple[MathOp, ...] = ()

    @property
    def uses_now(self) -> bool:
        """Whether the result depends on the current time."""
        return self.anchor is None

    def resolve_ms(self, now: int, round_up: bool = False) -> int:
        """The instant in epoch ms, given ``now`` in epoch ms.

        ``round_up`` is ES's ``roundUp``: True for ``gt``/``lte`` bounds.
        Raises :class:`DateMathError` when a step leaves java.time's year
        range or the result does not fit a Java long.
        """
        t = now if self.anchor is None else self.anchor[1 if round_up else 0]
        for step in self.ops:
            if step.op == "/":
                t = _last_ms_of(t, step.unit) if round_up else round_down(t, step.unit)
            else:
                t = add_unit(t, step.amount if step.op == "+" else -step.amount, step.unit)
            if abs(year_of(t)) > MAX_ABS_YEAR:
                raise DateMathError(f"the date leaves the supported range (years -{MAX_ABS_YEAR} "
                                    f"to {MAX_ABS_YEAR})", self.text, step.position)
        if _in_long(t) is None:
            raise DateMathError("the date does not fit in epoch milliseconds (a 64-bit long)",
                                self.text, 0)
        return t

    def resolve(self, now: datetime, round_up: bool = False) -> datetime:
        """The instant as a UTC datetime; :class:`DateMathError` outside years 1..9999."""
        t = ms_to_datetime(self.resolve_ms(datetime_to_ms(now), round_up))
        if t is None:
            raise DateMathError("the date is outside the years 1 to 9999", self.text, 0)
        return t

    def offset(self) -> timedelta:
        """The fixed offset from ``now`` (rounding ignored; months and years have no fixed length)."""
        if self.anchor is not None:
            raise DateMathError("expected a time relative to 'now'", self.text, 0)
        total = 0
        for step in self.ops:
            if step.op == "/":
                continue
            if step.unit in CALENDAR_UNITS:
                raise DateMathError(f"unit {step.unit!r} has no fixed length", self.text,
                                    step.position)
            total += (step.amount if step.op == "+" else -step.amount) * FIXED_UNIT_MS[step.unit]
        return _bounded_delta(total, self.text)


def _bounded_delta(total_ms: int, text: str) -> timedelta:
    if abs(total_ms) > MAX_DURATION // _ONE_MS:
        raise DateMathError(f"the offset is longer than {MAX_DURATION.days} days", text, 0)
    return timedelta(milliseconds=total_ms)


_UNITS = frozenset("yMwdhHms")


def _parse_amount(text: str, i: int) -> tuple[int, int]:
    """Read the optional amount at ``i``: (amount, index after it)."""
    start = i
    while i < len(text) and "0" <= text[i] <= "9":
        i += 1
    if i == start:
        return 1, i  # ES: "now-d" is "now-1d"
    if i - start > 10 or int(text[start:i]) > MAX_AMOUNT:
        raise DateMathError(f"the amount {text[start:i][:20]!r} is too large (at most "
                            f"{MAX_AMOUNT}, a Java int)", text, start)
    return int(text[start:i]), i


def _parse_ops(text: str, start: int, allow_ms: bool) -> tuple[MathOp, ...]:
    ops: list[MathOp] = []
    i = start
    while i < len(text):
        at, op = i, text[i]
        if len(ops) == MAX_OPS:
            raise DateMathError(f"more than {MAX_OPS} operations", text, at)
        if op not in "+-/":
            raise DateMathError(f"operator {op!r} not supported: expected +, - or /", text, at)
        i += 1
        if i >= len(text):
            raise DateMathError("truncated: expected a unit", text, i)
        amount, i = _parse_amount(text, i)
        if i >= len(text):
            raise DateMathError("truncated: expected a unit", text, i)
        if op == "/" and amount != 1:
            raise DateMathError("rounding with / takes a single unit (e.g. /d)", text, at)
        unit = text[i]
        if allow_ms and text.startswith("ms", i):
            unit = "ms"
        elif unit not in _UNITS:
            units = "y M w d h H m s" + (" ms" if allow_ms else "")
            raise DateMathError(f"unit {unit!r} not supported (units: {units})", text, i)
        i += len(unit)
        ops.append(MathOp(op, amount, unit, at))
    return tuple(ops)


def parse_date_math(text: str, *, allow_ms: bool = False, require_now: bool = False) -> DateMath:
    """Parse an ES date or date-math expression (``now-1d/d``, ``2024-01-31||+1M``, ``2024-05``).

    ``allow_ms`` accepts the ``ms`` unit (Kibana's datemath has it, ES does
    not); ``require_now`` rejects absolute dates (rule ``from``/``to``).
    Leading and trailing blanks are ignored. Raises :class:`DateMathError`.
    """
    if not isinstance(text, str):
        raise DateMathError(f"expected a string such as 'now-6m', not {type(text).__name__}")
    lead = len(text) - len(text.lstrip())
    body = text.strip()
    if body.startswith("now"):
        return DateMath(text, None, _shifted(_parse_ops(body, 3, allow_ms), lead, text))
    if require_now:
        raise DateMathError("expected a time relative to 'now', e.g. 'now-6m'", text, lead)
    bar = body.find("||")
    if bar < 0:
        bounds = parse_date_bounds_ms(body)
        if bounds is None:
            raise DateMathError("not a date (expected ISO-8601 of at most "
                                f"{MAX_TEXT} characters, epoch milliseconds or now)", text, lead)
        return DateMath(text, bounds)
    bounds = parse_date_bounds_ms(body[:bar])
    if bounds is None:
        raise DateMathError("the part before || is not a date", text, lead)
    return DateMath(text, (bounds[0], bounds[0]),
                    _shifted(_parse_ops(body, bar + 2, allow_ms), lead, text))


def _shifted(ops: tuple[MathOp, ...], lead: int, text: str) -> tuple[MathOp, ...]:
    """Positions relative to the caller's text (blanks before the expression included)."""
    if not lead:
        return ops
    return tuple(MathOp(o.op, o.amount, o.unit, o.position + lead) for o in ops)


def check_date_math(text: str) -> DateMath:
    """Parse a query date and resolve it once now, both directions, so range errors show up early."""
    expr = parse_date_math(text)
    now = now_ms()
    expr.resolve_ms(now, False)
    expr.resolve_ms(now, True)
    return expr


# --- rule durations and windows ---------------------------------------------------------------

_DURATION_RE = re.compile(r"\s*([0-9]+)\s*(s|m|h|d)\s*")


def parse_duration(text: str) -> timedelta:
    """Parse a Kibana rule interval such as ``5m`` into a positive timedelta (at most a century)."""
    m = _DURATION_RE.fullmatch(text) if isinstance(text, str) and len(text) <= 64 else None
    if not m:
        raise DateMathError(
            f"invalid duration {text!r}: expected a whole number and a unit s, m, h or d, e.g. '5m'"
            if isinstance(text, str) and len(text) <= 64 else
            "invalid duration: expected a short whole number and a unit s, m, h or d, e.g. '5m'")
    digits = m.group(1).lstrip("0") or "0"
    if digits == "0":
        raise DateMathError(f"invalid duration {text!r}: must be greater than zero")
    if len(digits) > 12 or int(digits) * FIXED_UNIT_MS[m.group(2)] > MAX_DURATION // _ONE_MS:
        raise DateMathError(f"invalid duration {text[:40]!r}: longer than {MAX_DURATION.days} days")
    return timedelta(milliseconds=int(digits) * FIXED_UNIT_MS[m.group(2)])


def format_duration(delta: timedelta) -> str:
    """Format a timedelta as the largest exact Kibana duration unit (``540s`` -> ``9m``)."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_rule_date_math(text: str) -> DateMath:
    """A rule's ``from``/``to``: Kibana date math anchored at ``now`` (``ms`` allowed)."""
    return parse_date_math(text, allow_ms=True, require_now=True)


def lookback(interval: str, from_: str, to: str = "now") -> timedelta:
    """Kibana's additional look-back: window length minus interval (``now-9m``/5m -> 4m)."""
    window_len = parse_rule_date_math(to).offset() - parse_rule_date_math(from_).offset()
    return window_len - parse_duration(interval)


def window(from_: str, to: str, now: datetime) -> tuple[datetime, datetime]:
    """The absolute ``[from, to]`` search window of a run at ``now``."""
    return parse_rule_date_math(from_).resolve(now), parse_rule_date_math(to).resolve(now)
