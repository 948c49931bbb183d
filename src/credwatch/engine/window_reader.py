"""The reading half of :mod:`credwatch.engine.window`: one input, one query, one span.

:class:`_InputReader` reads an NDJSON (or any) input for a window span and works out its next
:class:`InputState`; :mod:`credwatch.engine.audit_window` builds on it for raw audit logs. Both
live below :class:`~credwatch.engine.window.EventSource`, which picks the reader, so the two
modules do not import each other.
"""

from __future__ import annotations

import io
import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import IO, Protocol

from credwatch.engine.eventtime import (
    TimedEvent,
    TimeFields,
    event_points,
    event_times,
    primary_times,
    secondary_times,
)
from credwatch.engine.readpos import (
    HEAD_BYTES,
    InputState,
    LineCounter,
    LineFilter,
    Span,
    complete_prefix,
    head_crc,
)
from credwatch.errors import SourceError
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import check_types, line_records
from credwatch.sources.prefiltered import line_blocks
from credwatch.sources.read import open_binary, read_records
from credwatch.sources.record import Record

#: Lines of an ordered input may be out of order by this much (``event.ingested`` trails
#: ``@timestamp`` by a few seconds; 30 s leave room for clock skew between hosts).
ORDER_TOLERANCE_MS = 30_000
#: Plain NDJSON files at least this large are searched by offset (smaller ones are read).
BISECT_MIN_BYTES = 1 << 20
#: Evenly spaced probes that must be in order before a file is searched by offset.
ORDER_PROBES = 32
#: A probe decodes at most this many lines, each at most this long, to find one time.
PROBE_LINES = 64
PROBE_LINE_BYTES = 1 << 20
#: A bisection stops when the remaining range is this small (then it is read).
BISECT_GRANULE = 64 << 10
#: Events that may match are held back (at most this many) until their line numbers are known.
HOLD_MAX = 4096
_SAMPLES = 20
#: Standard input is copied to a private temporary file, at most this large.
MAX_STDIN_BYTES = 64 << 30


@dataclass(slots=True)
class _Order:
    """Checks, line by line, that times do not go back by more than the tolerance."""

    tolerance: int
    high: int | None = None
    broken: bool = False

    def see(self, lo: int, hi: int) -> None:
        if self.high is not None and lo < self.high - self.tolerance:
            self.broken = True
        self.high = hi if self.high is None else max(self.high, hi)


@dataclass(slots=True)
class _Pass:
    """What one read of an input found."""

    lines: int = 0  #: line number of the last line read
    min_ms: int | None = None
    max_ms: int | None = None
    stopped: bool = False  #: reading stopped past the span (ordered input)

    def see(self, lo: int, hi: int) -> None:
        self.min_ms = lo if self.min_ms is None else min(self.min_ms, lo)
        self.max_ms = hi if self.max_ms is None else max(self.max_ms, hi)


Yielded = tuple[TimedEvent, bool]
#: Yields events, returns the input's next state.
_Reads = Generator[Yielded, None, "InputState"]


@dataclass
class _Query:
    fields: TimeFields
    span: Span
    filter: LineFilter
    tolerance: int


class ReadOwner(Protocol):
    """What a reader needs of the :class:`~credwatch.engine.window.EventSource` it reads for."""

    bisect_min_bytes: int
    diagnostics: Diagnostics
    lines_read: int


