"""Parallel reading and evaluation of large inputs: the engine's forked workers.

Readers only read. :mod:`credwatch.sources.prefiltered` finds the candidate
lines of a byte range of NDJSON (the literal filter the engine hands it), and
:mod:`credwatch.sources.audit_prefiltered` picks the lines of the audit events
that may hold a literal. This module splits large regular files into byte
ranges at line starts, runs reader + filter + evaluation in forked workers, and
gets back *matches* (:class:`~credwatch.sources.record.MatchedRecord`: a record
and which rules matched it, why), never alerts: the parent builds every alert
in one place.

In a worker, an NDJSON candidate line is decoded and evaluated; only the lines
that would alert, or that need a diagnostic, come back, and the reader's
ordinary path decodes the diagnostic ones again so that records, line numbers
and diagnostics are exactly those of the full path. Audit logs go to
:mod:`credwatch.engine.audit_workers` (imported for audit input only), where the
events picked in a worker are reassembled and dropped when they cannot alert;
the rest come back as lines for the parent's reassembler. The processes
themselves are :mod:`credwatch.engine.forked`'s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Literal

from credwatch.engine import forked
from credwatch.engine.parquet_read import is_parquet, parquet_records
from credwatch.sources import inputs
from credwatch.sources.detect import prepare
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import check_types, line_records, line_records_checked
from credwatch.sources.inputs import OpenedInput
from credwatch.sources.prefiltered import RangeScanner, Scanned
from credwatch.sources.read import read_inputs, read_prepared
from credwatch.sources.record import MatchedRecord, Record

#: ``auto`` engages the fast path for regular files at least this large.
AUTO_MIN_BYTES = 32 << 20
PREFILTER_MODES = ("auto", "always", "never")
PrefilterMode = Literal["auto", "always", "never"]
#: Bytes per work unit when an NDJSON file is split across workers (small units
#: balance the workers).
RANGE_BYTES = 8 << 20
#: At most this many records per block come back from a worker decoded; the block's other
#: matching lines come back as bytes with their evaluation (:class:`Judged`): a rule matching
#: most events must not fill memory with decoded events.
EVALUATED_PER_BLOCK = 128


@dataclass(frozen=True)
class FastPath:
    """How the engine reads large inputs for a rule set: the literals and the exact tests.

    ``literals`` and ``audit_needles`` are handed to the readers as filters;
    ``keep`` and ``evaluate`` run here, in the engine's workers, never in a reader.
    """

    #: Literals for NDJSON (``None``: NDJSON inputs are read in full).
    literals: frozenset[str] | None
    #: True when a record would produce an alert (no alert is built).
    keep: Callable[[Record], bool]
    mode: PrefilterMode = "auto"
    workers: int | None = None
    #: Byte strings, one of which every audit event that may alert holds (``None``:
    #: audit logs are read in full).
    audit_needles: frozenset[bytes] | None = None
    #: Which rules match a record and why (opaque here), run in the worker that found it;
    #: empty exactly when ``keep`` is False (workers use it in place of ``keep``).
    evaluate: Callable[[Record], Sequence[object]] | None = None

    def engages(self, size: int | None) -> bool:
        """True when a file of ``size`` bytes (``None``: unknown, e.g. stdin) takes this path.

        Without literals every line is decoded anyway, and splitting the file
        across workers only pays for large regular files.
        """
        if self.mode == "always" and self.literals is not None:
            return True
        return size is not None and size >= AUTO_MIN_BYTES


# --- the workers -----------------------------------------------------------------------------

def worker_count(fast: FastPath, path: str | None, size: int | None) -> int:
    """Processes to scan an NDJSON file with: one per CPU (or ``fast.workers``) and per range."""
    return forked.worker_count(fast.workers, path, size, RANGE_BYTES)


# --- NDJSON: candidate lines decoded and evaluated -----------------------------------------

@dataclass(frozen=True, slots=True)
class Judged:
    """A clean candidate line and its records' evaluation, past a block's budget of records.

    The line goes back as bytes (not as decoded events, which weigh ten times
    more); the reader decodes it once more, but nothing is evaluated or
    type-checked twice: ``matches`` holds each record's answer, in order.
    """

    line: bytes
    matches: tuple[tuple[object, ...], ...]


#: What a range gives back for one kept line: bytes to read through the full path, the
#: evaluated records, a judged line, or ``None`` for a line too long to hold.
Kept = bytes | list[Record] | Judged | None


@dataclass
class RangeResult:
    """What one scanned byte range gives back: counts and the lines to decode."""

    lines: int
    #: Events passed over without an alert: never decoded, or decoded and dismissed.
    dismissed: int
    #: ``(line number within the range, 1-based; what is kept of the line)``: see :data:`Kept`.
    kept: list[tuple[int, Kept]]


class LineJudge:
    """Decode and evaluate the candidate lines a reader found; keep what may alert."""

    def __init__(self, fast: FastPath) -> None:
        self.fast = fast
        self.scanner = RangeScanner(fast.literals)
        #: Without literals every line is a candidate and is type-checked here too.
        self.check = fast.literals is None
        self.evaluated_left = EVALUATED_PER_BLOCK

    def results(self, stream: IO[bytes], limit: int | None = None) -> Iterator[RangeResult]:
        """The judged blocks of ``stream`` (up to ``limit`` bytes), in order."""
        for scanned in self.scanner.scan_stream(stream, limit):
            yield self.judge_block(scanned)

    def judge_block(self, scanned: Scanned) -> RangeResult:
        """Evaluate the candidates of one block; count the dismissed ones as events."""
        self.evaluated_left = EVALUATED_PER_BLOCK
        dismissed = scanned.passed
        kept: list[tuple[int, Kept]] = []
        for n, line in scanned.candidates:
            if line is None:
                kept.append((n, None))
                continue
            n_events, built = self.judge(line)
            if n_events is not None:
                dismissed += n_events
            else:
                kept.append((n, line if built is None else built))
        return RangeResult(scanned.lines, dismissed, kept)

    def judge(self, line: bytes) -> tuple[int | None, list[Record] | Judged | None]:
        """``(events, None)`` if none of ``line``'s events would alert and it parses cleanly.

        Otherwise ``(None, records)`` with each record evaluated (a
        :class:`MatchedRecord`) when the line is clean, or ``(None, None)`` when
        the reader must read the line itself (it needs a diagnostic). ECS type
        checks are left to the reader for lines that would not alert: a record
        that fails them would not alert either.
        """
        scratch = Diagnostics()
        records = list(line_records(line, "", 0, scratch))
        if scratch.skipped:
            return None, None

        def typed() -> bool:  # False: a diagnostic the reader must report itself
            return all(check_types(rec, scratch) and not scratch.warnings for rec in records)

        if self.check and not typed():
            return None, None
        evaluate = self.fast.evaluate
        if evaluate is None:
            if not any(self.fast.keep(rec) for rec in records):
                return len(records), None
            return None, None  # the reader decodes and evaluates the line itself
        # ``evaluate`` is ``keep``'s test and the explanation: one pass over the rules, not two.
        matches = [evaluate(rec) for rec in records]
        if not any(matches):
            return len(records), None
        if not self.check and not typed():
            return None, None
        if self.evaluated_left <= 0:  # past the budget: the answer without the decoded events
            return None, Judged(line, tuple(tuple(found) for found in matches))
        self.evaluated_left -= len(records)
        return None, [MatchedRecord(rec.event, rec.source, rec.line, rec.index, rec.id, rec.version,
                                    tuple(found)) for rec, found in zip(records, matches, strict=True)]


_NDJSON_WORKER: LineJudge | None = None


def _scan_range(job: tuple[str, int, int]) -> RangeResult:
    path, lo, hi = job
    assert _NDJSON_WORKER is not None  # set before the workers fork
    lines = dismissed = 0
    kept: list[tuple[int, Kept]] = []
    with open(path, "rb", buffering=0) as fh:
        fh.seek(lo)
        for part in _NDJSON_WORKER.results(fh, hi - lo):
            kept.extend((lines + n, line) for n, line in part.kept)
            lines += part.lines
            dismissed += part.dismissed
    return RangeResult(lines, dismissed, kept)


def scan_results(stream: IO[bytes], path: str | None, size: int | None,
                 fast: FastPath) -> Iterator[RangeResult]:
    """Range results for one input, in file order (parallel for large regular files)."""
    judge = LineJudge(fast)
    workers = worker_count(fast, path, size)
    if path is None or size is None or workers < 2:
        yield from judge.results(stream)
        return
    global _NDJSON_WORKER
    _NDJSON_WORKER = judge  # inherited by the forked workers
    try:
        jobs = [(path, lo, hi) for lo, hi in forked.split_ranges(path, size, RANGE_BYTES)]
        yield from forked.forked_results(_scan_range, jobs, workers)
    finally:
        _NDJSON_WORKER = None


def ndjson_records(stream: IO[bytes], source: str, diag: Diagnostics, fast: FastPath,
                   path: str | None = None, size: int | None = None,
                   first_line: int = 1) -> Iterator[Record]:
    """Records of the lines that would alert or need a diagnostic; count the rest as events."""
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
            elif isinstance(line, Judged):
                # Clean and evaluated in the worker: decoded once more, nothing else redone.
                records = line_records(line.line, source, base + n, diag)
                for rec, found in zip(records, line.matches, strict=True):
                    yield MatchedRecord(rec.event, rec.source, rec.line, rec.index, rec.id,
                                        rec.version, found)
            else:
                yield from line_records_checked(line, source, base + n, diag)
        base += result.lines


# --- the engine's reading of inputs ----------------------------------------------------------

def read_records(paths: Iterable[str], diag: Diagnostics, *, input_format: str = "auto",
                 glob: str | None = None, stdin: IO[bytes] | None = None,
                 fast: FastPath | None = None) -> Iterator[Record]:
    """Read every input as :func:`credwatch.sources.read.read_records` does, large ones through ``fast``.

    With ``fast``, NDJSON and audit inputs it engages for are split across
    workers here: only records that would alert (already evaluated) or need a
    diagnostic are yielded, the rest are counted in ``diag``.
    """
    def read(opened: OpenedInput) -> Iterator[Record]:
        return _read_one(opened, diag, input_format, fast)

    return read_inputs(paths, diag, read, input_format=input_format, glob=glob, stdin=stdin)


def _read_one(opened: OpenedInput, diag: Diagnostics, input_format: str,
              fast: FastPath | None) -> Iterator[Record]:
    """One opened input: through the engine's workers when ``fast`` engages, else the plain reader."""
    source = opened.input.source
    size = opened.plain_size
    path = opened.input.path if size is not None else None
    # Documents are filtered whatever their size: their elements are not bounded by lines
    # (ten million `{}` in 30 MB), and a unit without a literal cannot alert.
    literals = fast.literals if fast is not None and not diag.strict else None
    engaged = fast if fast is not None and not diag.strict and fast.engages(size) else None
    if path is not None and input_format == "auto" and is_parquet(path):
        yield from parquet_records(path, source, diag)  # pyarrow, in batches
        return
    stream, skipped, fmt = prepare(opened.stream, input_format)
    if engaged is not None and path is not None and fmt in ("auditd", "ndjson"):
        # Workers split the file by offset and number its lines from the start.
        opened.stream.seek(0)
        stream, skipped = opened.stream, 0
    if engaged is not None and fmt == "ndjson" and (
            engaged.literals is not None or worker_count(engaged, path, size) > 1):
        # Decoding every line gains only from workers; alone, the plain reader is as fast.
        yield from ndjson_records(stream, source, diag, engaged, path, size, first_line=skipped + 1)
        return
    needles = engaged.audit_needles if engaged is not None else None
    if engaged is not None and needles is not None and fmt == "auditd" and path is not None and size:
        # The audit readers load only for audit input (~10 ms of an NDJSON scan's start-up).
        from credwatch.engine import audit_workers

        workers = audit_workers.worker_count(engaged.workers, path, size)
        if workers > 1:
            yield from audit_workers.records(needles, engaged.keep, path, size, workers, source, diag)
            return
    yield from read_prepared(source, stream, skipped, fmt, diag, literals=literals, audit_needles=needles)

