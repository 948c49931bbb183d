"""Raw audit logs searched by offset, like time-ordered NDJSON (see :mod:`credwatch.engine.window`).

auditd writes records in the order of their stamps (``msg=audit(<epoch>.<ms>:<serial>)``),
give or take the interleaving of events that were in flight together. A probe
reads one line's stamp with a regular expression; binary searches find a line
early enough that no earlier record can belong to an event of the span, and one
late enough that no later record can. Before anything is handed on, the stamps
of the lines in between are checked to be in order (within the tolerance); only
then are those lines reassembled into events. A log found out of order is read
in full, and remembered as such.

This holds only while the events' times are their stamps: the audit normalizer
sets ``@timestamp`` from the stamp and no ``event.ingested``, so the reader is
used for ``@timestamp``, and for ``event.ingested`` with the ``@timestamp``
fallback.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import IO, Any

from credwatch.engine.eventtime import primary_times, secondary_times
from credwatch.engine.window_reader import (
    BISECT_GRANULE,
    PROBE_LINE_BYTES,
    Yielded,
    _InputReader,
    _Order,
    _Reads,
    _skip_line,
)
from credwatch.sources.audit_records import audit_records
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.record import Record

__all__ = ["AuditReader"]

_STAMP = re.compile(rb"msg=audit\((\d{1,12})\.(\d{3}):")


def _stamp_ms(raw: bytes) -> int | None:
    m = _STAMP.search(raw, 0, 4096)
    return int(m.group(1)) * 1000 + int(m.group(2)) if m is not None else None


class _Window(io.RawIOBase):
    """``[start, end)`` of a file as a raw stream."""

    def __init__(self, fh: IO[bytes], start: int, end: int) -> None:
        fh.seek(start)
        self.fh, self.left = fh, end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        want = min(len(buf), self.left)
        if want <= 0:
            return 0
        data = self.fh.read(want)
        buf[: len(data)] = data
        self.left -= len(data)
        return len(data)


class AuditReader(_InputReader):
    """One raw audit log, read for one span."""

    def _line_times(self, raw: bytes, scratch: Diagnostics) -> tuple[int, int] | None:
        ms = _stamp_ms(raw)
        return (ms, ms) if ms is not None else None

    def plain_audit(self) -> _Reads:
        """The log searched by offset if its stamps are in order, else read whole."""
        size = self.st.st_size
        with open(self.path, "rb") as fh:
            if self._looks_ordered(fh, size):
                start = self._bisect(fh, size)
                end = self._bisect_end(fh, start, size)
                if self._in_order(fh, start, end):
                    return (yield from self._region(fh, start, end))
        return (yield from self._whole_unordered())

    def _bisect_end(self, fh: io.BufferedReader, start: int, size: int) -> int:
        """A line start from which every record is too late for the span."""
        target = self.query.span.hi + self.query.tolerance
        best, lo, hi = size, start, size
        while hi - lo > BISECT_GRANULE:
            mid = (lo + hi) // 2
            probe = self._probe(fh, mid, hi)
            if probe is None:
                best = hi = mid  # no audit record between mid and the known end
            elif probe[1] > target:
                best, hi = probe[0], mid
            else:
                lo = probe[0]
        return best

    def _in_order(self, fh: io.BufferedReader, start: int, end: int) -> bool:
        """True when the stamps in ``[start, end)`` never go back by more than the tolerance."""
        order = _Order(self.query.tolerance)
        fh.seek(start)
        while fh.tell() < end and not order.broken:
            raw = fh.readline(PROBE_LINE_BYTES)
            if not raw:
                break
            if not raw.endswith(b"\n") and len(raw) == PROBE_LINE_BYTES:
                _skip_line(fh)
                continue
            ms = _stamp_ms(raw)
            if ms is not None:
                order.see(ms, ms)
        return not order.broken

    def _region(self, fh: io.BufferedReader, start: int, end: int) -> _Reads:
        self.counter = self._count_to(start)
        diag = Diagnostics()
        stream = io.BufferedReader(_Window(fh, start, end), 1 << 20)
        try:
            for n, rec in enumerate(audit_records(stream, self.source, diag)):
                yield from self._audit_event(rec, n)
            yield from self._settle()
        finally:
            line = self.counter.result() if self.counter is not None else self.line_offset
            self.counter = None
        self._merge_diagnostics(diag, rebase=line)
        new = self._fresh_state()
        new.ordered, new.mark_offset, new.mark_line = 1, start, line
        return new

    def _audit_event(self, rec: Record, n: int) -> Iterator[Yielded]:
        """One reassembled event of the region (its line counted from the region start)."""
        self.owner.lines_read += 1
        fields = self.query.fields
        primary = primary_times(rec.event, fields)
        secondary = secondary_times(rec.event, fields)
        if self.query.span.holds_any(primary or secondary):
            yield from self._emit(rec, primary, secondary, n, True)

    def _whole_unordered(self) -> _Reads:
        return (yield from self.whole("auditd"))
