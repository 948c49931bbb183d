"""The literal fast path for large NDJSON inputs.

Every event a rule set can match contains one of the rules' literals
(:func:`credwatch.backends.prefilter.derive_literals`). This reader scans the
raw bytes in large blocks for those literals (hyperscan when installed, else
Python's ``re``) and decodes only the lines that can matter. The others are
counted as events without being decoded.

A line is decoded (a *candidate*) when it holds a literal, or when it could
hide one or could be malformed:

* it contains a backslash: a JSON escape (``\\/``, ``\\u002f``) can spell a
  literal without its bytes. Such a line gets a second chance: its escapes are
  decoded textually (a JSON text has no backslash outside strings, so decoding
  the whole line decodes every string) and it is a candidate only if the
  decoded text holds a literal;
* it does not start with ``{`` or end with ``}`` (blank, truncated, not JSON,
  a JSON array), or holds a control byte (binary);
* it holds ``"hits"`` (a ``_search`` response: one line, many events).

Candidates are decoded and evaluated in the worker that found them; only the
lines that would alert, or that need a diagnostic, are returned to the
reader, which decodes them once more through the ordinary path so that records,
line numbers and diagnostics are exactly those of the full path.

What the fast path does not do: it does not check that a non-candidate line is
well-formed JSON, valid UTF-8 or of the right ECS types. ``--prefilter never``
(or ``strict``) decodes every line.

Large regular files are split into byte ranges at line boundaries and the
ranges are scanned by forked worker processes, one per CPU; results are
consumed in file order.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Literal, Protocol, TypeVar, cast

from credwatch.sources import inputs
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import check_types, line_records, line_records_checked
from credwatch.sources.literal_filter import HITS_NEEDLE
from credwatch.sources.literal_filter import json_unescape as json_unescape
from credwatch.sources.record import MatchedRecord, Record

if TYPE_CHECKING:
    import multiprocessing.pool

    import hyperscan


#: ``auto`` engages the fast path for regular files at least this large.
AUTO_MIN_BYTES = 32 << 20
#: Bytes handed to the literal scanner per call.
BLOCK_BYTES = 8 << 20
#: Bytes per work unit when an NDJSON file is split across workers (small units
#: balance the workers; an audit range also reads context, see audit_prefiltered).
RANGE_BYTES = 8 << 20
#: At most this many records per block are evaluated in a worker (the rest are decoded
#: again by the reader): a rule matching most events must not fill memory with matches.
EVALUATED_PER_BLOCK = 128
PREFILTER_MODES = ("auto", "always", "never")
PrefilterMode = Literal["auto", "always", "never"]

_LITERAL, _ESCAPE, _SHAPE = 1, 2, 4
#: Reported as an extra literal so that `_search` responses are decoded (their count of events).
_HITS = HITS_NEEDLE
_CONTROL = rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"


@dataclass(frozen=True)
class FastPath:
    """What the reader needs to skip lines: the literals and a final exact test.

    ``keep`` is called on every record of a candidate line; it returns True
    when the record would produce an alert (the reader then yields it).
    """

    #: Literals for NDJSON (``None``: NDJSON inputs are read in full).
    literals: frozenset[str] | None
    keep: Callable[[Record], bool]
    mode: PrefilterMode = "auto"
    workers: int | None = None
    #: Byte strings, one of which every audit event that may alert holds (the literals of
    #: fields copied verbatim from audit records, as the log spells them; ``None``: audit
    #: logs are read in full).
    audit_needles: frozenset[bytes] | None = None
    #: The engine's evaluation of a record (which rules matched and why), run where the
    #: line was found (in the worker); the reader passes it on in a MatchedRecord and the
    #: engine builds the alerts. Opaque here.
    evaluate: Callable[[Record], Sequence[object]] | None = None

    def engages(self, size: int | None) -> bool:
        """True when a file of ``size`` bytes (``None``: unknown, e.g. stdin) takes this path.

        Without literals every line is decoded anyway, and splitting the file
        across workers only pays for large regular files.
        """
        if self.mode == "always" and self.literals is not None:
            return True
        return size is not None and size >= AUTO_MIN_BYTES


class _Finder(Protocol):
    #: Whether the last :meth:`scan` met a blank line.
    blank: bool

    def scan(self, buf: bytes, lo: int, hi: int) -> list[tuple[int, int]]:
        """``(end offset just past the newline, kind bits)`` of candidate lines in ``buf[lo:hi]``."""
        ...


def _line_patterns(literals: frozenset[str]) -> list[tuple[bytes, int]]:
    """Patterns that report once per line, at the end of the line (just past its newline)."""
    lits = sorted({lit.encode("utf-8") for lit in literals} | {_HITS.encode()})
    alternation = b"|".join(re.escape(lit) for lit in lits)
    tail = rb"[^\n]*\n"
    return [(b"(?:" + alternation + b")" + tail, _LITERAL), (rb"\\" + tail, _ESCAPE)]


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
    """Two hyperscan databases: literal and escape lines, and badly shaped lines."""

    def __init__(self, literals: frozenset[str]) -> None:
        pats = _line_patterns(literals)
        self.kinds = [kind for _p, kind in pats]
        self.lines_db = hyperscan_database([p for p, _k in pats])
        # The last pattern only tells whether the part has a blank line (its first match).
        self.blank_id = len(_SHAPE_PATTERNS)
        self.shape_db = hyperscan_database([*_SHAPE_PATTERNS, _BLANK_LINE], single=(self.blank_id,))
        self.blank = False

    def scan(self, buf: bytes, lo: int, hi: int) -> list[tuple[int, int]]:
        hits: dict[int, int] = {}
        kinds = self.kinds
        shapes: list[int] = []
        blank_id = self.blank_id
        self.blank = False

        def on_line(pid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            hits[lo + end] = hits.get(lo + end, 0) | kinds[pid]

        def on_shape(pid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            if pid == blank_id:
                self.blank = True
            else:
                shapes.append(lo + end)

        scan_in_place(self.lines_db, buf, lo, hi, on_line)
        scan_in_place(self.shape_db, buf, lo, hi, on_shape)
        for end in shapes:
            end_of_line = line_end(buf, end)
            hits[end_of_line] = hits.get(end_of_line, 0) | _SHAPE
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


@dataclass
class RangeResult:
    """What one scanned byte range gives back: counts and the lines to decode."""

    lines: int
    #: Events passed over without an alert: never decoded, or decoded and dismissed.
    dismissed: int
    #: ``(line number within the range, 1-based; line bytes)`` to read through the full
    #: path (``None`` for a line too long to hold), or the line's records with their
    #: alerts already built.
    kept: list[tuple[int, bytes | list[Record] | None]]


class RangeScanner:
    """Scan byte blocks for candidate lines and decide which ones to keep."""

    def __init__(self, fast: FastPath) -> None:
        self.fast = fast
        #: None: no literals, every line is decoded and checked (the full path, in parallel).
        self.finder = make_finder(fast.literals) if fast.literals is not None else None
        self.needles = re.compile("|".join(re.escape(n) for n in sorted((fast.literals or set()) | {_HITS})))
        #: Records this block may still evaluate here; past it the reader decodes them again.
        self.evaluated_left = EVALUATED_PER_BLOCK

    def scan_stream(self, stream: IO[bytes], limit: int | None = None) -> Iterator[RangeResult]:
        """Scan ``stream`` (up to ``limit`` bytes) block by block, in order.

        A line longer than :data:`~credwatch.sources.inputs.MAX_LINE_BYTES` comes
        back as a kept line of ``None``.
        """
        for block in line_blocks(stream, limit):
            if block is None:
                yield RangeResult(1, 0, [(1, None)])
            else:
                yield self.scan_block(*block)

    def scan_block(self, buf: bytes, lo: int, hi: int) -> RangeResult:
        """Scan the whole lines in ``buf[lo:hi]`` (``buf[hi - 1]`` is a newline)."""
        self.evaluated_left = EVALUATED_PER_BLOCK
        if self.finder is None:
            return self._decode_all(buf, lo, hi)
        lines = dismissed = 0
        kept: list[tuple[int, bytes | list[Record] | None]] = []
        while lo < hi:
            cut = hi if hi - lo <= PART_BYTES else buf.find(b"\n", lo + PART_BYTES, hi) + 1
            part = self._scan_part(buf, lo, cut)
            kept.extend((lines + n, line) for n, line in part.kept)
            lines += part.lines
            dismissed += part.dismissed
            lo = cut
        return RangeResult(lines, dismissed, kept)

    def _scan_part(self, buf: bytes, lo: int, hi: int) -> RangeResult:
        assert self.finder is not None
        hits = self.finder.scan(buf, lo, hi)
        if buf[lo:lo + 1] != b"{":
            first_end = buf.find(b"\n", lo) + 1
            if not hits or hits[0][0] != first_end:
                hits.insert(0, (first_end, _SHAPE))
            else:
                hits[0] = (first_end, hits[0][1] | _SHAPE)
        kept: list[tuple[int, bytes | list[Record] | None]] = []
        dismissed = -len(hits)  # plus the block's line count, below
        # Newlines are counted once: up to each kept line, then the rest of the block.
        lines_before = 0
        counted_to = lo
        for end, kind in hits:
            start = line_start(buf, lo, end)
            line = buf[start: end - 1]
            if not line.strip():
                continue  # a blank line: no event
            if kind == _ESCAPE:
                text = json_unescape(line)
                if text is not None and self.needles.search(text) is None:
                    dismissed += 1
                    continue
            n_events, built = self._judge(line)
            if n_events is not None:
                dismissed += n_events
                continue
            lines_before += buf.count(b"\n", counted_to, start)
            counted_to = start
            kept.append((lines_before + 1, line if built is None else built))
        lines = lines_before + buf.count(b"\n", counted_to, hi)
        # Blank lines that were no candidates are no events either (the first one of a
        # run ends the line before it, or is the part's first line, a candidate).
        blank = 0
        if self.finder.blank:  # rare: the regex runs only where the finder met a blank line
            blank = sum(buf.count(b"\n", m.start(), m.end()) - 1 for m in _BLANK_RUN.finditer(buf, lo, hi))
        return RangeResult(lines, dismissed + lines - blank, kept)

    def _decode_all(self, buf: bytes, lo: int, hi: int) -> RangeResult:
        """Every line decoded and checked: what the reader would do, split across workers."""
        kept: list[tuple[int, bytes | list[Record] | None]] = []
        dismissed = lines = 0
        pos = lo
        while pos < hi:
            end = buf.find(b"\n", pos, hi)
            line = buf[pos:end]
            pos = end + 1
            lines += 1
            if not line.strip():
                continue
            n_events, built = self._judge(line, check=True)
            if n_events is not None:
                dismissed += n_events
            else:
                kept.append((lines, line if built is None else built))
        return RangeResult(lines, dismissed, kept)

    def _judge(self, line: bytes, check: bool = False) -> tuple[int | None, list[Record] | None]:
        """``(events, None)`` if none of ``line``'s events would alert and it parses cleanly.

        Otherwise ``(None, records)`` with each record evaluated (a
        :class:`MatchedRecord`) when the line is clean (see :attr:`FastPath.evaluate`), or
        ``(None, None)`` when the reader must read the line itself (it needs a
        diagnostic). ECS type checks are left to the reader for lines that
        would not alert: a record that fails them would not alert either, and
        the fast path does not type-check lines it passes over.
        """
        scratch = Diagnostics()
        records = list(line_records(line, "", 0, scratch))
        if scratch.skipped:
            return None, None

        def typed() -> bool:  # False: a diagnostic the reader must report itself
            return all(check_types(rec, scratch) and not scratch.warnings for rec in records)

        if check and not typed():
            return None, None
        keep = self.fast.keep
        if not any(keep(rec) for rec in records):
            return len(records), None
        evaluate = self.fast.evaluate
        if evaluate is None or self.evaluated_left <= 0:
            return None, None  # the reader decodes the line again, streaming
        if not check and not typed():
            return None, None
        self.evaluated_left -= len(records)
        return None, [MatchedRecord(rec.event, rec.source, rec.line, rec.index, rec.id, rec.version,
                                    tuple(evaluate(rec))) for rec in records]


# --- splitting a file across workers -----------------------------------------------------

def split_ranges(path: str, size: int, unit: int | None = None) -> list[tuple[int, int]]:
    """Byte ranges of about ``unit`` bytes covering ``path``, each starting at a line start."""
    unit = RANGE_BYTES if unit is None else unit
    starts = [0]
    with open(path, "rb") as fh:
        pos = unit
        while pos < size:
            fh.seek(pos)
            fh.readline()
            nxt = fh.tell()
            if nxt >= size:
                break
            if nxt > starts[-1]:
                starts.append(nxt)
            pos = nxt + unit
    return [(lo, hi) for lo, hi in zip(starts, [*starts[1:], size], strict=True)]


_WORKER: RangeScanner | None = None


def _scan_range(job: tuple[str, int, int]) -> RangeResult:
    path, lo, hi = job
    assert _WORKER is not None  # set before the pool forks
    lines = dismissed = 0
    kept: list[tuple[int, bytes | list[Record] | None]] = []
    with open(path, "rb", buffering=0) as fh:
        fh.seek(lo)
        for part in _WORKER.scan_stream(fh, hi - lo):
            kept.extend((lines + n, line) for n, line in part.kept)
            lines += part.lines
            dismissed += part.dismissed
    return RangeResult(lines, dismissed, kept)


def _quiet_worker() -> None:
    # Ctrl-C reaches the whole process group: the reader stops the pool, and the
    # workers must not print a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def fork_pool(workers: int) -> multiprocessing.pool.Pool:
    """A pool of ``workers`` forked processes that inherit the module state set just before."""
    import multiprocessing

    return multiprocessing.get_context("fork").Pool(workers, initializer=_quiet_worker)


_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


def ordered_results(pool: multiprocessing.pool.Pool, func: Callable[[_Job], _Result],
                    jobs: Sequence[_Job], workers: int, source: str) -> Iterator[_Result]:
    """``func`` over ``jobs`` in the pool, results in job order, at most ``workers + 1`` ahead.

    ``Pool.imap`` lets workers run arbitrarily far ahead of a slow reader (one
    writing many alerts), and every finished range waits in memory; this keeps
    memory flat whatever the file size. A worker's read error (an :class:`OSError`)
    propagates for the input layer to report as ``source: reason``.
    """
    ahead = workers + 1
    pending: deque[multiprocessing.pool.AsyncResult[_Result]] = deque()
    queue = iter(jobs)
    for job in itertools.islice(queue, ahead):
        pending.append(pool.apply_async(func, (job,)))
    while pending:
        result = pending.popleft().get()
        nxt = next(queue, None)
        if nxt is not None:
            pending.append(pool.apply_async(func, (nxt,)))
        yield result


def worker_count(fast: FastPath, path: str | None, size: int | None, unit: int | None = None) -> int:
    """Processes to scan a file with: one per CPU (or ``fast.workers``) and per range, 1 off Linux."""
    if path is None or size is None or not sys.platform.startswith("linux"):
        return 1
    wanted = fast.workers if fast.workers is not None else (os.cpu_count() or 1)
    unit = RANGE_BYTES if unit is None else unit
    return max(1, min(wanted, -(-size // unit)))


def scan_results(stream: IO[bytes], path: str | None, size: int | None,
                 fast: FastPath) -> Iterator[RangeResult]:
    """Range results for one input, in file order (parallel for large regular files)."""
    scanner = RangeScanner(fast)
    workers = worker_count(fast, path, size)
    if path is None or size is None or workers < 2:
        yield from scanner.scan_stream(stream)
        return
    ranges = split_ranges(path, size)
    global _WORKER
    _WORKER = scanner  # inherited by the forked workers
    try:
        with fork_pool(workers) as pool:
            jobs = [(path, lo, hi) for lo, hi in ranges]
            yield from ordered_results(pool, _scan_range, jobs, workers, path)
    finally:
        _WORKER = None


def prefiltered_records(stream: IO[bytes], source: str, diag: Diagnostics, fast: FastPath,
                        path: str | None = None, size: int | None = None,
                        first_line: int = 1) -> Iterator[Record]:
    """Records of the lines that would alert or need a diagnostic; count the rest as events.

    Without literals (``fast.literals is None``) every line is decoded and
    checked in the workers, and only lines that alert or need a diagnostic
    come back: the full path's results, in parallel.
    """
    base = first_line - 1
    for result in scan_results(stream, path, size, fast):
        diag.events += result.dismissed
        if fast.literals is not None:
            diag.prefiltered += result.dismissed
        diag.tick()
        for n, line in result.kept:
            if line is None:
                diag.skip("line-too-long", source, base + n, f"over {inputs.MAX_LINE_BYTES} bytes")
            elif isinstance(line, list):
                for rec in line:  # evaluated in the worker: only the location is the reader's
                    rec.source, rec.line = source, base + n
                    yield rec
            else:
                yield from line_records_checked(line, source, base + n, diag)
        base += result.lines


def literal_union(literal_sets: Sequence[frozenset[str] | None]) -> frozenset[str] | None:
    """The union of several rules' literal sets (``None`` if any rule has none)."""
    out: set[str] = set()
    for lits in literal_sets:
        if lits is None:
            return None
        out |= lits
    return frozenset(out)
