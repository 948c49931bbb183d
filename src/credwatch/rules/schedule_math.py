"""Durations (``5m``) and date math (``now-9m``) as Kibana rules use them.

``interval`` is a duration: a positive integer and a unit ``s m h d``.
``from``/``to`` are Elasticsearch date math anchored at ``now``: ``now``,
``now-9m``, ``now+1h``, with units ``ms s m h d w M y`` (``M`` is months,
``m`` minutes), optionally several offsets (``now-1d-2h``) and a rounding
suffix (``now-1d/d``). Scheduling (windows, look-back, gaps) is built on these.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from credwatch.errors import ConfigError

_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_FIXED_UNITS: dict[str, timedelta] = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_OFFSET_RE = re.compile(r"([+-])(\d+)(ms|s|m|h|d|w|M|y)")
_ROUND_UNITS = ("s", "m", "h", "d", "w", "M", "y")


class DateMathError(ConfigError):
    """A duration or date-math expression that cannot be parsed."""


def parse_duration(text: str) -> timedelta:
    """Parse a Kibana rule interval such as ``5m`` into a positive timedelta."""
    m = _DURATION_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise DateMathError(
            f"invalid duration {text!r}: expected a whole number and a unit s, m, h or d, e.g. '5m'"
        )
    value = int(m.group(1))
    if value <= 0:
        raise DateMathError(f"invalid duration {text!r}: must be greater than zero")
    return value * _FIXED_UNITS[m.group(2)]


def format_duration(delta: timedelta) -> str:
    """Format a timedelta as the largest exact Kibana duration unit (``540s`` → ``9m``)."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class DateMath:
    """A parsed ``now[±N unit]…[/unit]`` expression."""

    text: str
    offsets: tuple[tuple[int, str], ...]
    round_to: str | None = None

    def resolve(self, now: datetime) -> datetime:
        """The absolute time this expression denotes when the current time is ``now``."""
        t = now
        for amount, unit in self.offsets:
            t = _add(t, amount, unit)
        if self.round_to:
            t = _round_down(t, self.round_to)
        return t

    def offset(self) -> timedelta:
        """The fixed offset from ``now`` (months and years are not fixed: error).

        Rounding is ignored; use :meth:`resolve` for exact instants.
        """
        total = timedelta()
        for amount, unit in self.offsets:
            if unit not in _FIXED_UNITS:
                raise DateMathError(f"{self.text!r}: unit {unit!r} has no fixed length")
            total += amount * _FIXED_UNITS[unit]
        return total


def parse_date_math(text: str) -> DateMath:
    """Parse Elasticsearch date math relative to ``now`` (``now-9m``, ``now``)."""
    if not isinstance(text, str):
        raise DateMathError(f"invalid date math {text!r}: expected a string such as 'now-6m'")
    s = text.strip()
    if not s.startswith("now"):
        raise DateMathError(
            f"invalid date math {text!r}: credwatch needs a time relative to 'now', e.g. 'now-6m'"
        )
    rest = s[3:]
    round_to: str | None = None
    if "/" in rest:
        rest, round_to = rest.split("/", 1)
        if round_to not in _ROUND_UNITS:
            raise DateMathError(f"invalid date math {text!r}: cannot round to {round_to!r}")
    offsets: list[tuple[int, str]] = []
    pos = 0
    for m in _OFFSET_RE.finditer(rest):
        if m.start() != pos:
            break
        sign = -1 if m.group(1) == "-" else 1
        offsets.append((sign * int(m.group(2)), m.group(3)))
        pos = m.end()
    if pos != len(rest):
        raise DateMathError(
            f"invalid date math {text!r}: expected offsets like '-9m' after 'now' "
            "(units ms, s, m, h, d, w, M, y)"
        )
    return DateMath(text=text, offsets=tuple(offsets), round_to=round_to)


def lookback(interval: str, from_: str, to: str = "now") -> timedelta:
    """Kibana's additional look-back: window length minus interval (``now-9m``/5m → 4m)."""
    window = parse_date_math(to).offset() - parse_date_math(from_).offset()
    return window - parse_duration(interval)


def window(from_: str, to: str, now: datetime) -> tuple[datetime, datetime]:
    """The absolute ``[from, to]`` search window of a run at ``now``."""
    return parse_date_math(from_).resolve(now), parse_date_math(to).resolve(now)


def _add(t: datetime, amount: int, unit: str) -> datetime:
    if unit in _FIXED_UNITS:
        return t + amount * _FIXED_UNITS[unit]
    months = amount * (12 if unit == "y" else 1)
    index = t.month - 1 + months
    year, month = t.year + index // 12, index % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def _round_down(t: datetime, unit: str) -> datetime:
    if unit == "s":
        return t.replace(microsecond=0)
    if unit == "m":
        return t.replace(second=0, microsecond=0)
    if unit == "h":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return day
    if unit == "w":  # Elasticsearch weeks start on Monday
        return day - timedelta(days=day.weekday())
    if unit == "M":
        return day.replace(day=1)
    return day.replace(month=1, day=1)
