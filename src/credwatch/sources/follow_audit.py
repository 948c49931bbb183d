"""Reassemble followed audit lines into events, knowing where a restart must begin.

:class:`AuditStream` sits between the :class:`~credwatch.sources.follow.Follower`
and the :class:`~credwatch.sources.auditd.Reassembler`: it parses each followed
line, feeds the record to the reassembler and remembers where the first record
of every event still being reassembled was read.

Restart rule: the safe position is the start of the oldest record of any
event still pending (:meth:`AuditStream.oldest_pending`), or, when none is,
the follower's position. Restarting there never skips a record. It can
re-read records of events that had already closed after that point: delivery
is *at least once*, and such an event comes back identical (same records,
same :attr:`AuditEvent.id`), so an alert keyed on the event is not duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from credwatch.sources.auditd import (
    DEFAULT_QUIET_RECORDS,
    AuditEvent,
    Diagnostics,
    EventKey,
    Reassembler,
    parse_line,
)
from credwatch.sources.follow import FollowedLine, LineRef

__all__ = ["AuditStream", "ClosedEvent"]

#: An event that closed, with where its first record was read.
ClosedEvent = tuple[AuditEvent, LineRef | None]


class AuditStream:
    """Parse followed lines, reassemble events, and track the safe restart position."""

    def __init__(self, *, idle_seconds: float = 0.3, quiet_records: int = DEFAULT_QUIET_RECORDS,
                 max_pending: int = 4096, diagnostics: Diagnostics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.reassembler = Reassembler(idle_seconds=idle_seconds, quiet_records=quiet_records,
                                       max_pending=max_pending, diagnostics=self.diagnostics,
                                       clock=clock)
        # Where each pending event's first record was read; insertion order is read order.
        self._first: dict[EventKey, LineRef] = {}

    def feed(self, item: FollowedLine) -> list[ClosedEvent]:
        """Parse one followed line; return the events it closes."""
        diag = self.diagnostics
        diag.lines += 1
        rec = parse_line(item.line, path=item.path, lineno=item.lineno)
        if isinstance(rec, str):
            if rec not in ("blank", "separator"):
                excerpt = item.line[:80].decode("utf-8", errors="replace").rstrip("\r\n")
                diag.skip(rec, item.path, item.lineno, repr(excerpt))
            return []
        diag.records += 1
        diag.record_types[rec.type] += 1
        if rec.truncated:
            diag.warn("truncated-record", item.path, item.lineno, "line ends inside a quoted value")
        key: EventKey = (rec.node, rec.stamp, rec.serial)
        closed = self.reassembler.feed(rec)
        if key not in self._first and self.reassembler.is_pending(key):
            self._first[key] = item.ref
        return self._forget(closed)

    def _forget(self, events: list[AuditEvent]) -> list[ClosedEvent]:
        return [(ev, self._first.pop((ev.node, ev.stamp, ev.serial), None)) for ev in events]

    def flush_idle(self) -> list[ClosedEvent]:
        """Close the events that have been quiet for ``idle_seconds``."""
        return self._forget(self.reassembler.flush_idle())

    def flush(self) -> list[ClosedEvent]:
        """Close every pending event."""
        return self._forget(self.reassembler.flush())

    def oldest_pending(self) -> LineRef | None:
        """Where the first record of the oldest event still pending was read, if any."""
        return next(iter(self._first.values())) if self._first else None
