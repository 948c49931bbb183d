"""Raw ``audit.log`` reader: line parser and event reassembly.

A kernel audit *event* is several *records* (SYSCALL, EXECVE, CWD, PATH,
PROCTITLE, BPRM_FCAPS …) sharing one ``audit(<sec.ms>:<serial>)`` stamp. The
log carries no end-of-event marker and records of concurrent events
interleave, so :class:`Reassembler` groups by stamp and closes an event when it
has been quiet for ``quiet_records`` records (or ``idle_seconds`` when
following live), and at end of input. The buffer is bounded by
``max_pending`` events and ``max_records_per_event`` records per event.

Line forms understood:

* ENRICHED (``log_format = ENRICHED``): raw record, byte ``0x1d``, then
  interpreted fields such as ``UID="root"``; also the same with the ``0x1d``
  lost (upper-case keys glued on with a space);
* RAW (``log_format = RAW``);
* ``node=<host>`` prefixes (``name_format``), and a free-form prefix before
  ``node=``/``type=`` such as a syslog header;
* kernel/dmesg form ``type=1300 audit(…):`` with numeric types;
* ``ausearch -i`` output: ``msg=audit(12/01/26 11:33:14.643:3) :`` with
  already-decoded, unquoted values, and ``----`` separators.

Nothing here raises on bad data: malformed lines are counted by reason in a
:class:`Diagnostics` with ``file:line`` samples, and every other event is
still produced. This module reads files; line parsing is in
:mod:`credwatch.sources.audit_parse`, reassembly in
:mod:`credwatch.sources.audit_reassembly`, the record and event types in
:mod:`credwatch.normalize.audit_event`, value decoding in
:mod:`credwatch.normalize.audit_values`.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

from credwatch.normalize.audit_event import AuditEvent, AuditRecord
from credwatch.normalize.auditd import NameResolver, NormalizeStats, iter_ecs
from credwatch.sources.audit_parse import NUMERIC_TYPES, looks_like_audit, parse_line
from credwatch.sources.audit_reassembly import (
    DEFAULT_MAX_PENDING,
    DEFAULT_MAX_RECORDS_PER_EVENT,
    DEFAULT_QUIET_RECORDS,
    EventKey,
    Reassembler,
    feed_lines,
    iter_audit_events,
    iter_numbered_audit_events,
)
from credwatch.sources.diagnostics import Diagnostics

__all__ = [
    "DEFAULT_MAX_PENDING",
    "DEFAULT_MAX_RECORDS_PER_EVENT",
    "DEFAULT_QUIET_RECORDS",
    "NUMERIC_TYPES",
    "AuditEvent",
    "AuditRecord",
    "Diagnostics",
    "EventKey",
    "Reassembler",
    "audit_files_to_ecs",
    "feed_lines",
    "iter_audit_events",
    "iter_audit_files",
    "iter_numbered_audit_events",
    "looks_like_audit",
    "open_lines",
    "parse_line",
    "rotated_files",
    "sniff_path",
]


def open_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Yield the lines of a file, transparently gunzipping ``.gz``/gzip content."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
        fh.seek(0)
        if magic == b"\x1f\x8b":
            with gzip.open(fh, "rb") as gz:
                yield from gz
        else:
            yield from fh


_ROTATED_RE = re.compile(r"\.(\d+)(\.gz)?\Z")


def rotated_files(path: str | os.PathLike[str]) -> list[Path]:
    """``audit.log`` plus its rotations (``audit.log.1``, ``audit.log.2.gz`` …), oldest first.

    auditd's ROTATE keeps ``.1`` as the newest rotation, so higher numbers
    come first and the live file last.
    """
    base = Path(path)
    found: list[tuple[int, Path]] = []
    if base.parent.is_dir():
        for p in base.parent.iterdir():
            if p.name.startswith(base.name + "."):
                m = _ROTATED_RE.search(p.name[len(base.name):])
                if m and m.start() == 0:
                    found.append((int(m.group(1)), p))
    ordered = [p for _, p in sorted(found, key=lambda t: -t[0])]
    if base.exists():
        ordered.append(base)
    return ordered


def iter_audit_files(paths: Sequence[str | os.PathLike[str]], *,
                     diagnostics: Diagnostics | None = None,
                     quiet_records: int = DEFAULT_QUIET_RECORDS,
                     max_pending: int = DEFAULT_MAX_PENDING,
                     interpreted_tz: tzinfo = UTC) -> Iterator[AuditEvent]:
    """Reassemble events across several files read in the given order (see :func:`rotated_files`)."""
    reasm = Reassembler(quiet_records=quiet_records, max_pending=max_pending,
                        diagnostics=diagnostics)
    for p in paths:
        yield from feed_lines(enumerate(open_lines(p), 1), reasm, path=str(p),
                              interpreted_tz=interpreted_tz)
    yield from reasm.flush()


def sniff_path(path: str | os.PathLike[str], size: int = 4096) -> bool:
    """:func:`looks_like_audit` on the first ``size`` bytes of a (possibly gzipped) file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
            if head[:2] == b"\x1f\x8b":
                fh.seek(0)
                with gzip.open(fh, "rb") as gz:
                    head = gz.read(size)
    except (OSError, EOFError):
        return False
    return looks_like_audit(head)


def audit_files_to_ecs(paths: Sequence[str], *, diagnostics: Diagnostics | None = None,
                       stats: NormalizeStats | None = None,
                       resolver: NameResolver | None = None) -> Iterator[dict[str, Any]]:
    """Read audit logs (plain, gzip, in the given order) and yield ECS exec documents."""
    yield from iter_ecs(iter_audit_files(paths, diagnostics=diagnostics),
                        resolver=resolver, stats=stats)
