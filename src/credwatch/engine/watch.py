"""Live detection: follow a log, reassemble, evaluate, store, emit.

:class:`Watcher` ties the pieces together: the one
:class:`~credwatch.sources.follow.Follower` (``tail -F`` by file identity, with
rotation, copytruncate and compressed-rotation handling), the audit
:class:`~credwatch.sources.follow_audit.AuditStream` (or plain NDJSON lines),
the :class:`~credwatch.engine.scan.Scanner`, the alert store and the sinks.
:meth:`Watcher.step` is one poll; :meth:`Watcher.run` repeats it.

Exactly-once, across restarts and ``kill -9``: after each batch the alerts it
produced and the read position after it are committed in *one* SQLite
transaction (:class:`~credwatch.engine.checkpoint.CheckpointStore`). The
position is the start of the oldest audit event still being reassembled (or
the follower's position when none is), so a restart re-reads at most the
lines of events that were in flight, never skips one; a re-read event gives
the same alert id, which the store already holds, so it is not emitted twice.
Only alerts new to the store are written to the sinks, after the commit: a
crash between the two loses that line of output, never the alert.

Failures never stop the loop or repeat after a restart:

* a record whose evaluation raises (mapping or matching) is reported once as
  ``path:line: evaluation failed: <reason>``, counted in
  :attr:`WatchStats.failed_records`, and passed; its position is stored with
  the checkpoint, so a restart that re-reads it passes it silently;
* what the follower cannot read (a corrupt rotated ``.gz``, an I/O error) is
  reported as ``path: reason`` and counted in :attr:`WatchStats.failed_inputs`;
* notes (an over-long line skipped, a checkpointed file gone) are reported
  and do not count as failures.

``credwatch watch`` exits 3 (PARTIAL) when either failure count is non-zero.

Prefilter (on by default, as scan's fast path): the rules' literals
(:meth:`~credwatch.engine.scan.Scanner.fast_path`) pick the lines that can
matter, with the same finders as scan: NDJSON lines through
:class:`~credwatch.sources.prefiltered.RangeScanner`, audit records through
:class:`~credwatch.sources.audit_prefiltered.AuditLineFilter`'s needles. Other
NDJSON lines are counted, not decoded; other audit records are grouped by
their header only and their events dropped when they close (see
:class:`~credwatch.sources.follow_audit.AuditStream`). The alerts are those of
the full path; what differs is only which malformed non-candidate lines are
reported (as with scan's fast path).

Lag: a poll reads at most ``max_poll_bytes``. After each batch the follower's
:meth:`~credwatch.sources.follow.Follower.lag` (bytes not read yet, and at
least how long the oldest has waited) is kept in :attr:`Watcher.lag`; while
it is at least ``lag_warn_seconds`` a ``path: falling behind ...`` note is
reported at most every ``lag_report_every`` seconds, and ``caught up`` once
it is back to zero. The status (counts and lag) is written to the store's
``watch_status`` table (:class:`~credwatch.engine.runs.WatchStatus`) at most
every ``status_every`` seconds while anything in it changes, every
``STATUS_HEARTBEAT`` seconds otherwise (an idle watch does not write to the
store every second), and when the watch stops.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any, Literal

from credwatch.alerts.store import AlertStore
from credwatch.engine.checkpoint import MAX_SKIP, CheckpointStore, SkipKey
from credwatch.engine.runs import RunStore, WatchStatus
from credwatch.engine.scan import Scanner
from credwatch.errors import SourceError
from credwatch.normalize.auditd import NormalizeStats, to_ecs
from credwatch.sinks.output.base import Sink
from credwatch.sources import auditd as raw
from credwatch.sources.audit_prefiltered import AuditLineFilter
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import line_records_checked
from credwatch.sources.follow import (
    MAX_LINE_BYTES,
    MAX_POLL_BYTES,
    FollowedLine,
    Follower,
    FollowLag,
    LineBlock,
    LineRef,
    Position,
)
from credwatch.sources.follow_audit import AuditStream, ClosedEvent
from credwatch.sources.prefiltered import RangeScanner
from credwatch.sources.record import Record

__all__ = ["WatchStats", "Watcher"]

#: An unchanged status is written again after this many seconds (so a reader can tell it is alive).
STATUS_HEARTBEAT = 60.0
#: Longest exception text repeated in a report.
_REASON_CHARS = 200


@dataclass
class WatchStats:
    """What a watch has done so far."""

    lines: int = 0
    events: int = 0
    alerts: int = 0
    duplicates: int = 0
    non_exec: int = 0
    #: Records whose evaluation raised (reported, passed).
    failed_records: int = 0
    #: Inputs the follower could not read (reported as ``path: reason``).
    failed_inputs: int = 0
    #: Records passed because they had already failed before a restart.
    skipped_failed: int = 0
    #: Events passed over by the literal prefilter (NDJSON lines, audit events), not decoded.
    prefiltered: int = 0
    #: ``falling behind`` notes reported.
    lag_reports: int = 0
    #: The largest lag seen, in seconds (a lower bound, see :class:`FollowLag`).
    max_lag_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)

    @property
    def failed(self) -> int:
        """Every failure: a non-zero value makes ``watch`` exit 3 (PARTIAL)."""
        return self.failed_records + self.failed_inputs


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return first[:_REASON_CHARS]


class Watcher:
    """Follow ``path`` and turn new records into alerts (see module doc)."""

    def __init__(self, path: str, scanner: Scanner, store: AlertStore, sinks: list[Sink], *,
                 input_format: Literal["auditd", "ndjson"] = "auditd",
                 start: Literal["beginning", "end"] = "end",
                 poll_interval: float = 0.15, idle_seconds: float = 0.3,
                 quiet_records: int = raw.DEFAULT_QUIET_RECORDS,
                 max_line_bytes: int = MAX_LINE_BYTES, settle_seconds: float = 2.0,
                 prefilter: bool = True, max_poll_bytes: int = MAX_POLL_BYTES,
                 lag_warn_seconds: float = 1.0, lag_report_every: float = 10.0,
                 status_every: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 on_alert: Callable[[Mapping[str, Any]], None] | None = None,
                 on_problem: Callable[[SourceError], None] | None = None) -> None:
        self.path = path
        self.scanner = scanner
        self.store = store
        self.sinks = sinks
        self.input_format = input_format
        self.checkpoints = CheckpointStore(store.conn)
        saved = self.checkpoints.load(path)
        self._saved: Position | None = saved.position if saved else None
        self._skip: set[SkipKey] = set(saved.skip) if saved else set()
        self._skip_changed = False
        self.follower = Follower(path, resume=self._saved, start=start,
                                 poll_interval=poll_interval, max_line_bytes=max_line_bytes,
                                 max_poll_bytes=max_poll_bytes, settle_seconds=settle_seconds,
                                 clock=clock, wall=wall)
        fast = scanner.fast_path("always") if prefilter else None
        #: The literal filters (``None``: that format is read in full).
        self.ndjson_filter = (RangeScanner(fast.literals)
                              if fast is not None and fast.literals is not None else None)
        self.audit_filter = (AuditLineFilter(fast.audit_needles)
                             if fast is not None and fast.audit_needles is not None else None)
        self.audit = AuditStream(idle_seconds=idle_seconds, quiet_records=quiet_records,
                                 clock=clock, prefilter=self.audit_filter is not None)
        self._dropped_exec = 0
        #: How far behind the writer reading was after the last batch.
        self.lag = FollowLag(0, 0.0, 0, 0)
        self.lag_warn_seconds = lag_warn_seconds
        self.lag_report_every = lag_report_every
        self._lag_reported: float | None = None  # when the last "falling behind" was reported
        self.runs = RunStore(store)
        self.status_every = status_every
        self._status_saved: float | None = None
        self._status_seen: tuple[int, ...] = ()
        self._wall = wall
        self._started_at = datetime.fromtimestamp(wall(), UTC)
        self.audit_diag = self.audit.diagnostics
        self.normalize_stats = NormalizeStats()
        self.diag: Diagnostics = scanner.diagnostics
        self.stats = WatchStats()
        self.on_alert = on_alert
        self.on_problem = on_problem
        self._clock = clock

    # -- reporting ---------------------------------------------------------------------------
    def _report(self, err: SourceError) -> None:
        if self.on_problem is not None:
            self.on_problem(err)

    def _collect_problems(self) -> None:
        for p in self.follower.take_problems():
            if p.failure:
                self.stats.failed_inputs += 1
            self._report(p.error)

    # -- evaluation --------------------------------------------------------------------------
    def _evaluate(self, where: LineRef | None, path: str, line: int,
                  produce: Callable[[], list[Record]], alerts: list[Mapping[str, Any]]) -> None:
        """Evaluate the records ``produce`` makes; a failure is reported and passed."""
        key = (where.file.dev, where.file.ino, where.start) if where is not None else None
        if key is not None and key in self._skip:
            self.stats.skipped_failed += 1
            return
        try:
            found: list[Mapping[str, Any]] = []
            records = produce()
            for rec in records:
                found.extend(self.scanner.alerts_for(rec))
        except Exception as exc:  # one bad record must not stop the watch
            self.stats.failed_records += 1
            if key is not None:
                self._skip.add(key)
                self._skip_changed = True
            self._report(SourceError(f"evaluation failed: {_reason(exc)}", path, line))
            return
        for _ in records:
            self.stats.events += 1
            self.diag.events += 1
        if found:
            self.diag.matched += 1
            alerts.extend(found)

    def _audit_events(self, closed: list[ClosedEvent], alerts: list[Mapping[str, Any]]) -> None:
        for ev, where in closed:
            def produce(ev: raw.AuditEvent = ev) -> list[Record]:
                doc = to_ecs(ev, stats=self.normalize_stats)
                if doc is None:
                    self.stats.non_exec += 1
                    return []
                return [Record(doc, ev.path, ev.lineno)]
            self._evaluate(where, ev.path, ev.lineno, produce, alerts)

    def _ndjson_line(self, fl: FollowedLine, alerts: list[Mapping[str, Any]]) -> None:
        # The line reader of scan: a line that is not JSON, or an event Elasticsearch's
        # mapping would reject, is counted in diag, not an evaluation failure.
        self._evaluate(fl.ref, fl.path, fl.lineno,
                       lambda: list(line_records_checked(fl.line, fl.path, fl.lineno, self.diag)),
                       alerts)

    # -- per batch ---------------------------------------------------------------------------
    def step(self) -> int:
        """One poll: read what is new, evaluate it, store and checkpoint, emit; new alerts."""
        return self.process_blocks(self.follower.poll_blocks())

    def process(self, batch: list[FollowedLine]) -> int:
        """Handle one batch of lines (see :meth:`process_blocks`)."""
        return self.process_blocks([LineBlock.of(fl) for fl in batch])

    def process_blocks(self, blocks: list[LineBlock]) -> int:
        """Handle one poll's blocks of lines; returns the number of new alerts emitted."""
        self._collect_problems()
        alerts: list[Mapping[str, Any]] = []
        if self.input_format == "auditd":
            for blk in blocks:
                self._audit_block(blk, alerts)
            self._audit_events(self.audit.flush_idle(), alerts)
            dropped = self.audit.dropped_exec - self._dropped_exec
            self._dropped_exec = self.audit.dropped_exec
            self.stats.events += dropped
            self.stats.prefiltered += dropped
        else:
            for blk in blocks:
                self._ndjson_block(blk, alerts)
        fresh = self._commit(alerts)
        emitted = self._emit(fresh)
        self._check_lag()
        return emitted

    def _ndjson_block(self, blk: LineBlock, alerts: list[Mapping[str, Any]]) -> None:
        """Decode the candidate lines only (every line without a filter)."""
        if self.ndjson_filter is None:
            for fl in blk.lines():
                self.stats.lines += 1
                self._ndjson_line(fl, alerts)
            return
        data = blk.terminated
        scanned = self.ndjson_filter.scan_block(data, 0, len(data))
        self.stats.lines += scanned.lines
        for (n, line), at in zip(scanned.candidates, scanned.starts, strict=True):
            if line is not None:  # (scan_block holds every line)
                start = blk.start + at
                fl = FollowedLine(line, blk.file, blk.first_line + n - 1, start, start + len(line) + 1)
                self._ndjson_line(fl, alerts)
        self.stats.events += scanned.passed
        self.stats.prefiltered += scanned.passed
        self.diag.events += scanned.passed
        self.diag.prefiltered += scanned.passed

    def _audit_block(self, blk: LineBlock, alerts: list[Mapping[str, Any]]) -> None:
        """Feed the reassembler line by line, telling it which lines hold a needle."""
        lines = blk.data.split(b"\n")
        if not lines[-1]:
            lines.pop()  # after the last newline
        self.stats.lines += len(lines)
        wanted: set[int] | None = None
        if self.audit_filter is not None:
            data = blk.terminated
            ends, _execve = self.audit_filter.candidates.scan(data, 0, len(data))
            ends_at = list(accumulate(len(line) + 1 for line in lines)) if ends else []
            wanted = {bisect_left(ends_at, end) for end in ends}
        feed, ref, first, pos = self.audit.feed_at, blk.file, blk.first_line, blk.start
        for i, line in enumerate(lines):
            closed = feed(line, ref, first + i, pos, wanted is None or i in wanted)
            pos += len(line) + 1
            if closed:
                self._audit_events(closed, alerts)

    def _restart_point(self) -> Position | None:
        oldest = self.audit.oldest_pending()
        return oldest.position() if oldest is not None else self.follower.position

    def _commit(self, alerts: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Store the alerts and the restart point in one transaction; the new alerts."""
        pos = self._restart_point()
        if not alerts and not self._skip_changed and (pos is None or pos == self._saved):
            return []
        with self.store.transaction():
            fresh = self.store.insert(alerts) if alerts else []
            if pos is not None:
                self._prune_skip(pos)
                self.checkpoints.save(self.path, pos, self._skip)
        self._saved = pos
        self._skip_changed = False
        new = [a for a, is_new in zip(alerts, fresh, strict=True) if is_new]
        self.stats.duplicates += len(alerts) - len(new)
        return new

    def _prune_skip(self, pos: Position) -> None:
        """Failed records before the restart point will not be read again: forget them."""
        kept = {k for k in self._skip if (k[0], k[1]) != (pos.dev, pos.ino) or k[2] >= pos.offset}
        # Bounded: beyond MAX_SKIP failures in flight, the oldest may be reported again.
        self._skip = set(sorted(kept)[-MAX_SKIP:]) if len(kept) > MAX_SKIP else kept

    def _emit(self, alerts: list[Mapping[str, Any]]) -> int:
        for alert in alerts:
            for sink in self.sinks:
                sink.write(alert)
            if self.on_alert:
                self.on_alert(alert)
        if alerts:
            for sink in self.sinks:
                flush = getattr(sink, "flush", None)
                if callable(flush):
                    flush()
                stream = getattr(sink, "stream", None)
                if stream is not None and hasattr(stream, "flush"):
                    stream.flush()
        self.stats.alerts += len(alerts)
        return len(alerts)

    # -- lag and status ----------------------------------------------------------------------
    def _check_lag(self, final: bool = False) -> None:
        """Keep the follower's lag, report falling behind (and catching up), save the status."""
        lag = self.lag = self.follower.lag()
        self.stats.max_lag_seconds = max(self.stats.max_lag_seconds, lag.seconds)
        now = self._clock()
        if lag.bytes > 0 and lag.seconds >= self.lag_warn_seconds:
            if self._lag_reported is None or now - self._lag_reported >= self.lag_report_every:
                self._lag_reported = now
                self.stats.lag_reports += 1
                self._report(SourceError(
                    f"falling behind: {lag.bytes} bytes not read yet, the oldest written at "
                    f"least {lag.seconds:.1f} s ago", self.path))
        elif lag.bytes == 0 and self._lag_reported is not None:
            self._lag_reported = None
            self._report(SourceError("caught up: every byte written has been read", self.path))
        seen = (self.stats.lines, self.stats.alerts, self.stats.failed, lag.bytes, lag.offset)
        since = None if self._status_saved is None else now - self._status_saved
        if (final or since is None or (since >= self.status_every and seen != self._status_seen)
                or since >= STATUS_HEARTBEAT):
            self._status_saved, self._status_seen = now, seen
            self.save_status(running=not final)

    def status(self, running: bool = True) -> WatchStatus:
        """The watch's status now (what :meth:`save_status` stores)."""
        s, lag = self.stats, self.lag
        return WatchStatus(
            path=self.path, pid=os.getpid(), input_format=self.input_format,
            started_at=self._started_at, updated_at=datetime.fromtimestamp(self._wall(), UTC),
            running=running, lines=s.lines, events=s.events, prefiltered=s.prefiltered,
            alerts=s.alerts, failed=s.failed, read_offset=lag.offset, file_size=lag.size,
            lag_bytes=lag.bytes, lag_seconds=lag.seconds, max_lag_seconds=s.max_lag_seconds)

    def save_status(self, running: bool = True) -> None:
        """Write :meth:`status` to the store's ``watch_status`` table."""
        self.runs.save_watch_status(self.status(running))

    # -- loop --------------------------------------------------------------------------------
    def run(self, stop: threading.Event, max_idle: float | None = None) -> WatchStats:
        """Poll until ``stop`` is set (or ``max_idle`` seconds pass with no new line).

        Between empty polls it waits on ``stop`` itself, so a stop request is
        seen at once.
        """
        last_data = self._clock()
        try:
            while not stop.is_set():
                batch = self.follower.poll_blocks()
                self.process_blocks(batch)
                now = self._clock()
                if batch or self.follower.more:
                    last_data = now
                    continue
                if max_idle is not None and now - last_data >= max_idle:
                    break
                stop.wait(self.follower.poll_interval)
        finally:
            # Only events that have gone quiet are closed: one still being written is
            # left to the next start, whose checkpoint points at its first record.
            self.process([])
            self._check_lag(final=True)
            self.follower.close()
        return self.stats
