"""``--since``/``--until``/``--severity``/``--host``: the same words, the same meaning everywhere.

``scan``, ``alerts list`` and ``report`` filter alerts by the time of the
*event* that triggered them (``kibana.alert.original_time``; an alert without
one falls back to its creation time), never by when credwatch created the
alert: re-scanning last week's logs today still finds last week's events.

A time is parsed with :mod:`credwatch.timemath`, like Kibana's date pickers:

* Elasticsearch date math relative to now: ``now-24h``, ``now-7d/d``;
* a bare duration, meaning that long ago: ``24h`` is ``now-24h``, ``7d`` is ``now-7d``
  (units ``s m h d w``; both spellings are accepted by every command);
* an ISO-8601 date or time (``2026-12-01``, ``2026-12-01T10:00:00Z``, with an
  offset or without, which is UTC), or ``date||`` math.

``--until`` rounds up as Elasticsearch's ``lte`` does: ``--until 2026-12-01``
includes the whole day. Anything else is a usage error (exit 2) naming the
option and what was expected: a filter that does not parse is never ignored.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credwatch.errors import ConfigError
from credwatch.rules.model import SEVERITIES
from credwatch.sinks.output.rows import first_value
from credwatch.timemath import DateMathError, datetime_to_ms, parse_date_math, parse_instant

_DURATION = re.compile(r"([0-9]{1,9})([smhdw])")

TIME_FORMS = ("now-24h or 24h, an ISO date or time (2026-12-01, 2026-12-01T10:00:00Z), or date "
              "math (now-7d/d)")
TIME_HELP = f"the event's time: {TIME_FORMS}"


def parse_time(text: str, option: str, now: datetime, *, round_up: bool = False) -> int:
    """Epoch ms of a ``--since``/``--until`` value; :class:`ConfigError` (exit 2) when bad."""
    body = text.strip()
    if _DURATION.fullmatch(body):
        body = "now-" + body
    try:
        return parse_date_math(body).resolve_ms(datetime_to_ms(now), round_up)
    except DateMathError as exc:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ConfigError(f"{option} {shown!r} is not a time ({exc.message}); use "
                          f"{TIME_FORMS}") from None


def add_filter_args(parser: argparse.ArgumentParser | Any) -> None:
    """``--since``, ``--until``, ``--severity`` and ``--host`` (repeatable)."""
    parser.add_argument("--since", metavar="TIME", help=f"events at or after TIME: {TIME_HELP}")
    parser.add_argument("--until", metavar="TIME", help="events at or before TIME (same forms; "
                        "a date alone includes that whole day)")
    parser.add_argument("--severity", choices=SEVERITIES, metavar="LEVEL",
                        help=f"alerts of this severity or higher ({', '.join(SEVERITIES)})")
    parser.add_argument("--host", action="append", default=None, metavar="NAME",
                        help="alerts whose host.name is NAME; repeatable (any of them)")


@dataclass(frozen=True)
class AlertFilter:
    """What ``--since/--until/--severity/--host`` keep; :meth:`keeps` decides per alert."""

    since_ms: int | None = None
    until_ms: int | None = None
    min_severity: int | None = None
    hosts: frozenset[str] | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace, now: datetime) -> AlertFilter:
        """Parse the options (bad ones raise :class:`ConfigError` before anything is read)."""
        since = parse_time(args.since, "--since", now) if args.since else None
        until = parse_time(args.until, "--until", now, round_up=True) if args.until else None
        if since is not None and until is not None and since > until:
            raise ConfigError(f"--since {args.since!r} is after --until {args.until!r}")
        sev = SEVERITIES.index(args.severity) if args.severity else None
        hosts = frozenset(args.host) if args.host else None
        return cls(since, until, sev, hosts)

    @property
    def active(self) -> bool:
        """Whether any filter was given."""
        return any(v is not None for v in (self.since_ms, self.until_ms, self.min_severity,
                                           self.hosts))

    def keeps(self, alert: Mapping[str, Any]) -> bool:
        """True when ``alert`` passes every filter given."""
        if self.hosts is not None and first_value(alert, "host.name") not in self.hosts:
            return False
        if self.min_severity is not None:
            sev = first_value(alert, "kibana.alert.severity")
            if sev not in SEVERITIES or SEVERITIES.index(sev) < self.min_severity:
                return False
        if self.since_ms is None and self.until_ms is None:
            return True
        when = parse_instant(first_value(alert, "kibana.alert.original_time")
                             or first_value(alert, "@timestamp"))
        if when is None:
            return False  # a time filter cannot place an alert without a time
        if self.since_ms is not None and when < self.since_ms:
            return False
        return self.until_ms is None or when <= self.until_ms

    def store_args(self) -> dict[str, Any]:
        """These filters as :meth:`AlertStore.select <credwatch.alerts.store.AlertStore.select>`
        arguments, so the store filters and counts before any document is read."""
        return {"hosts": sorted(self.hosts) if self.hosts is not None else None,
                "severities": (list(SEVERITIES[self.min_severity:])
                               if self.min_severity is not None else None),
                "event_since_ms": self.since_ms, "event_until_ms": self.until_ms}

    def apply(self, alerts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The alerts this filter keeps, in order."""
        return [dict(a) for a in alerts if self.keeps(a)]


def take(alerts: Sequence[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """The first ``limit`` alerts (all when ``limit`` is None or 0)."""
    return list(alerts[:limit]) if limit else list(alerts)
