"""Kibana's rule windows: time at millisecond precision, gaps, catch-up and the gap message.

``plan_windows`` is Kibana's ``getRuleRangeTuples``: an execution started at
``now`` searches ``[now+from, now+to]``; a positive gap
``(start - previous start) - (to - from)`` adds up to
:data:`MAX_RULE_GAP_RATIO` catch-up windows, each the previous one shifted back
one interval, and what they leave uncovered fails the execution with Kibana's
message (:func:`gap_message`, humanized like ``moment``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from credwatch.alerts.build import iso_ms
from credwatch.rules.model import Rule
from credwatch.rules.schedule_math import parse_date_math, parse_duration

__all__ = [
    "ALERTING_MAX_ALERTS",
    "MAX_RULE_GAP_RATIO",
    "MAX_SIGNALS_WARNING",
    "Window",
    "WindowPlan",
    "from_ms",
    "gap_message",
    "humanize_ms",
    "plan_windows",
    "to_ms",
    "truncate_ms",
]

#: At most this many catch-up windows per execution (Kibana's ``MAX_RULE_GAP_RATIO``).
MAX_RULE_GAP_RATIO = 4
#: Kibana's default ``xpack.alerting.rules.run.alerts.max``.
ALERTING_MAX_ALERTS = 1000
MAX_SIGNALS_WARNING = ("This rule reached the maximum alert limit for the rule execution. "
                       "Some alerts were not created.")
GAP_MESSAGE_TAIL = ("were not queried between this rule execution and the last execution, so "
                    "signals may have been missed. Consider increasing your look behind time or "
                    "adding more Kibana instances")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(t: datetime) -> int:
    """Epoch milliseconds (floor), the precision of Elasticsearch ``date`` fields."""
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return (t - _EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """Inverse of :func:`to_ms`."""
    return _EPOCH + ms * _MS


def truncate_ms(t: datetime) -> datetime:
    """``t`` in UTC at millisecond precision (JavaScript ``Date``)."""
    return from_ms(to_ms(t))


# --- moment's humanize ---------------------------------------------------------------------

def _js_round(x: float) -> int:
    return math.floor(x + 0.5)


def humanize_ms(ms: int) -> str:
    """``moment.duration(ms).humanize()`` in English (thresholds s 45, m 45, h 22, d 26, M 11)."""
    ms = abs(ms)
    days_f = ms / 86_400_000
    seconds, minutes = _js_round(ms / 1000), _js_round(ms / 60_000)
    hours, days = _js_round(ms / 3_600_000), _js_round(days_f)
    months_f = days_f * 4800 / 146097
    months, years = _js_round(months_f), _js_round(months_f / 12)
    if seconds <= 44:
        return "a few seconds"
    if minutes <= 1:
        return "a minute"
    if minutes < 45:
        return f"{minutes} minutes"
    if hours <= 1:
        return "an hour"
    if hours < 22:
        return f"{hours} hours"
    if days <= 1:
        return "a day"
    if days < 26:
        return f"{days} days"
    if months <= 1:
        return "a month"
    if months < 11:
        return f"{months} months"
    if years <= 1:
        return "a year"
    return f"{years} years"


def gap_message(remaining: timedelta) -> str:
    """Kibana's failure message for a gap that catch-up windows could not cover."""
    ms = int(remaining / _MS)
    return f"{humanize_ms(ms)} ({ms}ms) {GAP_MESSAGE_TAIL}"


# --- windows -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Window:
    """One search range of an execution (Kibana's rule range tuple)."""

    start: datetime
    end: datetime
    max_signals: int

    def to_json(self) -> dict[str, Any]:
        """JSON form for the run history."""
        return {"from": iso_ms(self.start), "to": iso_ms(self.end), "max_signals": self.max_signals}


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """The windows of one execution and the gap that led to them."""

    windows: tuple[Window, ...]  #: oldest first, the order Kibana searches them
    gap: timedelta  #: (start - previous start) - (to - from); zero on the first execution
    catchup: int  #: number of catch-up windows added
    remaining_gap: timedelta  #: what the windows still leave uncovered
    gap_range: tuple[datetime, datetime] | None  #: where the uncovered time starts
    warning: str | None = None  #: max_signals above the alerting limit

    @property
    def error(self) -> str | None:
        """The gap failure message, if any time is left uncovered."""
        return gap_message(self.remaining_gap) if self.remaining_gap > timedelta(0) else None


def plan_windows(rule: Rule, started_at: datetime, previous_started_at: datetime | None, *,
                 max_alerts_allowed: int = ALERTING_MAX_ALERTS) -> WindowPlan:
    """Kibana's ``getRuleRangeTuples`` for an execution starting at ``started_at``."""
    now = truncate_ms(started_at)
    start = truncate_ms(parse_date_math(rule.from_).resolve(now))
    end = truncate_ms(parse_date_math(rule.to).resolve(now))
    max_signals = rule.max_signals
    warning = None
    if max_signals > max_alerts_allowed:
        warning = (f"The rule's max alerts per run setting ({max_signals}) is greater than the "
                   f"Kibana alerting limit ({max_alerts_allowed}). The rule will only write a "
                   f"maximum of {max_alerts_allowed} alerts per rule run.")
        max_signals = max_alerts_allowed
    windows = [Window(start, end, max_signals)]
    interval = parse_duration(rule.interval)
    if previous_started_at is None:
        gap = timedelta(0)
    else:
        gap = (now - truncate_ms(previous_started_at)) - (end - start)
    catchup = 0
    if gap > timedelta(0) and interval > timedelta(0):
        catchup = min(math.ceil(gap / interval), MAX_RULE_GAP_RATIO)
    cur_start, cur_end = start, end
    for _ in range(catchup):
        cur_start, cur_end = cur_start - interval, cur_end - interval
        windows.append(Window(cur_start, cur_end, max_signals))
    remaining = max(gap - catchup * interval, timedelta(0))
    gap_range = None
    if remaining > timedelta(0) and previous_started_at is not None:
        prev = truncate_ms(previous_started_at)
        gap_range = (prev, prev + remaining)
    return WindowPlan(tuple(reversed(windows)), gap, catchup, remaining, gap_range, warning)
