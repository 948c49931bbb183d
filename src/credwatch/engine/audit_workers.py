"""Large audit logs read in forked workers: events picked, reassembled and dismissed there.

Each worker takes a byte range of the log (with :data:`~credwatch.sources.audit_prefiltered.WINDOW_BYTES`
of context on either side, since an event's records may be far apart), keeps
the lines of the events that may hold a literal, reassembles those events and
drops the ones that cannot alert; the rest come back as numbered lines for the
parent's reassembler, which reports them exactly as the full path would.

Imported by :mod:`credwatch.engine.workers` only for audit input: a scan of
NDJSON never loads the audit readers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from credwatch.engine.forked import forked_results, split_ranges
from credwatch.engine.forked import worker_count as _worker_count
from credwatch.normalize.auditd import to_ecs
from credwatch.sources import audit_prefiltered as audit_fast
from credwatch.sources import auditd as raw
from credwatch.sources import prefiltered as ndjson_fast
from credwatch.sources.audit_prefiltered import AuditLineFilter
from credwatch.sources.audit_records import numbered_audit_records
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.record import Record

__all__ = ["RANGE_BYTES", "dismiss_events", "parallel_lines", "records", "worker_count"]

#: Bytes per audit work unit: each also reads ``WINDOW_BYTES`` of context on either
#: side, so audit ranges are larger than NDJSON's.
RANGE_BYTES = 128 << 20


def worker_count(wanted: int | None, path: str, size: int) -> int:
    """Processes for an audit log of ``size`` bytes (one per range of :data:`RANGE_BYTES` at most)."""
    return _worker_count(wanted, path, size, RANGE_BYTES)


def records(needles: frozenset[bytes], keep: Callable[[Record], bool], path: str, size: int,
            workers: int, source: str, diag: Diagnostics) -> Iterator[Record]:
    """The records of the events of ``path`` that may alert, reassembled from the workers' lines."""
    picker = AuditLineFilter(needles)
    yield from numbered_audit_records(parallel_lines(picker, keep, path, size, workers), source, diag,
                                      picker)


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
    ranges = split_ranges(path, size, RANGE_BYTES)
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
