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
and diagnostics are exactly those of the full path. For audit logs, the
events picked in a worker are reassembled there and dropped when they cannot
alert; the rest come back as lines for the parent's reassembler.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import os
import pickle
import signal
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, Literal, NoReturn, TypeVar

from credwatch.engine.parquet_read import is_parquet, parquet_records
from credwatch.normalize.auditd import to_ecs
from credwatch.sources import audit_prefiltered as audit_fast
from credwatch.sources import auditd as raw
from credwatch.sources import inputs
from credwatch.sources import prefiltered as ndjson_fast
from credwatch.sources.audit_prefiltered import AuditLineFilter
from credwatch.sources.audit_records import numbered_audit_records
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
#: Bytes per audit work unit: each also reads ``WINDOW_BYTES`` of context on either
#: side, so audit ranges are larger than NDJSON's.
AUDIT_RANGE_BYTES = 128 << 20
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


def _quiet_worker() -> None:
    # Ctrl-C reaches the whole process group: the reader stops the workers, and they
    # must not print a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


def forked_results(func: Callable[[_Job], _Result], jobs: Sequence[_Job], workers: int
                   ) -> Generator[_Result, None, None]:
    """``func`` over ``jobs`` in ``workers`` forked processes, results in job order.

    Job ``i`` runs in worker ``i % workers`` (the jobs are byte ranges of one size),
    which sends its results in order through a pipe of its own. Unlike a
    :class:`multiprocessing.pool.Pool`, the parent runs no helper threads: those
    contend with it for the GIL while it builds alerts, and a job waits for one of
    them to be dispatched. A worker runs ahead of a slow consumer only as far as its
    pipe holds, so memory stays flat whatever the file size. A worker's exception (a
    read error: :class:`OSError`) is raised here, in the parent.
    """
    procs: list[tuple[int, IO[bytes]]] = []
    done = False
    with contextlib.ExitStack() as pipes:
        try:
            for index in range(workers):
                read_fd, write_fd = os.pipe()
                pid = os.fork()
                if pid == 0:  # the worker: never returns
                    os.close(read_fd)
                    _forked_worker(func, jobs[index::workers], write_fd, [fh.fileno() for _p, fh in procs])
                os.close(write_fd)
                procs.append((pid, pipes.enter_context(open(read_fd, "rb"))))
            for index in range(len(jobs)):
                yield _receive(procs[index % workers][1])
            done = True
        finally:
            for pid, _fh in procs:
                if not done:
                    os.kill(pid, signal.SIGKILL)  # stopped early: the rest is not wanted
                os.waitpid(pid, 0)


def _forked_worker(func: Callable[[_Job], object], jobs: Sequence[_Job], write_fd: int,
                   inherited: list[int]) -> NoReturn:
    """Run ``jobs`` and send each result (or exception) to the parent; then exit."""
    status = 1
    try:
        _quiet_worker()
        for fd in inherited:  # the other workers' pipes: only the parent reads them
            os.close(fd)
        with open(write_fd, "wb") as out:
            for job in jobs:
                try:
                    message: tuple[bool, object] = (True, func(job))
                except Exception as exc:  # re-raised in the parent
                    message = (False, exc)
                data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
                out.write(len(data).to_bytes(8, "little"))
                out.write(data)
                out.flush()
        status = 0
    finally:
        os._exit(status)  # no atexit handlers, no flushing of the parent's buffers


def _receive(fh: IO[bytes]) -> Any:
    """The next result a worker sent (its exception raised)."""
    head = fh.read(8)
    data = fh.read(int.from_bytes(head, "little")) if len(head) == 8 else b""
    if not data:
        raise OSError(errno.EIO, "a worker process ended before sending its result")
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value


