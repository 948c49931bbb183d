"""An event's time under a rule: ``timestamp_override`` with Kibana's ``@timestamp`` fallback.

With an override and the fallback enabled, an event is in a window if the
override is in it, or the override is missing and ``@timestamp`` is in it
(inclusive bounds, millisecond precision). Events are ordered ascending by the
override, then ``@timestamp``; events without the override sort last, as
Elasticsearch sorts missing values.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credwatch.engine.plan import to_ms
from credwatch.normalize.flatten import get_values
from credwatch.rules.model import Rule
from credwatch.sources.record import Record
from credwatch.timemath import DATETIME_MAX_MS, DATETIME_MIN_MS, parse_instant

__all__ = ["EventIndex", "Seq", "TimeFields", "TimedEvent", "event_points", "event_times", "primary_times",
           "secondary_times", "time_ms"]

#: Where an event sits in the inputs: (rank of its file by path, line, record within the line).
Seq = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class TimeFields:
    """Where an event's time comes from: primary field, and the fallback (or None)."""

    primary: str = "@timestamp"
    secondary: str | None = None

    @classmethod
    def of(cls, rule: Rule) -> TimeFields:
        """Kibana's primary/secondary timestamp for ``rule``."""
        override = rule.timestamp_override
        if not override:
            return cls()
        if override == "@timestamp" or rule.timestamp_override_fallback_disabled:
            return cls(override, None)
        return cls(override, "@timestamp")

    def key(self) -> str:
        """A stable text form (the per-input state in the store is kept per time field)."""
        return f"{self.primary}|{self.secondary or ''}"


def time_ms(value: Any) -> int | None:
    """Epoch ms of an event time value, as :func:`~credwatch.alerts.build.parse_event_time`.

    None when the value is not a date, or lies outside the years 1..9999.
    """
    ms = parse_instant(value)
    return ms if ms is not None and DATETIME_MIN_MS <= ms <= DATETIME_MAX_MS else None


def _times(event: Any, fld: str) -> tuple[int, ...]:
    out = [ms for v in get_values(event, fld) if (ms := time_ms(v)) is not None]
    out.sort()
    return tuple(out)


def primary_times(event: Any, fields: TimeFields) -> tuple[int, ...]:
    """The primary field's times of ``event`` in epoch ms, ascending."""
    return _times(event, fields.primary)


def secondary_times(event: Any, fields: TimeFields) -> tuple[int, ...]:
    """The fallback field's times of ``event`` in epoch ms, ascending (empty without one)."""
    return _times(event, fields.secondary) if fields.secondary else ()


def event_points(event: Any, fields: TimeFields) -> tuple[int, ...]:
    """The times that place ``event`` in a window: the primary field's, else the fallback's."""
    return primary_times(event, fields) or secondary_times(event, fields)


def event_times(event: Any, fields: TimeFields) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(primary, secondary)`` times of ``event`` in epoch ms, each ascending."""
    primary = _times(event, fields.primary)
    secondary = _times(event, fields.secondary) if fields.secondary else ()
    return primary, secondary


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """A record with its parsed time fields (epoch ms)."""

    record: Record
    primary: tuple[int, ...]
    secondary: tuple[int, ...]
    seq: Seq

    @property
    def event(self) -> dict[str, Any]:
        """The event document."""
        return self.record.event

    @property
    def points(self) -> tuple[int, ...]:
        """The times that place the event in a window: the override's, else the fallback's."""
        # Only the fallback of an event *without* the override counts for ranges.
        return self.primary if self.primary else self.secondary

    @property
    def time_ms(self) -> int:
        """The event time: the override when present, else the fallback (Kibana's combined time)."""
        return self.points[0]

    def sort_key(self) -> tuple[int, int, int, int, Seq]:
        """Ascending by primary then secondary; missing values last (Elasticsearch's default)."""
        p, s = self.primary, self.secondary
        return (0 if p else 1, p[0] if p else 0, 0 if s else 1, s[0] if s else 0, self.seq)


class EventIndex:
    """Events held in memory and ordered by time for window queries (small inputs, tests).

    ``credwatch run`` streams its inputs instead (:mod:`credwatch.engine.window`);
    this index states the semantics in a few lines and serves as the reference.
    """

    def __init__(self, records: Iterable[Record], fields: TimeFields) -> None:
        self.fields = fields
        self.events: list[TimedEvent] = []
        keys: list[tuple[int, int]] = []
        self.untimed = 0
        for seq, rec in enumerate(records):
            primary, secondary = event_times(rec.event, fields)
            ev = TimedEvent(rec, primary, secondary, (0, seq, 0))
            if not ev.points:
                self.untimed += 1
                continue
            idx = len(self.events)
            self.events.append(ev)
            keys.extend((t, idx) for t in ev.points)
        keys.sort()
        self._keys = keys

    def window(self, start: datetime, end: datetime) -> list[TimedEvent]:
        """Events whose time is in ``[start, end]`` (inclusive), in Kibana's sort order."""
        lo, hi = to_ms(start), to_ms(end)
        i = bisect.bisect_left(self._keys, (lo, -1))
        j = bisect.bisect_right(self._keys, (hi, len(self.events)))
        picked = {idx for _, idx in self._keys[i:j]}
        return sorted((self.events[k] for k in picked), key=TimedEvent.sort_key)
