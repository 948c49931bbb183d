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

import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from credwatch.sources.auditd import (
    DEFAULT_QUIET_RECORDS,
    AuditEvent,
    AuditRecord,
    Diagnostics,
    EventKey,
    Reassembler,
    parse_line,
)
from credwatch.sources.follow import FileRef, FollowedLine, LineRef

__all__ = ["AuditStream", "ClosedEvent"]

#: An event that closed, with where its first record was read.
ClosedEvent = tuple[AuditEvent, LineRef | None]

#: A plain record header at the start of a line, that :func:`parse_line` reads the same way
#: (seconds up to 10 digits: no year-9999 overflow; letter types: no numeric mapping).
_LIGHT = re.compile(rb"(?:node=(\S+) )?type=([A-Z][A-Z0-9_]*) msg=audit\(([0-9]{1,10}\.[0-9]{1,9}):([0-9]{1,20})\)")
#: Key of a light record's only field: the raw line, parsed in full if its event is kept.
_RAW = "\0line"
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def _light(line: bytes, path: str, lineno: int) -> AuditRecord | None:
    """The header of a plain record line, keeping the line for later; None if not plain."""
    m = _LIGHT.match(line)
    if m is None:
        return None
    node, rtype, stamp, serial = m.groups()
    # Positional: this runs for most lines of a busy log.
    return AuditRecord(rtype.decode("ascii"), node.decode("utf-8", errors="replace") if node else None,
                       stamp.decode("ascii"), int(serial), _NO_TIME, [(_RAW, line)], {}, "", path,
                       lineno)


class AuditStream:
    """Parse followed lines, reassemble events, and track the safe restart position."""

    def __init__(self, *, idle_seconds: float = 0.3, quiet_records: int = DEFAULT_QUIET_RECORDS,
                 max_pending: int = 4096, diagnostics: Diagnostics | None = None,
                 clock: Callable[[], float] = time.monotonic, prefilter: bool = False) -> None:
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.reassembler = Reassembler(idle_seconds=idle_seconds, quiet_records=quiet_records,
                                       max_pending=max_pending, diagnostics=self.diagnostics,
                                       clock=clock)
        # Where each pending event's first record was read; insertion order is read order.
        self._first: dict[EventKey, LineRef] = {}
        self.prefilter = prefilter
        #: Pending events with a candidate line (prefiltered only).
        self._kept: set[EventKey] = set()
        #: Events dropped unparsed because no line of theirs was a candidate.
        self.dropped = 0
        #: Of those, exec events (with an ``EXECVE`` record).
        self.dropped_exec = 0

    def feed(self, item: FollowedLine, candidate: bool = True) -> list[ClosedEvent]:
        """Parse one followed line; return the events it closes.

        With ``prefilter``, ``candidate=False`` says the line holds no needle:
        it is read as a light record when its header is plain.
        """
        return self.feed_at(item.line, item.file, item.lineno, item.start, candidate)

    def feed_at(self, line: bytes, file: FileRef, lineno: int, start: int,
                candidate: bool = True) -> list[ClosedEvent]:
        """:meth:`feed` of a line given by its bytes and place (no object per line)."""
        diag = self.diagnostics
        diag.lines += 1
        path = file.path
        rec: AuditRecord | str | None = None
        if not candidate and self.prefilter:
            rec = _light(line, path, lineno)
            if rec is not None:  # the common case of a busy log, kept short
                diag.records += 1
                diag.record_types[rec.type] += 1
                closed = self.reassembler.feed(rec)
                light: EventKey = (rec.node, rec.stamp, rec.serial)
                if light not in self._first and self.reassembler.is_pending(light):
                    self._first[light] = LineRef(file, lineno, start)
                return self._forget(closed) if closed else []
        if rec is None:
            rec = parse_line(line, path=path, lineno=lineno)
        if isinstance(rec, str):
            if rec not in ("blank", "separator"):
                excerpt = line[:80].decode("utf-8", errors="replace").rstrip("\r\n")
                diag.skip(rec, path, lineno, repr(excerpt))
            return []
        diag.records += 1
        diag.record_types[rec.type] += 1
        if rec.truncated:
            diag.warn("truncated-record", path, lineno, "line ends inside a quoted value")
        key: EventKey = (rec.node, rec.stamp, rec.serial)
        closed = self.reassembler.feed(rec)
        if self.reassembler.is_pending(key):
            if key not in self._first:
                self._first[key] = LineRef(file, lineno, start)
            if candidate and self.prefilter:
                self._kept.add(key)
        return self._forget(closed)

    def _forget(self, events: list[AuditEvent]) -> list[ClosedEvent]:
        out: list[ClosedEvent] = []
        for ev in events:
            key = (ev.node, ev.stamp, ev.serial)
            where = self._first.pop(key, None)
            if not self.prefilter:
                out.append((ev, where))
            elif key in self._kept:
                self._kept.discard(key)
                out.append((self._parsed(ev), where))
            else:
                self.dropped += 1
                self.dropped_exec += any(r.type == "EXECVE" for r in ev.records)
        return out

    def _parsed(self, ev: AuditEvent) -> AuditEvent:
        """``ev`` with its light records parsed in full (what the full path would have built)."""
        if all(r.text for r in ev.records):
            return ev
        records: list[AuditRecord] = []
        for r in ev.records:
            full = parse_line(r.fields[0][1], path=r.path, lineno=r.lineno) if not r.text else r
            assert not isinstance(full, str), "a light header always parses"
            if full.truncated and not r.text:
                self.diagnostics.warn("truncated-record", r.path, r.lineno,
                                      "line ends inside a quoted value")
            records.append(full)
        return replace(ev, time=records[0].time, records=records)

    def flush_idle(self) -> list[ClosedEvent]:
        """Close the events that have been quiet for ``idle_seconds``."""
        return self._forget(self.reassembler.flush_idle())

    def flush(self) -> list[ClosedEvent]:
        """Close every pending event."""
        return self._forget(self.reassembler.flush())

    def oldest_pending(self) -> LineRef | None:
        """Where the first record of the oldest event still pending was read, if any."""
        return next(iter(self._first.values())) if self._first else None
