"""Group audit records into events: a bounded reassembly buffer.

A kernel audit *event* is several records sharing one ``audit(<sec.ms>:<serial>)``
stamp; the log has no end-of-event marker (``EOE`` is optional) and records of
concurrent events interleave. See :class:`Reassembler`.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, tzinfo

from credwatch.normalize.audit_event import AuditEvent, AuditRecord
from credwatch.sources.audit_parse import parse_line
from credwatch.sources.diagnostics import Diagnostics

#: Defaults for the bounded reassembly buffer.
DEFAULT_QUIET_RECORDS = 2000
DEFAULT_MAX_PENDING = 4096
DEFAULT_MAX_RECORDS_PER_EVENT = 4096


EventKey = tuple[str | None, str, int]


@dataclass(slots=True)
class _Pending:
    event: AuditEvent
    last_seq: int
    last_time: float


class Reassembler:
    """Group records into events by ``(node, stamp, serial)`` with a bounded buffer.

    An event is closed when ``quiet_records`` further records arrived without
    one of its own, when ``idle_seconds`` passed without one (see
    :meth:`flush_idle`, for live following), when an ``EOE`` record arrives,
    when the buffer exceeds ``max_pending`` (the least recently active event is
    closed early and counted as ``forced-close``), or at :meth:`flush`. A
    record arriving for an event already closed is counted as ``late-record``
    with its location rather than emitted as a bogus second event.
    """

    def __init__(self, *, quiet_records: int = DEFAULT_QUIET_RECORDS,
                 max_pending: int = DEFAULT_MAX_PENDING,
                 max_records_per_event: int = DEFAULT_MAX_RECORDS_PER_EVENT,
                 idle_seconds: float | None = None,
                 diagnostics: Diagnostics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if quiet_records < 1 or max_pending < 1 or max_records_per_event < 1:
            raise ValueError("reassembly limits must be positive")
        self.quiet_records = quiet_records
        self.max_pending = max_pending
        self.max_records_per_event = max_records_per_event
        self.idle_seconds = idle_seconds
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self._clock = clock
        self._pending: OrderedDict[EventKey, _Pending] = OrderedDict()
        self._seq = 0
        self._closed: set[EventKey] = set()
        self._closed_order: deque[EventKey] = deque()

    @property
    def pending(self) -> int:
        """Events currently buffered."""
        return len(self._pending)

    def is_pending(self, key: EventKey) -> bool:
        """True while the event ``(node, stamp, serial)`` is buffered."""
        return key in self._pending

    def feed(self, rec: AuditRecord) -> list[AuditEvent]:
        """Add one record; return the events this closes (possibly none)."""
        self._seq += 1
        key: EventKey = (rec.node, rec.stamp, rec.serial)
        out: list[AuditEvent] = []
        if key in self._closed and rec.type == "EOE":
            pass  # the end-of-event marker of an event already closed: nothing is lost
        elif key in self._closed:
            self.diagnostics.skip("late-record", rec.path, rec.lineno,
                                  f"{rec.type} for audit({rec.stamp}:{rec.serial}) after its event closed")
        elif rec.type == "EOE":
            pend = self._pending.pop(key, None)
            if pend is not None:
                out.append(self._close(key, pend))
        else:
            now = self._clock()
            pend = self._pending.get(key)
            if pend is None:
                ev = AuditEvent(node=rec.node, stamp=rec.stamp, serial=rec.serial, time=rec.time,
                                records=[rec], path=rec.path, lineno=rec.lineno)
                self._pending[key] = _Pending(ev, self._seq, now)
            else:
                if len(pend.event.records) >= self.max_records_per_event:
                    self.diagnostics.skip("oversized-event", rec.path, rec.lineno,
                                          f"more than {self.max_records_per_event} records")
                else:
                    pend.event.records.append(rec)
                pend.last_seq, pend.last_time = self._seq, now
                self._pending.move_to_end(key)
        self._expire(out)
        return out

    def skip(self, n: int) -> list[AuditEvent]:
        """Count ``n`` records read but kept elsewhere; return the events that closes.

        They age the pending events as fed records would (``quiet_records``):
        a live follower keeps the records of events that cannot matter out of
        the buffer, yet closes the others exactly when the full reading would.
        """
        self._seq += n
        out: list[AuditEvent] = []
        self._expire(out)
        return out

    def _expire(self, out: list[AuditEvent]) -> None:
        # The dict is ordered by last activity, so expired events are at the front.
        while self._pending:
            k, p = next(iter(self._pending.items()))
            if self._seq - p.last_seq < self.quiet_records and len(self._pending) <= self.max_pending:
                break
            if len(self._pending) > self.max_pending:
                self.diagnostics.warn("forced-close", p.event.path, p.event.lineno,
                                      f"buffer full ({self.max_pending} events)")
            del self._pending[k]
            out.append(self._close(k, p))

    def flush_idle(self, now: float | None = None) -> list[AuditEvent]:
        """Close events with no record for ``idle_seconds`` (no-op when that is None)."""
        if self.idle_seconds is None:
            return []
        now = self._clock() if now is None else now
        out: list[AuditEvent] = []
        for k in [k for k, p in self._pending.items() if now - p.last_time >= self.idle_seconds]:
            out.append(self._close(k, self._pending.pop(k)))
        return out

    def flush(self) -> list[AuditEvent]:
        """Close every buffered event (end of input)."""
        out = [self._close(k, p) for k, p in self._pending.items()]
        self._pending.clear()
        return out

    def _close(self, key: EventKey, pend: _Pending) -> AuditEvent:
        self._closed.add(key)
        self._closed_order.append(key)
        # Remember closed keys for late-record detection, boundedly.
        while len(self._closed_order) > max(self.max_pending, 1024):
            self._closed.discard(self._closed_order.popleft())
        self.diagnostics.events += 1
        return pend.event




def feed_lines(lines: Iterable[tuple[int, bytes]], reassembler: Reassembler, *,
               path: str, interpreted_tz: tzinfo = UTC) -> Iterator[AuditEvent]:
    """Parse numbered lines and feed them to ``reassembler``; yield closed events.

    Does not flush at the end, so that one reassembler can span several files
    (an event may straddle a rotation).
    """
    diag = reassembler.diagnostics
    last: bytes = b"\n"
    last_no = 0
    for lineno, line in lines:
        last, last_no = line, lineno
        diag.lines += 1
        rec = parse_line(line, path=path, lineno=lineno, interpreted_tz=interpreted_tz)
        if isinstance(rec, str):
            # ausearch's "----" separators are ignored: it sometimes splits one
            # serial over two blocks (LOGIN apart from its SYSCALL), and grouping
            # by serial rebuilds what the raw log holds.
            if rec not in ("blank", "separator"):
                excerpt = line[:80].decode("utf-8", errors="replace").rstrip("\r\n")
                diag.skip(rec, path, lineno, repr(excerpt))
            continue
        diag.records += 1
        diag.record_types[rec.type] += 1
        if rec.truncated:
            diag.warn("truncated-record", path, lineno, "line ends inside a quoted value")
        yield from reassembler.feed(rec)
    if last_no and not last.endswith(b"\n"):
        diag.warn("no-final-newline", path, last_no, "last line has no newline (maybe half-written)")


def iter_audit_events(lines: Iterable[bytes], *, path: str = "<input>",
                      diagnostics: Diagnostics | None = None,
                      quiet_records: int = DEFAULT_QUIET_RECORDS,
                      max_pending: int = DEFAULT_MAX_PENDING,
                      max_records_per_event: int = DEFAULT_MAX_RECORDS_PER_EVENT,
                      first_lineno: int = 1,
                      interpreted_tz: tzinfo = UTC) -> Iterator[AuditEvent]:
    """Reassemble the audit events of one stream of lines (bytes, newline kept or not).

    Events are yielded as they close; everything still buffered is yielded at
    the end. Bad lines are counted in ``diagnostics``.
    """
    yield from iter_numbered_audit_events(
        enumerate(lines, first_lineno), path=path, diagnostics=diagnostics,
        quiet_records=quiet_records, max_pending=max_pending,
        max_records_per_event=max_records_per_event, interpreted_tz=interpreted_tz)


def iter_numbered_audit_events(lines: Iterable[tuple[int, bytes]], *, path: str = "<input>",
                               diagnostics: Diagnostics | None = None,
                               quiet_records: int = DEFAULT_QUIET_RECORDS,
                               max_pending: int = DEFAULT_MAX_PENDING,
                               max_records_per_event: int = DEFAULT_MAX_RECORDS_PER_EVENT,
                               interpreted_tz: tzinfo = UTC) -> Iterator[AuditEvent]:
    """:func:`iter_audit_events` over ``(line number, line)`` pairs, numbered by the caller.

    The literal fast path passes only some lines of a file, with their true numbers.
    """
    reasm = Reassembler(quiet_records=quiet_records, max_pending=max_pending,
                        max_records_per_event=max_records_per_event, diagnostics=diagnostics)
    yield from feed_lines(lines, reasm, path=path, interpreted_tz=interpreted_tz)
    yield from reasm.flush()
