"""The literal fast path for large NDJSON inputs.

Every event a rule set can match contains one of the rules' literals
(:func:`credwatch.backends.prefilter.derive_literals`). This reader scans the
raw bytes in large blocks for those literals (hyperscan when installed, else
Python's ``re``) and decodes only the lines that can matter. The others are
counted as events without being decoded.

A line is decoded (a *candidate*) when it holds a literal (its slashes spelled
``/``, ``\\/`` or ``\\u002f``: encoders escape slashes often), or when it could
hide one or could be malformed:

* it holds another JSON escape that can spell one of the literals' characters
  (``\\u0065`` for ``e``; ``\\"``, ``\\n`` or ``\\u00e9`` only when a literal holds
  that character: an escape of a character no literal holds cannot be part of a
  literal in the decoded text, so a literal there is spelled in raw bytes, escape
  free). Such a line gets a second chance: its escapes are decoded textually (a
  JSON text has no backslash outside strings, so decoding the whole line decodes
  every string) and it is a candidate only if the decoded text holds a literal;
* it does not start with ``{`` or end with ``}`` (blank, truncated, not JSON,
  a JSON array), or holds a control byte (binary);
* it holds ``"hits"`` (a ``_search`` response: one line, many events).

The candidate lines go back to the caller (the engine, which decodes and
evaluates them in its workers, see :mod:`credwatch.engine.workers`); this module
only reads: it finds them in a byte range, with their line numbers.

What the fast path does not do: it does not check that a non-candidate line is
well-formed JSON, valid UTF-8 or of the right ECS types. ``--prefilter never``
(or ``strict``) decodes every line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Protocol, cast

from credwatch.sources import inputs
from credwatch.sources.literal_filter import (
    HITS_NEEDLE,
    decoded_holds,
    hiding_escape,
    spelled_literal,
    text_needles,
)
from credwatch.sources.literal_filter import json_unescape as json_unescape

if TYPE_CHECKING:
    import hyperscan


#: Bytes handed to the literal scanner per call.
BLOCK_BYTES = 8 << 20

_LITERAL, _ESCAPE, _SHAPE = 1, 2, 4
#: Reported as an extra literal so that `_search` responses are decoded (their count of events).
_HITS = HITS_NEEDLE
_CONTROL = rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


class _Finder(Protocol):
    #: Whether the last :meth:`scan` met a blank line.
    blank: bool

    def scan(self, buf: bytes, lo: int, hi: int) -> list[tuple[int, int]]:
        """``(end offset just past the newline, kind bits)`` of candidate lines in ``buf[lo:hi]``."""
        ...


def _spelled_needles(literals: frozenset[str]) -> list[bytes]:
    """The literals and ``"hits"``, each a regex matching every JSON spelling of its slashes."""
    return [spelled_literal(lit) for lit in sorted(literals | {_HITS})]


def _line_patterns(literals: frozenset[str]) -> list[tuple[bytes, int]]:
    """Patterns that report once per line, at the end of the line (just past its newline)."""
    alternation = b"|".join(_spelled_needles(literals))
    tail = rb"[^\n]*\n"
    return [(b"(?:" + alternation + b")" + tail, _LITERAL), (hiding_escape(literals) + tail, _ESCAPE)]


#: Patterns for lines that are not one plain JSON object: a line that does not
#: start with ``{`` (the block's first line is checked by hand), one that does not
#: end with ``}``, and control bytes. They hit anywhere in the line; they are
#: kept short because hyperscan scans them much faster without a ``[^\n]*`` tail,
#: and they almost never hit.
#: Blank lines (``\n\n``, ``\r\n`` alone) are no candidates: they hold no event, and
#: eight million of them must not become eight million candidates.
_SHAPE_PATTERNS: tuple[bytes, ...] = (rb"\n[^{\n\r]", rb"[^}\r\n]\r?\n", _CONTROL)
#: Runs of blank lines, to count them out of the events passed over.
#: (A character class repeats without per-repetition state in ``re``; a group would not.)
_BLANK_RUN = re.compile(rb"\n[\r\n]*\n")
_BLANK_LINE = rb"\n\r?\n"
#: Candidate lines are looked for in parts of about this size, so that a block of
#: millions of candidate lines never holds all their offsets at once.
PART_BYTES = 1 << 20


def line_end(buf: bytes, offset: int) -> int:
    """The end (just past the newline) of the line holding the byte before ``offset``."""
    return buf.find(b"\n", offset - 1) + 1


def line_start(buf: bytes, lo: int, end: int) -> int:
    """The start of the line of ``buf[lo:]`` that ends (newline included) at ``end``."""
    return buf.rfind(b"\n", lo, end - 1) + 1 or lo


def hyperscan_database(patterns: Sequence[bytes], literal: bool = False,
                       single: Sequence[int] = ()) -> hyperscan.Database:
    """A block-mode database whose match ids are pattern indexes (ImportError without hyperscan).

    ``literal`` compiles plain strings, about a millisecond for hundreds of them. The
    patterns whose indexes are in ``single`` report their first match only.
    """
    import hyperscan

    base = 0 if literal else hyperscan.HS_FLAG_DOTALL
    flags = [base | (hyperscan.HS_FLAG_SINGLEMATCH if i in single else 0) for i in range(len(patterns))]
    db = hyperscan.Database()
    db.compile(expressions=list(patterns), ids=list(range(len(patterns))), elements=len(patterns),
               flags=flags, literal=literal)
    return db


def scan_in_place(db: hyperscan.Database, buf: bytes, lo: int, hi: int,
                  on_match: Callable[[int, int, int, int, object], bool | None]) -> None:
    """Scan ``buf[lo:hi]`` without copying it (match offsets are relative to ``lo``)."""
    # hyperscan takes any buffer; its stubs say bytes.
    db.scan(cast(bytes, memoryview(buf)[lo:hi]), match_event_handler=on_match)


class _HyperscanFinder:
    """One hyperscan database, one pass: literals, hiding escapes, badly shaped and blank lines.

    Matches are reported where they end, several per line at times; each is mapped to
    the end of its line (the last line found is remembered, as matches come in order).
    """

    def __init__(self, literals: frozenset[str]) -> None:
        needles = _spelled_needles(literals)
        # No ``[^\n]*\n`` tails (hyperscan scans this set about 1.5x faster without): a
        # line with several matches is reported several times (linear in the matches).
        patterns = [*needles, hiding_escape(literals), *_SHAPE_PATTERNS, _BLANK_LINE]
        self.kinds = [_LITERAL] * len(needles) + [_ESCAPE] + [_SHAPE] * len(_SHAPE_PATTERNS) + [0]
        # The last pattern only tells whether the part has a blank line (its first match).
        self.blank_id = len(patterns) - 1
        self.db = hyperscan_database(patterns, single=(self.blank_id,))
        self.blank = False

    def scan(self, buf: bytes, lo: int, hi: int) -> list[tuple[int, int]]:
        hits: dict[int, int] = {}
        kinds = self.kinds
        blank_id = self.blank_id
        self.blank = False
        line = [hi, hi]  # [start, end) of the line of the last match

        def on_match(pid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            if pid == blank_id:
                self.blank = True
                return
            at = lo + end - 1  # the match's last byte
            if not line[0] <= at < line[1]:
                before = buf.rfind(b"\n", lo, at)
                line[0] = before + 1 if before >= 0 else lo
                line[1] = buf.find(b"\n", at) + 1
            hits[line[1]] = hits.get(line[1], 0) | kinds[pid]

        scan_in_place(self.db, buf, lo, hi, on_match)
        return sorted(hits.items())


class _RegexFinder:
    """The fallback without hyperscan: Python's ``re`` with the same patterns (slower)."""

    def __init__(self, literals: frozenset[str]) -> None:
        self.lines = [(re.compile(p, re.DOTALL), kind) for p, kind in _line_patterns(literals)]
        self.shape = re.compile(b"|".join(_SHAPE_PATTERNS))
        self.blank_line = re.compile(_BLANK_LINE)
        self.blank = False

    def scan(self, buf: bytes, lo: int, hi: int) -> list[tuple[int, int]]:
        hits: dict[int, int] = {}
        for pattern, kind in self.lines:
            for m in pattern.finditer(buf, lo, hi):
                # Each match runs to the end of its line, so matches never share a line.
                hits[m.end()] = hits.get(m.end(), 0) | kind
        pos = lo
        while (bad := self.shape.search(buf, pos, hi)) is not None:
            end_of_line = line_end(buf, bad.end())
            hits[end_of_line] = hits.get(end_of_line, 0) | _SHAPE
            pos = max(end_of_line - 1, bad.start() + 1)
        self.blank = self.blank_line.search(buf, lo, hi) is not None
        return sorted(hits.items())