def worker_count(fast: FastPath, path: str | None, size: int | None, unit: int | None = None) -> int:
    """Processes to scan a file with: one per CPU (or ``fast.workers``) and per range, 1 off Linux."""
    if path is None or size is None or not sys.platform.startswith("linux"):
        return 1
    wanted = fast.workers if fast.workers is not None else (os.cpu_count() or 1)
    unit = RANGE_BYTES if unit is None else unit
    return max(1, min(wanted, -(-size // unit)))


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
        jobs = [(path, lo, hi) for lo, hi in split_ranges(path, size)]
        yield from forked_results(_scan_range, jobs, workers)
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


# --- audit logs: events picked, reassembled and dismissed in workers -----------------------

@dataclass
class _RangeLines:
    lines: int
    execve_lines: int
    fed_execve_lines: int
    picked: list[tuple[int, bytes | None]]


_AUDIT_WORKER: tuple[AuditLineFilter, Callable[[Record], bool]] | None = None


def _pick_range(job: tuple[str, int, int, int]) -> _RangeLines:
    """Pick the lines of ``[lo, hi)``, reading ``WINDOW_BYTES`` of context either side."""
    path, lo, hi, size = job
    assert _AUDIT_WORKER is not None  # set before the workers fork
    template, keep = _AUDIT_WORKER
    picker = copy.copy(template)  # the compiled finders are shared; the counts are this range's
    picker.execve_lines = picker.fed_execve_lines = picker.own_lines = 0
    window = audit_fast.WINDOW_BYTES
    with open(path, "rb", buffering=0) as fh:
        start = max(0, lo - window)
        fh.seek(start)
        if start > 0:
            start = min(start + len(fh.readline()), lo)  # context starts at a line start
            fh.seek(start)

        def blocks() -> Iterator[tuple[tuple[bytes, int, int] | None, bool]]:
            for limit, own in ((lo - start, False), (hi - lo, True), (min(window, size - hi), False)):
                for block in ndjson_fast.line_blocks(fh, limit):
                    yield block, own

        picked = list(picker.lines_of_blocks(blocks(), start, context=True))
    picked = dismiss_events(picked, keep, path)
    fed = sum(1 for _n, line in picked if line is not None and audit_fast.EXECVE in line)
    return _RangeLines(picker.own_lines, picker.execve_lines, fed, picked)


def dismiss_events(picked: list[tuple[int, bytes | None]], keep: Callable[[Record], bool],
                   path: str) -> list[tuple[int, bytes | None]]:
    """Drop the own lines of events that cannot alert; keep everything else in order.

    ``picked`` holds own lines (numbered from 1) and context lines (numbered 0).
    An event is dropped only when all its lines are own, none is malformed or
    truncated, its records hold no ``EOE`` before the last, and its ECS form
    does not match: anything else is passed on for the reader to reassemble
    and report exactly as the full path would.
    """
    groups: dict[tuple[str | None, str, int], list[tuple[int, raw.AuditRecord]]] = {}
    kept: set[int] = set()
    for i, (n, line) in enumerate(picked):
        if line is None:
            kept.add(i)
            continue
        rec = raw.parse_line(line, path=path, lineno=n)
        if isinstance(rec, str):
            if n and rec not in ("blank", "separator"):
                kept.add(i)
            continue
        groups.setdefault((rec.node, rec.stamp, rec.serial), []).append((i, rec))
    for members in groups.values():
        if _clean(picked, members) and not _may_alert([r for _i, r in members], keep, path):
            continue
        kept.update(i for i, _r in members)
    return [picked[i] for i in sorted(kept) if picked[i][0]]


def _clean(picked: list[tuple[int, bytes | None]], members: list[tuple[int, raw.AuditRecord]]) -> bool:
    """True when an event is whole, in own lines, and reassembles without a diagnostic."""
    records = [rec for _i, rec in members]
    eoe = [j for j, rec in enumerate(records) if rec.type == "EOE"]
    return (all(picked[i][0] for i, _r in members) and not any(r.truncated for r in records)
            and all(j == len(records) - 1 for j in eoe)
            and len(records) <= raw.DEFAULT_MAX_RECORDS_PER_EVENT)


def _may_alert(records: list[raw.AuditRecord], keep: Callable[[Record], bool], path: str) -> bool:
    body = [r for r in records if r.type != "EOE"]
    first = body[0] if body else records[0]
    event = raw.AuditEvent(node=first.node, stamp=first.stamp, serial=first.serial,
                           time=first.time, records=body, path=path, lineno=first.lineno)
    doc = to_ecs(event) if body else None
    return doc is not None and keep(Record(doc, path, first.lineno))


def parallel_lines(picker: AuditLineFilter, keep: Callable[[Record], bool], path: str, size: int,
                   workers: int) -> Iterator[tuple[int, bytes | None]]:
    """:meth:`AuditLineFilter.lines` over ``path``, picked and judged by forked workers."""
    global _AUDIT_WORKER
    ranges = split_ranges(path, size, AUDIT_RANGE_BYTES)
    _AUDIT_WORKER = (picker, keep)  # inherited by the forked workers
    try:
        base = 0
        jobs = [(path, lo, hi, size) for lo, hi in ranges]
        for part in forked_results(_pick_range, jobs, min(workers, len(ranges))):
            picker.execve_lines += part.execve_lines
            picker.fed_execve_lines += part.fed_execve_lines
            for n, line in part.picked:
                yield base + n, line
            base += part.lines
    finally:
        _AUDIT_WORKER = None


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
        workers = worker_count(engaged, path, size, AUDIT_RANGE_BYTES)
        if workers > 1:
            picker = AuditLineFilter(needles)
            numbered = parallel_lines(picker, engaged.keep, path, size, workers)
            yield from numbered_audit_records(numbered, source, diag, picker)
            return
    yield from read_prepared(source, stream, skipped, fmt, diag, literals=literals, audit_needles=needles)

