"""The literal fast path for raw audit logs: feed the reassembler only the events that matter.

An audit event that a rule can match holds one of the rule's literals in one
of its records, either as raw text or as the uppercase hex the kernel uses for
an argument with a space, a quote or a non-ASCII byte
(:func:`credwatch.backends.prefilter.encodings`, fields copied verbatim only).
An argument split over ``aN[k]=`` records can cut a literal in two, so every
record with ``_len=`` is a candidate too.

For each block of whole lines, the candidate lines give the events to keep,
by their ``(node, audit(stamp:serial))`` key; then *every* line of those events
within :data:`WINDOW_BYTES` (8 MB) of a candidate line is collected (an event's
records are written together; 8 MB is far more than the reassembler's
``quiet_records`` window of 2,000 records). Collected lines are
passed on in file order with their true line numbers, together with any line
that does not look like an audit record (so that it is still reported), and go
through the ordinary reassembly and ECS mapping.

Exec events that were passed over are counted from their ``EXECVE`` records.
Lines that do not start like a record (with ``t``, ``n`` or ``-``) are always
passed on, so they are reported as in the full path; any other malformed line
is only reported if it belongs to a candidate event.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Protocol

from credwatch.sources.prefiltered import (
    hyperscan_database,
    line_blocks,
    line_end,
    line_start,
    scan_in_place,
)

if TYPE_CHECKING:
    import hyperscan


#: The record header, as :mod:`credwatch.sources.auditd` finds it (also after a syslog prefix).
_HEADER = re.compile(rb"(?:\A|\s)(?:node=(\S+) )?type=\S+ (?:msg=)?audit\(([^)]*)\)")
#: A line that starts with none of the letters of ``type=``, ``node=`` or ``----`` (nor is
#: blank). A longer prefix check costs hyperscan a third of its speed on every line.
_ODD_START = rb"\n[^tn\-\n\r]"
_GOOD_STARTS = (b"t", b"n", b"-", b"\n")
#: An exec event has one EXECVE record with ``argc=`` (long arguments add more EXECVE
#: records, without it); ``ausearch -i`` writes ``) : argc=``, hence no ``)``.
EXECVE = b" argc="
#: How far apart (in bytes) the records of one event may be and still be joined.
WINDOW_BYTES = 8 << 20


@dataclass(slots=True)
class _Block:
    """A scanned block waiting for the lines after it to be scanned too."""

    buf: bytes
    lo: int
    hi: int
    offset: int  #: file offset of ``buf[lo]``
    odd: list[int]  #: starts of lines that do not look like audit records
    own: bool  #: False for context read around a worker's range

AuditKey = tuple[bytes | None, bytes]


class _LineFinder(Protocol):
    def ends(self, buf: bytes, lo: int, hi: int) -> list[int]:
        """Offsets just past the newline of every line in ``buf[lo:hi]`` that matches."""
        ...


class _HsLines:
    """Lines of a buffer that hold a match of any pattern (or, with ``literal``, of any string).

    Patterns are kept short (no ``[^\n]*\n`` tail): hyperscan scans and compiles
    them much faster, and the few hits are taken to their line end in Python.
    Literal databases compile in about a millisecond, which matters because the
    event stamps to collect change with every block.
    """

    def __init__(self, patterns: list[bytes], literal: bool = False) -> None:
        self.db = hyperscan_database(patterns, literal)

    def ends(self, buf: bytes, lo: int, hi: int) -> list[int]:
        found: set[int] = set()

        def on_match(_pid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            found.add(lo + end)

        scan_in_place(self.db, buf, lo, hi, on_match)
        return sorted({line_end(buf, end) for end in found})


class _ReLines:
    def __init__(self, patterns: list[bytes]) -> None:
        self.pattern = re.compile(b"|".join(b"(?:" + p + b")" for p in patterns))

    def ends(self, buf: bytes, lo: int, hi: int) -> list[int]:
        found: set[int] = set()
        pos = lo
        while (m := self.pattern.search(buf, pos, hi)) is not None:
            end = line_end(buf, m.end())
            found.add(end)
            pos = max(end - 1, m.start() + 1)
        return sorted(found)


def _line_finder(patterns: list[bytes], literal: bool = False) -> _LineFinder:
    try:
        return _HsLines(patterns, literal)
    except ImportError:
        return _ReLines([re.escape(p) for p in patterns] if literal else patterns)


class _Candidates:
    """Lines holding a needle, plus how often ``tally`` occurs, in one pass over a block.

    With hyperscan the tally is one more literal in the same database (a
    callback per hit costs less than a second pass with ``bytes.count``).
    """

    def __init__(self, needles: list[bytes], tally: bytes) -> None:
        self.tally = tally
        self.tally_id = len(needles)
        self.fallback: _LineFinder | None = None
        try:
            self.db: hyperscan.Database | None = hyperscan_database([*needles, tally], literal=True)
        except ImportError:
            self.db = None
            self.fallback = _ReLines([re.escape(n) for n in needles])

    def scan(self, buf: bytes, lo: int, hi: int) -> tuple[list[int], int]:
        """``(line ends of lines with a needle, occurrences of the tally)`` in ``buf[lo:hi]``."""
        if self.db is None:
            assert self.fallback is not None
            return self.fallback.ends(buf, lo, hi), buf.count(self.tally, lo, hi)
        found: set[int] = set()
        tallied = 0
        tally_id = self.tally_id

        def on_match(pid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            nonlocal tallied
            if pid == tally_id:
                tallied += 1
            else:
                found.add(lo + end)

        scan_in_place(self.db, buf, lo, hi, on_match)
        return sorted({line_end(buf, end) for end in found}), tallied


class AuditLineFilter:
    """Pick the lines of the audit events that may hold one of ``needles``.

    The needles are the rules' literals as an audit log spells them (raw and hex, see
    :func:`credwatch.backends.prefilter.encodings`), computed by the engine: readers do
    not know about rules.
    """

    def __init__(self, needles: frozenset[bytes]) -> None:
        self.candidates = _Candidates(sorted(needles), EXECVE)
        self.odd_lines = _line_finder([_ODD_START])
        #: Counted over the passed-over lines (exec events never reassembled).
        self.execve_lines = 0
        self.fed_execve_lines = 0
        #: Own lines counted so far by :meth:`lines_of_blocks` (all of them once it is exhausted).
        self.own_lines = 0

    def lines(self, stream: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
        """``(line number, line)`` of the lines to reassemble, in file order.

        ``None`` stands for a line too long to hold (reported by the caller).
        """
        return self.lines_of_blocks((block, True) for block in line_blocks(stream))

    def lines_of_blocks(self, blocks: Iterable[tuple[tuple[bytes, int, int] | None, bool]],
                        offset: int = 0, context: bool = False) -> Iterator[tuple[int, bytes | None]]:
        """The lines to reassemble from ``(block, own)`` pairs that start at file ``offset``.

        Blocks that are not *own* (the context around a worker's byte range)
        are scanned for candidates but none of their lines is passed on or
        counted (with ``context``, their picked lines are passed on numbered 0);
        line numbers count own lines only. A block is passed on once
        :data:`WINDOW_BYTES` more have been scanned, so that every candidate
        within that distance has been seen.
        """
        window = WINDOW_BYTES
        keys: dict[AuditKey, list[int]] = {}  # key -> [first, last] offset of its candidate lines
        pending: deque[_Block] = deque()
        self.own_lines = 0  # own lines before the next block to collect (blocks are collected in order)
        for block, own in blocks:
            if block is None:
                if own:
                    while pending:
                        yield from self._collect(pending.popleft(), keys, window, context)
                    self.own_lines += 1
                    yield self.own_lines, None
                continue
            buf, lo, hi = block
            ends, execve = self.candidates.scan(buf, lo, hi)
            if own:
                self.execve_lines += execve
            odd: list[int] = []
            for end in sorted({*ends, *self.odd_lines.ends(buf, lo, hi)}):
                start = line_start(buf, lo, end)
                key = _key(buf[start:end])
                if key is None:
                    odd.append(start)
                    continue
                at = offset + start - lo
                span = keys.get(key)
                if span is None:
                    keys[key] = [at, at]
                else:
                    span[1] = at
            if not buf.startswith(_GOOD_STARTS, lo) and (not odd or odd[0] != lo):
                odd.insert(0, lo)
            pending.append(_Block(buf, lo, hi, offset, odd, own))
            offset += hi - lo
            while pending and offset - (pending[0].offset + pending[0].hi - pending[0].lo) >= window:
                yield from self._collect(pending.popleft(), keys, window, context)
            if pending:
                horizon = pending[0].offset - window
                for key in [k for k, (_first, last) in keys.items() if last < horizon]:
                    del keys[key]
        while pending:
            yield from self._collect(pending.popleft(), keys, window, context)

    def _collect(self, block: _Block, keys: dict[AuditKey, list[int]], window: int,
                 context: bool = False) -> Iterator[tuple[int, bytes]]:
        """Every line of ``block`` that belongs to a nearby candidate event, or looks odd, numbered."""
        if not block.own and not context:
            return
        buf, lo, hi = block.buf, block.lo, block.hi
        begin, finish = block.offset, block.offset + hi - lo
        starts = set(block.odd) if block.own else set()
        stamps: dict[bytes, list[bytes | None]] = {}
        for (node, stamp), (first, last) in keys.items():
            if first - window < finish and last + window >= begin:
                stamps.setdefault(stamp, []).append(node)
        if stamps:
            finder = _line_finder([b"audit(" + s + b")" for s in stamps], literal=True)
            for end in finder.ends(buf, lo, hi):
                start = line_start(buf, lo, end)
                key = _key(buf[start:end])
                if key is not None and key[0] in stamps.get(key[1], ()):
                    starts.add(start)
        # Newlines are counted once: up to each picked line, then the rest of the block.
        lineno = self.own_lines
        counted = lo
        for start in sorted(starts):
            end = buf.find(b"\n", start, hi)
            line = buf[start: end + 1]
            if not block.own:
                yield 0, line
                continue
            lineno += buf.count(b"\n", counted, start)
            counted = start
            if EXECVE in line and not context:
                self.fed_execve_lines += 1
            yield lineno + 1, line
        if block.own:
            self.own_lines = lineno + buf.count(b"\n", counted, hi)

    @property
    def passed_over(self) -> int:
        """Exec events (by their EXECVE records) that were never reassembled."""
        return max(0, self.execve_lines - self.fed_execve_lines)


def _key(line: bytes) -> AuditKey | None:
    m = _HEADER.search(line)
    return None if m is None else (m.group(1), m.group(2))