def make_finder(literals: frozenset[str]) -> _Finder:
    """The fastest available candidate-line finder for ``literals``."""
    try:
        return _HyperscanFinder(literals)
    except ImportError:
        return _RegexFinder(literals)


def line_blocks(stream: IO[bytes], limit: int | None = None
                ) -> Iterator[tuple[bytes, int, int] | None]:
    """Cut ``stream`` (up to ``limit`` bytes) into blocks of whole lines, in order.

    Each block is ``(buf, lo, hi)``: the lines in ``buf[lo:hi]``, the last
    ending with a newline (one is added to an unterminated last line). Reads are
    used in place (no copy of the 8 MB buffers): the line a read cuts in two is
    joined and yielded on its own. A line longer than
    :data:`~credwatch.sources.inputs.MAX_LINE_BYTES` is not held in memory; it is
    yielded as ``None``.
    """
    max_line = inputs.MAX_LINE_BYTES  # read at call time (tests lower it)
    pending = b""  # the start of a line that the previous read cut
    skipping = False  # inside a line already found too long
    remaining = limit
    while True:
        want = BLOCK_BYTES if remaining is None else min(BLOCK_BYTES, remaining)
        chunk = stream.read(want) if want > 0 else b""
        if remaining is not None:
            remaining -= len(chunk)
        if not chunk:
            break
        first = chunk.find(b"\n")
        if first < 0:
            if not skipping:
                pending += chunk
                if len(pending) > max_line:
                    skipping, pending = True, b""
            continue
        if skipping or len(pending) + first > max_line:
            yield None
        elif pending:
            joint = pending + chunk[: first + 1]
            yield joint, 0, len(joint)
        else:
            yield chunk, 0, first + 1
        skipping, pending = False, b""
        last = chunk.rfind(b"\n")
        if last > first:
            yield chunk, first + 1, last + 1
        pending = chunk[last + 1:]
    if skipping:
        yield None
    elif pending:
        joint = pending + b"\n"
        yield joint, 0, len(joint)


