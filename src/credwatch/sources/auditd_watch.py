"""Follow a live audit log and yield reassembled events, with safe checkpoints.

:class:`AuditStream` reassembles followed lines and tracks the safe restart
position; :class:`AuditLogWatcher` glues it to a :class:`~credwatch.sources.follow.Follower`,
the :class:`~credwatch.sources.auditd.Reassembler` (closing events after
``idle_seconds`` of quiet, so an exec is reported well within a second) and
an optional :class:`~credwatch.engine.checkpoint.CheckpointStore`.

Checkpoint rule: the stored position is the start of the oldest record of any
event still being reassembled, or, when none is pending, the end of the last
line read. Restarting there can never skip a record. It can re-read records
of events that had already closed after that point: delivery is *at least
once*, and such an event comes back identical (same records, same
:attr:`AuditEvent.id`), so an alert keyed on the event content or id is not
duplicated.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import Literal

from credwatch.engine.checkpoint import CheckpointStore
from credwatch.sources.auditd import AuditEvent, Diagnostics, EventKey, Reassembler, parse_line
from credwatch.sources.follow import FollowedLine, Follower

__all__ = ["DEFAULT_AUDIT_LOG", "AuditLogWatcher", "AuditStream"]

DEFAULT_AUDIT_LOG = "/var/log/audit/audit.log"


class AuditStream:
    """Reassemble followed audit lines into events, and know where a restart must begin.

    This is the part of live following that both :class:`AuditLogWatcher` and
    :class:`~credwatch.engine.watch.Watcher` need: it does not own the file.
    """

    def __init__(self, *, idle_seconds: float = 0.3, quiet_records: int = 2000,
                 max_pending: int = 4096, diagnostics: Diagnostics | None = None) -> None:
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.reassembler = Reassembler(idle_seconds=idle_seconds, quiet_records=quiet_records,
                                       max_pending=max_pending, diagnostics=self.diagnostics)
        # Where each pending event's first record was read; insertion order is read order.
        self._first_pos: dict[EventKey, tuple[int, int]] = {}

    def feed(self, item: FollowedLine, lineno: int | None = None) -> list[AuditEvent]:
        """Parse one followed line; return the events it closes.

        ``lineno`` names the line in diagnostics and events (default: its byte offset).
        """
        diag = self.diagnostics
        diag.lines += 1
        where = item.start if lineno is None else lineno
        rec = parse_line(item.line, path=item.path, lineno=where)
        if isinstance(rec, str):
            if rec not in ("blank", "separator"):
                excerpt = item.line[:80].decode("utf-8", errors="replace").rstrip("\r\n")
                diag.skip(rec, item.path, where, repr(excerpt))
            return []
        diag.records += 1
        diag.record_types[rec.type] += 1
        if rec.truncated:
            diag.warn("truncated-record", item.path, where, "line ends inside a quoted value")
        key: EventKey = (rec.node, rec.stamp, rec.serial)
        closed = self.reassembler.feed(rec)
        if key not in self._first_pos and self.reassembler.is_pending(key):
            self._first_pos[key] = (item.inode, item.start)
        return self._forget(closed)

    def _forget(self, events: list[AuditEvent]) -> list[AuditEvent]:
        for ev in events:
            self._first_pos.pop((ev.node, ev.stamp, ev.serial), None)
        return events

    def flush_idle(self) -> list[AuditEvent]:
        """Close the events that have been quiet for ``idle_seconds``."""
        return self._forget(self.reassembler.flush_idle())

    def flush(self) -> list[AuditEvent]:
        """Close every pending event."""
        return self._forget(self.reassembler.flush())

    def oldest_pending(self) -> tuple[int, int] | None:
        """``(inode, offset)`` of the first record of the oldest event still pending, if any."""
        return next(iter(self._first_pos.values())) if self._first_pos else None


class AuditLogWatcher:
    """Live audit events from ``path`` (default ``/var/log/audit/audit.log``).

    Without a stored checkpoint, reading starts at ``start`` (the end of the
    file by default, like ``tail -F``). Call :meth:`commit` after the events
    of a batch have been fully handled (alerts written) to persist the
    position; :meth:`batches` does not commit by itself.
    """

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_AUDIT_LOG, *,
                 store: CheckpointStore | None = None,
                 start: Literal["beginning", "end"] = "end",
                 poll_interval: float = 0.15,
                 idle_seconds: float = 0.3,
                 quiet_records: int = 2000,
                 max_pending: int = 4096,
                 diagnostics: Diagnostics | None = None) -> None:
        self.path = os.fspath(path)
        self.store = store
        cp = store.get(self.path) if store is not None else None
        self.follower = Follower(self.path, start=start, poll_interval=poll_interval,
                                 checkpoint=(cp.inode, cp.offset) if cp else None)
        self.stream = AuditStream(idle_seconds=idle_seconds, quiet_records=quiet_records,
                                  max_pending=max_pending, diagnostics=diagnostics)
        self.diagnostics = self.stream.diagnostics
        self.reassembler = self.stream.reassembler
        self._last_end: tuple[int, int] | None = None

    def poll(self) -> list[AuditEvent]:
        """Read what is new, and return the events that closed (possibly none)."""
        out: list[AuditEvent] = []
        for item in self.follower.poll():
            # In a followed file the "line number" is the byte offset of the line.
            out.extend(self.stream.feed(item))
            self._last_end = (item.inode, item.end)
        out.extend(self.stream.flush_idle())
        return out

    def batches(self, stop: threading.Event | Callable[[], bool] | None = None,
                ) -> Iterator[list[AuditEvent]]:
        """Yield closed events once per poll (empty lists while idle) until ``stop``."""
        def stopped() -> bool:
            if stop is None:
                return False
            return stop.is_set() if isinstance(stop, threading.Event) else bool(stop())

        try:
            while not stopped():
                events = self.poll()
                yield events
                if not events:
                    self.follower.wait()
        finally:
            self.follower.close()

    def safe_position(self) -> tuple[int, int] | None:
        """``(inode, offset)`` from which a restart loses nothing (see module doc)."""
        return self.stream.oldest_pending() or self._last_end or self.follower.position

    def commit(self) -> tuple[int, int] | None:
        """Store :meth:`safe_position` in the checkpoint store (if any) and return it."""
        pos = self.safe_position()
        if pos is not None and self.store is not None:
            self.store.set(self.path, pos[0], pos[1])
        return pos

    def flush(self) -> list[AuditEvent]:
        """Close every pending event (on shutdown); call :meth:`commit` once they are handled."""
        return self.stream.flush()

    def close(self) -> None:
        """Release the file handle (pending events are *not* flushed)."""
        self.follower.close()