class _InputReader:
    """Reads one input for one query and works out its next :class:`InputState`."""

    def __init__(self, path: str, source: str, rank: int, query: _Query, st: os.stat_result,
                 state: InputState | None, owner: ReadOwner) -> None:
        self.path, self.source, self.rank, self.query = path, source, rank, query
        self.st, self.state, self.owner = st, state, owner
        #: Added to the line numbers of a read that started mid-file ...
        self.line_offset = 0
        #: ... once this count of the lines before it is done.
        self.counter: LineCounter | None = None
        self.held: list[tuple[Record, tuple[int, ...], tuple[int, ...], int]] = []

    def _fresh_state(self) -> InputState:
        head_len = min(self.st.st_size, HEAD_BYTES)
        return InputState(os.path.realpath(self.path), self.query.fields.key(), self.st.st_dev,
                          self.st.st_ino, self.st.st_size, self.st.st_mtime_ns, head_len,
                          head_crc(self.path, head_len))

    def _unchanged(self) -> bool:
        s = self.state
        return s is not None and (s.size, s.mtime_ns) == (self.st.st_size, self.st.st_mtime_ns)

    # -- inputs read whole --------------------------------------------------------------------
    def whole(self, fmt: str) -> _Reads:
        """Gzip, audit logs, JSON documents: skipped when unchanged and outside the span."""
        s = self.state
        if s is not None and self._unchanged() and s.scanned_to == s.size \
                and s.span_misses(self.query.span):
            return s
        seen = _Pass()
        diag = Diagnostics()
        if fmt == "ndjson":  # gzip: the line reader (type checks only in the span)
            stream = open_binary(self.path)
            try:
                seen = yield from self._lines(stream, 0, None, None, diag)
            finally:
                stream.close()
        else:
            for n, rec in enumerate(read_records([self.path], diag, input_format=fmt)):
                rec.source = self.source
                yield from self._record(rec, (self.rank, rec.line, n), seen)
        self._merge_diagnostics(diag)
        failed = getattr(diag, "failed", None)  # the reader reports a broken input there
        if failed:
            raise SourceError(str(failed[0]).split(": ", 1)[-1], self.source)
        new = self._fresh_state()
        new.ordered = 0
        new.scanned_to = new.size
        new.min_ms, new.max_ms = seen.min_ms, seen.max_ms
        return new

    # -- plain NDJSON -------------------------------------------------------------------------
    def plain_ndjson(self) -> _Reads:
        """A regular NDJSON file: searched by offset when ordered, else read (or its new tail)."""
        size = self.st.st_size
        with open(self.path, "rb") as fh:
            if size >= self.owner.bisect_min_bytes and self._looks_ordered(fh, size):
                return (yield from self._ordered(fh, size))
            return (yield from self._unordered(fh, size))

    def _looks_ordered(self, fh: io.BufferedReader, size: int) -> bool:
        if self.state is not None and self.state.ordered == 0:
            return False
        tol = self.query.tolerance
        order = _Order(tol)
        for i in range(ORDER_PROBES):
            probe = self._probe(fh, size * i // ORDER_PROBES, size)
            if probe is not None:
                order.see(probe[1], probe[2])
        return not order.broken

    def _probe(self, fh: io.BufferedReader, offset: int, limit: int) -> tuple[int, int, int] | None:
        """``(line start, min, max)`` of the first timed line at or after ``offset``."""
        fh.seek(max(offset - 1, 0))
        if offset > 0 and fh.read(1) != b"\n":
            _skip_line(fh)
        scratch = Diagnostics()
        for _ in range(PROBE_LINES):
            start = fh.tell()
            if start >= limit:
                return None
            raw = fh.readline(PROBE_LINE_BYTES)
            if not raw:
                return None
            if not raw.endswith(b"\n") and len(raw) == PROBE_LINE_BYTES:
                _skip_line(fh)  # too long to probe with; the next line will do
                continue
            times = self._line_times(raw, scratch)
            if times is not None:
                return start, times[0], times[1]
        return None

    def _line_times(self, raw: bytes, scratch: Diagnostics) -> tuple[int, int] | None:
        """``(min, max)`` time of the events of one NDJSON line, if it has any."""
        points = [p for rec in line_records(raw, "", 0, scratch)
                  for p in event_points(rec.event, self.query.fields)]
        return (min(points), max(points)) if points else None

    def _bisect(self, fh: io.BufferedReader, size: int) -> int:
        """A line start before which no line can hold an event of the span."""
        target = self.query.span.lo - self.query.tolerance
        good, lo, hi = 0, 0, size
        while hi - lo > BISECT_GRANULE:
            mid = (lo + hi) // 2
            probe = self._probe(fh, mid, hi)
            if probe is None or probe[2] >= target:
                hi = mid
            else:
                # Every line before this one is older than the span: ordered within the
                # tolerance, none can be later than this line's time plus the tolerance.
                good = lo = probe[0]
        return good

    def _count_to(self, offset: int) -> LineCounter:
        """Lines before ``offset`` (a line start), from the stored mark when it is before it."""
        s = self.state
        if s is not None and s.mark_offset <= offset:
            return LineCounter(self.path, s.mark_offset, s.mark_line, offset)
        return LineCounter(self.path, 0, 0, offset)

    def _ordered(self, fh: io.BufferedReader, size: int) -> _Reads:
        start = self._bisect(fh, size)
        # The lines before the window are counted beside the reading of the window; the
        # events that may match wait for their line numbers (see _emit).
        self.counter = self._count_to(start)
        diag = Diagnostics()
        order = _Order(self.query.tolerance)
        try:
            fh.seek(start)
            seen = yield from self._lines(fh, 0, None, order, diag)
            yield from self._settle()
        finally:
            line = self.counter.result() if self.counter is not None else self.line_offset
            self.counter = None
        self._merge_diagnostics(diag, rebase=line)
        new = self._fresh_state()
        new.mark_offset, new.mark_line = start, line
        if not order.broken:
            new.ordered = 1
            return new
        # Out of order after all: read the rest, then what the search skipped.
        self.line_offset = 0
        if seen.stopped:
            fh.seek(start)
            yield from self._lines(fh, line, None, None, diag, skip_through=line + seen.lines)
        fh.seek(0)
        yield from self._lines(fh, 0, start, None, diag)
        self._merge_diagnostics(diag)
        new.ordered = 0
        return new

    def _emit(self, rec: Record, primary: tuple[int, ...], secondary: tuple[int, ...], sub: int,
              maybe: bool) -> Iterator[Yielded]:
        """Hand on an event of the span, once its line number is known if it may match."""
        if self.counter is None:
            rec.line += self.line_offset
            yield TimedEvent(rec, primary, secondary, (self.rank, rec.line, sub)), maybe
        elif not maybe:
            # Only counted, never alerted on: its line number is never looked at.
            yield TimedEvent(rec, primary, secondary, (self.rank, rec.line, sub)), False
        else:
            self.held.append((rec, primary, secondary, sub))
            if len(self.held) >= HOLD_MAX:
                yield from self._settle()

    def _settle(self) -> Iterator[Yielded]:
        """Wait for the line count, then hand on the held events with their line numbers."""
        if self.counter is not None:
            self.line_offset = self.counter.result()
            self.counter = None
        held, self.held = self.held, []
        for rec, primary, secondary, sub in held:
            rec.line += self.line_offset
            yield TimedEvent(rec, primary, secondary, (self.rank, rec.line, sub)), True

    def _unordered(self, fh: io.BufferedReader, size: int) -> _Reads:
        s = self.state
        start = line = 0
        if s is not None and s.scanned_to and s.span_misses(self.query.span):
            start, line = s.scanned_to, s.scanned_lines  # only the appended tail can matter
        fh.seek(start)
        diag = Diagnostics()
        seen = yield from self._lines(fh, line, size - start, None, diag)
        self._merge_diagnostics(diag)
        new = self._fresh_state()
        new.ordered = 0
        new.mark_offset, new.mark_line = start, line
        new.scanned_to, new.scanned_lines = complete_prefix(fh, size, seen.lines)
        lows = [x for x in (seen.min_ms, s.min_ms if start and s else None) if x is not None]
        highs = [x for x in (seen.max_ms, s.max_ms if start and s else None) if x is not None]
        new.min_ms, new.max_ms = (min(lows) if lows else None), (max(highs) if highs else None)
        return new

    def _lines(self, fh: IO[bytes], line: int, limit: int | None, order: _Order | None,
               diag: Diagnostics, skip_through: int = 0) -> Generator[Yielded, None, _Pass]:
        """Decode lines from the current offset; with ``order``, stop past the span's end.

        Line numbers continue from ``line``; lines numbered up to ``skip_through``
        (already handled) are passed over undecoded. Returns a :class:`_Pass`.
        """
        seen = _Pass(lines=line)
        stop_after = self.query.span.hi + self.query.tolerance
        for block in line_blocks(fh, limit):
            if block is None:
                seen.lines += 1
                diag.skip("line-too-long", self.source, seen.lines)
                continue
            buf, pos, hi = block
            while pos < hi:
                end = buf.index(b"\n", pos, hi)
                raw, pos = buf[pos:end], end + 1
                seen.lines += 1
                if seen.lines <= skip_through:
                    continue
                low = yield from self._line(raw, seen, diag, order)
                if order is not None and low is not None and low > stop_after:
                    seen.stopped = True
                    return seen
        return seen

    def _line(self, raw: bytes, seen: _Pass, diag: Diagnostics,
              order: _Order | None) -> Generator[Yielded, None, int | None]:
        """Events of one line that are in the span; returns the line's earliest time."""
        self.owner.lines_read += 1
        low: int | None = None
        maybe: bool | None = None
        fields = self.query.fields
        for sub, rec in enumerate(line_records(raw, self.source, seen.lines, diag)):
            # The fallback time is needed to place the event only without the primary one,
            # and to sort it only if it is in the span.
            primary = primary_times(rec.event, fields)
            secondary = () if primary else secondary_times(rec.event, fields)
            points = primary or secondary
            if not points:
                continue
            seen.see(points[0], points[-1])
            if order is not None:
                order.see(points[0], points[-1])
            low = points[0] if low is None else min(low, points[0])
            # Type checks only where they decide something: an event Elasticsearch would
            # refuse is not searched (the others are not events of the span anyway).
            if self.query.span.holds_any(points) and check_types(rec, diag):
                if maybe is None:
                    maybe = self.query.filter.could_match(raw)
                if primary:
                    secondary = secondary_times(rec.event, fields)
                yield from self._emit(rec, primary, secondary, sub, maybe)
        return low

    def _record(self, rec: Record, seq: tuple[int, int, int], seen: _Pass) -> Iterator[Yielded]:
        """A record read whole: in the span or not (no raw line, so the matcher decides)."""
        self.owner.lines_read += 1
        primary, secondary = event_times(rec.event, self.query.fields)
        points = primary or secondary
        if not points:
            return
        seen.see(points[0], points[-1])
        if self.query.span.holds_any(points):
            yield TimedEvent(rec, primary, secondary, seq), True

    def _merge_diagnostics(self, diag: Diagnostics, rebase: int = 0) -> None:
        """Add ``diag`` to the source's; ``rebase`` is added to the line numbers of its samples."""
        total = self.owner.diagnostics
        total.skipped.update(diag.skipped)
        total.warnings.update(diag.warnings)
        room = _SAMPLES - len(total.samples)
        prefix = f"{self.source}:"
        for sample in diag.samples[:max(room, 0)]:
            number, sep, rest = sample[len(prefix):].partition(":")
            if rebase and sample.startswith(prefix) and sep and number.isdigit():
                sample = f"{prefix}{int(number) + rebase}:{rest}"
            total.samples.append(sample)
        diag.skipped.clear()
        diag.warnings.clear()
        diag.samples.clear()


def _skip_line(fh: io.BufferedReader) -> None:
    """Move past the end of the current line, reading it in bounded pieces."""
    while True:
        piece = fh.readline(PROBE_LINE_BYTES)
        if not piece or piece.endswith(b"\n"):
            return