@dataclass(slots=True)
class Scanned:
    """One scanned block: its line count, the events passed over, and the candidate lines."""

    lines: int
    #: Events on lines that are no candidates (never decoded).
    passed: int
    #: ``(line number within the block, 1-based; line bytes)`` of the lines to decode
    #: (``None`` for a line too long to hold).
    candidates: list[tuple[int, bytes | None]]
    #: Where each candidate line starts in the scanned buffer (:meth:`RangeScanner.scan_block`
    #: only: a live follower needs the byte position of what it decodes).
    starts: list[int] = field(default_factory=list)
    #: Lines whose escapes were decoded to look for a literal behind them.
    unescaped: int = 0


class RangeScanner:
    """Find the candidate lines of NDJSON byte blocks through a literal filter.

    With ``literals`` of ``None`` every non-blank line is a candidate (the full path).
    Deciding what a candidate holds is the caller's job: this only reads.
    """

    def __init__(self, literals: frozenset[str] | None) -> None:
        self.finder = make_finder(literals) if literals is not None else None
        self.needles = text_needles(literals or frozenset())

    def scan_stream(self, stream: IO[bytes], limit: int | None = None) -> Iterator[Scanned]:
        """Scan ``stream`` (up to ``limit`` bytes) block by block, in order.

        A line longer than :data:`~credwatch.sources.inputs.MAX_LINE_BYTES` comes
        back as a candidate of ``None``.
        """
        for block in line_blocks(stream, limit):
            if block is None:
                yield Scanned(1, 0, [(1, None)])
            else:
                yield self.scan_block(*block)

    def scan_block(self, buf: bytes, lo: int, hi: int) -> Scanned:
        """Scan the whole lines in ``buf[lo:hi]`` (``buf[hi - 1]`` is a newline)."""
        if self.finder is None:
            return self._every_line(buf, lo, hi)
        lines = passed = unescaped = 0
        candidates: list[tuple[int, bytes | None]] = []
        starts: list[int] = []
        while lo < hi:
            cut = hi if hi - lo <= PART_BYTES else buf.find(b"\n", lo + PART_BYTES, hi) + 1
            part = self._scan_part(buf, lo, cut)
            candidates.extend((lines + n, line) for n, line in part.candidates)
            starts.extend(part.starts)
            lines += part.lines
            passed += part.passed
            unescaped += part.unescaped
            lo = cut
        return Scanned(lines, passed, candidates, starts, unescaped)

    def _scan_part(self, buf: bytes, lo: int, hi: int) -> Scanned:
        assert self.finder is not None
        hits = self.finder.scan(buf, lo, hi)
        if buf[lo:lo + 1] != b"{":
            first_end = buf.find(b"\n", lo) + 1
            if not hits or hits[0][0] != first_end:
                hits.insert(0, (first_end, _SHAPE))
            else:
                hits[0] = (first_end, hits[0][1] | _SHAPE)
        candidates: list[tuple[int, bytes | None]] = []
        starts: list[int] = []
        passed = -len(hits)  # plus the block's line count, below
        # Newlines are counted once: up to each candidate line, then the rest of the block.
        lines_before = unescaped = 0
        counted_to = lo
        for end, kind in hits:
            start = line_start(buf, lo, end)
            line = buf[start: end - 1]
            if not line.strip():
                continue  # a blank line: no event
            if kind == _ESCAPE:
                unescaped += 1
                if not decoded_holds(line, self.needles):
                    passed += 1
                    continue
            lines_before += buf.count(b"\n", counted_to, start)
            counted_to = start
            candidates.append((lines_before + 1, line))
            starts.append(start)
        lines = lines_before + buf.count(b"\n", counted_to, hi)
        # Blank lines that were no candidates are no events either (the first one of a
        # run ends the line before it, or is the part's first line, a candidate).
        blank = 0
        if self.finder.blank:  # rare: the regex runs only where the finder met a blank line
            blank = sum(buf.count(b"\n", m.start(), m.end()) - 1 for m in _BLANK_RUN.finditer(buf, lo, hi))
        return Scanned(lines, passed + lines - blank, candidates, starts, unescaped)

    def _every_line(self, buf: bytes, lo: int, hi: int) -> Scanned:
        """Every non-blank line is a candidate: the full path, split across workers."""
        candidates: list[tuple[int, bytes | None]] = []
        starts: list[int] = []
        lines = 0
        pos = lo
        while pos < hi:
            end = buf.find(b"\n", pos, hi)
            line = buf[pos:end]
            lines += 1
            if line.strip():
                candidates.append((lines, line))
                starts.append(pos)
            pos = end + 1
        return Scanned(lines, 0, candidates, starts)


def literal_union(literal_sets: Sequence[frozenset[str] | None]) -> frozenset[str] | None:
    """The union of several rules' literal sets (``None`` if any rule has none)."""
    out: set[str] = set()
    for lits in literal_sets:
        if lits is None:
            return None
        out |= lits
    return frozenset(out)
