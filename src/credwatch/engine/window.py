"""Stream the events of a time span from files, reading what the span needs and no more.

``credwatch run`` asks, once per rule execution, for the events whose time
(:class:`~credwatch.engine.eventtime.TimeFields`) falls in the span covered by
the execution's windows. Nothing proportional to an input is held in memory:
events are decoded line by line and handed on, and only the caller keeps the
few it needs (the matches).

How much of an input is read:

* **Time-ordered NDJSON files** (exports and logs are written in time order,
  give or take a few seconds): probes at evenly spaced offsets check the order;
  if it holds within :data:`ORDER_TOLERANCE_MS`, a binary search by byte offset
  (seek, sync to the next line start, decode that one line's time) finds a line
  early enough that no earlier line can hold an event of the span, and reading
  stops at the first line clearly past the span's end. The order is checked
  again on every line read; an input found out of order is read in full
  (the rest of it, then the part the search skipped) and remembered as such.
  Raw audit logs are searched the same way by their stamps
  (:mod:`credwatch.engine.audit_window`).
* **Other inputs** (unordered NDJSON, gzip, JSON documents) are read in full,
  streaming, unless the store shows that they did not change and hold no event
  in the span (their time span is kept), or that only an appended tail can (a
  plain NDJSON file that grew).

Per input and time field, the store keeps (:class:`InputState`): identity
(device, inode, real path, a checksum of the first bytes), a known line start
and its line number (line numbers stay exact when reading starts mid-file,
without counting from the top every tick), how far it was read in full and the
time span of that part. A replaced or truncated file is read as new.

Every line that is read is decoded, because ``events_searched`` counts the
well-formed events whose time is in the span exactly as an in-memory index
would (a line's time and its type checks both take decoding). The literal
prefilter (:func:`~credwatch.backends.prefilter.derive_literals`) then decides
which of those events the rule's matcher must see: an event whose line holds
none of the rule's literals cannot match, and is only counted. Bisection is
what bounds the decoding: for the benchmark's 1M-event file, a 9-minute window
decodes about 8,000 lines out of a million.

An input that cannot be read (a partly written ``.gz``, a vanished file) is
reported in :attr:`EventSource.failures` and its state is not advanced, so the
next execution reads it again.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from credwatch.engine.audit_window import AuditReader
from credwatch.engine.eventtime import (
    TimeFields,
)
from credwatch.engine.readpos import (
    InputState,
    LineFilter,
    PositionStore,
    Span,
    head_crc,
    remove_spool,
    spool,
)
from credwatch.engine.readreport import ReadReport
from credwatch.engine.window_reader import (
    BISECT_MIN_BYTES,
    MAX_STDIN_BYTES,
    ORDER_TOLERANCE_MS,
    Yielded,
    _InputReader,
    _Query,
)
from credwatch.errors import SourceError
from credwatch.sources.detect import detect as sniff
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import INPUT_FORMATS, expand_paths, open_binary

__all__ = [
    "ORDER_TOLERANCE_MS",
    "EventSource",
    "InputState",
    "LineFilter",
    "PositionStore",
    "Span",
]

@dataclass
class EventSource:
    """The inputs of ``credwatch run``: files and folders, read per window span.

    ``positions`` (the run store) keeps what is known about each input between
    executions and processes; without it every execution starts from scratch
    (still streaming and bisecting).
    """

    paths: Sequence[str]
    input_format: str = "auto"
    glob: str | None = None
    stdin: IO[bytes] | None = None
    positions: PositionStore | None = None
    tolerance_ms: int = ORDER_TOLERANCE_MS
    bisect_min_bytes: int = BISECT_MIN_BYTES
    #: ``path: reason`` of each input that could not be read in the last :meth:`events`.
    failures: list[str] = field(default_factory=list)
    #: Skipped lines and warnings of what was read (samples for the user).
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    #: Lines (or records of inputs read whole) decoded, all executions together.
    lines_read: int = 0
    _inputs: list[str] = field(default_factory=list)
    _missing: list[str] = field(default_factory=list)
    _stamps: dict[str, tuple[int, ...]] = field(default_factory=dict)
    _spool: str | None = None

    def __post_init__(self) -> None:
        if self.input_format not in INPUT_FORMATS:
            raise SourceError(f"unknown input format {self.input_format!r}; "
                              f"use one of {', '.join(INPUT_FORMATS)}")

    # -- inputs ------------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Find the inputs again (folders may gain files); True if any input changed."""
        found: list[str] = []
        missing: list[str] = []
        for p in self.paths:
            try:
                found.extend(expand_paths([p], self.glob))
            except SourceError as exc:
                missing.append(f"{exc.path or p}: {exc.message}")
        inputs = sorted(set(found))
        stamps: dict[str, tuple[int, ...]] = {}
        for path in inputs:
            if path == "-":
                stamps[path] = (0,)
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue
            stamps[path] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        changed = stamps != self._stamps
        self._inputs, self._missing, self._stamps = inputs, missing, stamps
        return changed

    def read_report(self) -> ReadReport | None:
        """What the engine read for the last :meth:`events` (None: read in-process, no engine)."""
        return None

    def close(self) -> None:
        """Remove the copy of standard input, if one was made."""
        if self._spool is not None:
            remove_spool(self._spool)
            self._spool = None

    def _stdin_file(self) -> str:
        """Standard input, copied once to a private file so that every execution can read it."""
        if self._spool is None:
            if self.stdin is None:
                raise SourceError("no standard input available", "-")
            self._spool = spool(self.stdin, MAX_STDIN_BYTES)
        return self._spool

    # -- events ------------------------------------------------------------------------------
    def events(self, fields: TimeFields, span: Span,
               literals: frozenset[str] | None = None) -> Iterator[Yielded]:
        """Every well-formed event with a time in ``span``, with whether its line can match.

        Inputs are read in path order; an input that fails is reported in
        :attr:`failures` and the others are still read.
        """
        self.failures = list(self._missing)
        query = _Query(fields, span, LineFilter(literals), self.tolerance_ms)
        for rank, path in enumerate(self._inputs):
            try:
                real = self._stdin_file() if path == "-" else path
                source = "<stdin>" if path == "-" else path
                yield from self._input(real, source, rank, query, remember=path != "-")
            except SourceError as exc:
                self.failures.append(f"{path}: {exc.message}")
            except _READ_ERRORS as exc:
                self.failures.append(f"{path}: {_describe(exc)}")

    def _input(self, path: str, source: str, rank: int, query: _Query,
               remember: bool) -> Iterator[Yielded]:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise SourceError(f"cannot open: {exc.strerror or exc}", path) from None
        if stat.S_ISDIR(st.st_mode):
            return
        state = self._known(path, st, query.fields) if remember else None
        stream = open_binary(path)
        try:
            fmt = self.input_format
            if fmt == "auto":
                fmt = _sniff(stream)
            plain = not isinstance(stream, gzip.GzipFile) and stat.S_ISREG(st.st_mode)
        finally:
            stream.close()
        if fmt == "empty":
            return  # nothing yet; an empty file is looked at again next time
        reader = _InputReader(path, source, rank, query, st, state, self)
        if fmt == "ndjson" and plain:
            new = yield from reader.plain_ndjson()
        elif fmt == "auditd" and plain and st.st_size >= self.bisect_min_bytes \
                and _stamped(query.fields):
            audit = AuditReader(path, source, rank, query, st, state, self)
            new = yield from audit.plain_audit()
        else:
            new = yield from reader.whole(fmt)
        if remember and new is not None and self.positions is not None:
            self.positions.save_input_state(new)

    def _known(self, path: str, st: os.stat_result, fields: TimeFields) -> InputState | None:
        """The stored state of ``path`` if it still describes this file."""
        if self.positions is None:
            return None
        state = self.positions.input_state(os.path.realpath(path), fields.key())
        if state is None or (state.dev, state.ino) != (st.st_dev, st.st_ino):
            return None
        if st.st_size < state.size or head_crc(path, state.head_len) != state.head_crc:
            return None  # truncated or rewritten: start over
        return state


#: What reading a file or a gzip stream can raise.
_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "truncated gzip (compressed data ends before the end of the stream)"
    if isinstance(exc, OSError) and exc.strerror:
        return f"read error: {exc.strerror}"
    return f"read error: {exc}"


def _stamped(fields: TimeFields) -> bool:
    """True when audit events' times are their record stamps under ``fields``.

    The audit normalizer sets ``@timestamp`` from the stamp and no ``event.ingested``.
    """
    return fields.primary == "@timestamp" or (
        fields.primary == "event.ingested" and fields.secondary == "@timestamp")


def _sniff(stream: IO[bytes]) -> str:
    head = stream.peek(65536)[:65536] if hasattr(stream, "peek") else b""
    return sniff(head)
