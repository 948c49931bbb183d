"""Live detection: follow a log, reassemble, evaluate, store, emit.

:class:`Watcher` ties the pieces together: a :class:`~credwatch.sources.follow.Follower`
(``tail -F`` with rotation handling), the audit :class:`~credwatch.sources.auditd.Reassembler`
(or plain NDJSON lines), the :class:`~credwatch.engine.scan.Scanner`, the alert
store and the output sinks.

Exactly-once, across restarts: the read position saved after each batch is the
start of the oldest audit event still being reassembled (or the end of the
batch when none is), so a restart re-reads at most a few lines of events that
were in flight, never skips one. Alerts are inserted into the store (keyed by
the deterministic alert id) *before* they are written to the sinks, and only
alerts the store did not already hold are written: a re-read event produces
the same id and is not emitted twice. The store, not stdout, is the record of
truth: a crash between the store insert and the sink write loses that line of
output, never the alert.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from credwatch.alerts.sinks.base import Sink
from credwatch.alerts.store import AlertStore
from credwatch.engine.checkpoint import CheckpointStore
from credwatch.engine.scan import Scanner
from credwatch.normalize.auditd import NormalizeStats, to_ecs
from credwatch.sources import auditd as raw
from credwatch.sources.auditd_watch import AuditStream
from credwatch.sources.ecs import Diagnostics, Record, documents_to_records
from credwatch.sources.follow import FollowedLine, Follower


@dataclass
class WatchStats:
    """What a watch has done so far."""

    lines: int = 0
    events: int = 0
    alerts: int = 0
    duplicates: int = 0
    non_exec: int = 0
    started: float = field(default_factory=time.monotonic)


class Watcher:
    """Follow ``path`` and turn new records into alerts (see module doc)."""

    def __init__(self, path: str, scanner: Scanner, store: AlertStore, sinks: list[Sink], *,
                 input_format: Literal["auditd", "ndjson"] = "auditd",
                 start: Literal["beginning", "end"] = "end",
                 poll_interval: float = 0.15, idle_seconds: float = 0.3,
                 quiet_records: int = raw.DEFAULT_QUIET_RECORDS,
                 on_alert: Callable[[Mapping[str, Any]], None] | None = None) -> None:
        self.path = path
        self.scanner = scanner
        self.store = store
        self.sinks = sinks
        self.input_format = input_format
        self.checkpoints = CheckpointStore(store.conn)
        saved = self.checkpoints.get(path)
        self.follower = Follower(path, checkpoint=(saved.inode, saved.offset) if saved else None,
                                 start=start, poll_interval=poll_interval)
        self.audit = AuditStream(idle_seconds=idle_seconds, quiet_records=quiet_records)
        self.audit_diag = self.audit.diagnostics
        self.normalize_stats = NormalizeStats()
        self.diag: Diagnostics = scanner.diagnostics
        self.stats = WatchStats()
        self.on_alert = on_alert
        self._last_pos: tuple[int, int] | None = None

    # -- per line ----------------------------------------------------------------------------
    def _ndjson_line(self, fl: FollowedLine, records: list[Record]) -> None:
        if not fl.line.strip():
            return
        try:
            doc = orjson.loads(fl.line)
        except orjson.JSONDecodeError:
            self.diag.skip("malformed-json", fl.path, self.stats.lines)
            return
        records.extend(documents_to_records(doc, fl.path, self.stats.lines, self.diag))

    # -- per batch ---------------------------------------------------------------------------
    def process(self, batch: list[FollowedLine], *, final: bool = False) -> int:
        """Handle one batch of lines; returns the number of new alerts emitted.

        ``final`` marks the last call before stopping (the follower is closed
        by then, so the checkpoint uses the last position seen).
        """
        events: list[raw.AuditEvent] = []
        records: list[Record] = []
        for fl in batch:
            self.stats.lines += 1
            if self.input_format == "auditd":
                events.extend(self.audit.feed(fl, self.stats.lines))
            else:
                self._ndjson_line(fl, records)
        if self.input_format == "auditd":
            events.extend(self.audit.flush_idle())
            for ev in events:
                doc = to_ecs(ev, stats=self.normalize_stats)
                if doc is None:
                    self.stats.non_exec += 1
                    continue
                records.append(Record(doc, ev.path, ev.lineno))
        alerts: list[Mapping[str, Any]] = []
        for rec in records:
            self.stats.events += 1
            self.diag.events += 1
            found = self.scanner.alerts_for(rec)
            if found:
                self.diag.matched += 1
                alerts.extend(found)
        emitted = self._emit(alerts)
        self._checkpoint(batch, final)
        return emitted

    def _emit(self, alerts: list[Mapping[str, Any]]) -> int:
        if not alerts:
            return 0
        fresh = self.store.insert(alerts)
        n = 0
        for alert, new in zip(alerts, fresh, strict=True):
            if not new:
                self.stats.duplicates += 1
                continue
            n += 1
            for sink in self.sinks:
                sink.write(alert)
            if self.on_alert:
                self.on_alert(alert)
        for sink in self.sinks:
            flush = getattr(sink, "flush", None)
            if callable(flush):
                flush()
            stream = getattr(sink, "stream", None)
            if stream is not None and hasattr(stream, "flush"):
                stream.flush()
        self.stats.alerts += n
        return n

    def _checkpoint(self, batch: list[FollowedLine], final: bool) -> None:
        if self.follower.position is not None:
            self._last_pos = self.follower.position
        oldest = self.audit.oldest_pending()
        if oldest is not None:
            self.checkpoints.set(self.path, *oldest)
            return
        # The follower is closed by the time the final flush runs; use the last position seen.
        pos = self._last_pos
        if pos is not None and (batch or final or self.checkpoints.get(self.path) is None):
            self.checkpoints.set(self.path, pos[0], pos[1])

    # -- loop --------------------------------------------------------------------------------
    def run(self, stop: threading.Event, max_idle: float | None = None) -> WatchStats:
        """Follow until ``stop`` is set (or ``max_idle`` seconds pass with no new line)."""
        last_data = time.monotonic()
        try:
            for batch in self.follower.iter_batches(stop):
                self.process(batch)
                now = time.monotonic()
                if batch:
                    last_data = now
                elif max_idle is not None and now - last_data >= max_idle:
                    break
        finally:
            # On stop, close only the events that have gone quiet. An event still
            # being written is left to the next start: the checkpoint points at
            # its first record, so it is re-read whole rather than cut in two.
            self.process([], final=True)
        return self.stats
