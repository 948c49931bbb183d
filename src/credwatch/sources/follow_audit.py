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
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from credwatch.sources.auditd import (
    DEFAULT_MAX_RECORDS_PER_EVENT,
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
    return None if m is None else _record(m, line, path, lineno)


def _record(m: re.Match[bytes], line: bytes, path: str, lineno: int) -> AuditRecord:
    node, rtype, stamp, serial = m.groups()
    # Positional: this runs for many lines of a busy log.
    return AuditRecord(rtype.decode("ascii"), node.decode("utf-8", errors="replace") if node else None,
                       stamp.decode("ascii"), int(serial), _NO_TIME, [(_RAW, line)], {}, "", path,
                       lineno)


@dataclass(slots=True)
class _Aside:
    """The plain lines of an event with no candidate yet: ``(line, line number, path)``."""

    lines: list[tuple[bytes, int, str]]
    last_seq: int
    last_time: float
    execve: bool


class _LightEvents:
    """Events kept aside by key, in order of last activity, closed by the reassembler's rules."""

    def __init__(self, quiet_records: int, max_pending: int, clock: Callable[[], float]) -> None:
        self.quiet_records = quiet_records
        self.max_pending = max_pending
        self.clock = clock
        self.events: OrderedDict[EventKey, _Aside] = OrderedDict()
        self.closed: set[EventKey] = set()
        self._closed_order: deque[EventKey] = deque()

    def add(self, key: EventKey, rtype: str, line: bytes, lineno: int, path: str, seq: int,
            ) -> tuple[bool, list[tuple[EventKey, _Aside]]]:
        """One plain record (the ``seq``-th read): whether it began an event, and the events closed."""
        events = self.events
        began = False
        closed: list[tuple[EventKey, _Aside]] = []
        if key in self.closed:
            pass  # a late record of an event already dropped (or its EOE): it only ages the others
        elif rtype == "EOE":
            ev = events.pop(key, None)
            if ev is not None:
                closed.append(self._close(key, ev))
        elif (ev := events.get(key)) is None:
            events[key] = _Aside([(line, lineno, path)], seq, self.clock(), rtype == "EXECVE")
            began = True
        else:
            if len(ev.lines) < DEFAULT_MAX_RECORDS_PER_EVENT:
                ev.lines.append((line, lineno, path))
            ev.last_seq, ev.last_time = seq, self.clock()
            ev.execve = ev.execve or rtype == "EXECVE"
            events.move_to_end(key)
        oldest = next(iter(events.values()), None)  # the usual case: nothing to expire
        if oldest is not None and (seq - oldest.last_seq >= self.quiet_records
                                   or len(events) > self.max_pending):
            closed += self.expire(seq)
        return began, closed

    def expire(self, seq: int) -> list[tuple[EventKey, _Aside]]:
        """Close the events quiet for ``quiet_records`` records once ``seq`` have been read."""
        out: list[tuple[EventKey, _Aside]] = []
        events = self.events
        while events:
            k, e = next(iter(events.items()))
            if seq - e.last_seq < self.quiet_records and len(events) <= self.max_pending:
                break
            del events[k]
            out.append(self._close(k, e))
        return out

    def idle(self, seconds: float | None) -> list[tuple[EventKey, _Aside]]:
        """Close the events quiet for ``seconds`` (all of them with ``None``)."""
        now = self.clock()
        keys = [k for k, e in self.events.items() if seconds is None or now - e.last_time >= seconds]
        return [self._close(k, self.events.pop(k)) for k in keys]

    def _close(self, key: EventKey, ev: _Aside) -> tuple[EventKey, _Aside]:
        self.closed.add(key)
        self._closed_order.append(key)
        while len(self._closed_order) > max(self.max_pending, 1024):
            self.closed.discard(self._closed_order.popleft())
        return key, ev


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
        self._idle_seconds = idle_seconds
        self._aside = _LightEvents(quiet_records, max_pending, clock)
        self._seq = 0  # records read (fed to the reassembler or kept aside)
        self._unfed = 0  # of those, kept aside and not yet counted by the reassembler

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
        if not candidate and self.prefilter and (m := _LIGHT.match(line)) is not None:
            return self._plain(m, line, file, lineno, start)
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
        if not self.prefilter:
            closed = self.reassembler.feed(rec)
        elif key in self._aside.closed:
            self._seq += 1  # late: its event was dropped, as the reassembler would say
            self._unfed += 1
            self._age()
            if rec.type != "EOE":
                diag.skip("late-record", path, lineno,
                          f"{rec.type} for audit({rec.stamp}:{rec.serial}) after its event closed")
            return []
        else:
            closed = self._bring(key)
            self._seq += 1
            closed += self.reassembler.feed(rec)
            self._age()
        if self.reassembler.is_pending(key):
            if key not in self._first:
                self._first[key] = LineRef(file, lineno, start)
            if candidate and self.prefilter:
                self._kept.add(key)
        return self._forget(closed)

    def _plain(self, m: re.Match[bytes], line: bytes, file: FileRef, lineno: int,
               start: int) -> list[ClosedEvent]:
        """A plain line that is no candidate: reassembled if its event is, else kept aside."""
        node, rtype_b, stamp, serial = m.groups()
        rtype = rtype_b.decode("ascii")
        diag = self.diagnostics
        diag.records += 1
        diag.record_types[rtype] += 1
        key: EventKey = (node.decode("utf-8", errors="replace") if node else None,
                         stamp.decode("ascii"), int(serial))
        self._seq += 1
        if self.reassembler.is_pending(key):
            closed = self._sync()
            closed += self.reassembler.feed(_record(m, line, file.path, lineno))
            self._age()
            return self._forget(closed)
        self._unfed += 1
        began, dropped = self._aside.add(key, rtype, line, lineno, file.path, self._seq)
        if began and key not in self._first:
            self._first[key] = LineRef(file, lineno, start)
        for done, aside in dropped:
            self._drop(done, aside)
        return []

    def _sync(self) -> list[AuditEvent]:
        """Let the reassembler count the records kept aside since it last did."""
        if not self._unfed:
            return []
        unfed, self._unfed = self._unfed, 0
        return self.reassembler.skip(unfed)

    def _bring(self, key: EventKey) -> list[AuditEvent]:
        """Before a record of ``key`` is reassembled: its lines kept aside are fed first."""
        aside = self._aside.events.pop(key, None)
        if aside is None:
            return self._sync()
        self._unfed -= len(aside.lines)  # counted once: now by the reassembler
        closed = self._sync()
        for line, lineno, path in aside.lines:
            rec = _light(line, path, lineno)
            assert rec is not None, "kept aside because its header is plain"
            closed += self.reassembler.feed(rec)
        return closed

    def _age(self) -> None:
        """A record went elsewhere: the events kept aside age by it too."""
        for key, aside in self._aside.expire(self._seq):
            self._drop(key, aside)

    def _drop(self, key: EventKey, aside: _Aside) -> None:
        self._first.pop(key, None)
        self.dropped += 1
        self.dropped_exec += aside.execve

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
        closed = self._sync()
        if self._idle_seconds is not None:
            for key, aside in self._aside.idle(self._idle_seconds):
                self._drop(key, aside)
        return self._forget(closed + self.reassembler.flush_idle())

    def flush(self) -> list[ClosedEvent]:
        """Close every pending event."""
        closed = self._sync()
        for key, aside in self._aside.idle(None):
            self._drop(key, aside)
        return self._forget(closed + self.reassembler.flush())

    def oldest_pending(self) -> LineRef | None:
        """Where the first record of the oldest event still pending was read, if any."""
        return next(iter(self._first.values())) if self._first else None
