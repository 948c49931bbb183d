"""Bridge raw audit logs into the scan pipeline: audit.log bytes → ECS :class:`Record` s.

Reassembly and the ECS mapping live in :mod:`credwatch.sources.auditd` and
:mod:`credwatch.normalize.auditd`; this module only adapts their output and
their diagnostics to the ones :mod:`credwatch.sources.read` reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from credwatch.normalize.auditd import NormalizeStats, to_ecs
from credwatch.sources import auditd as raw
from credwatch.sources.audit_prefiltered import AuditLineFilter
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.inputs import iter_lines
from credwatch.sources.record import Record


def audit_records(stream: IO[bytes], source: str, diag: Diagnostics,
                  needles: frozenset[bytes] | None = None, first_line: int = 1) -> Iterator[Record]:
    """Yield one record per exec event in a raw audit log; count everything else.

    With ``needles`` (the literal filter the engine hands over), only the events
    that hold one are reassembled (:mod:`credwatch.sources.audit_prefiltered`); the
    exec events passed over are counted from their EXECVE records.
    """
    if needles is None:
        yield from numbered_audit_records(iter_lines(stream, first_line=first_line), source, diag)
        return
    picker = AuditLineFilter(needles)
    numbered = ((n + first_line - 1, line) for n, line in picker.lines(stream))
    yield from numbered_audit_records(numbered, source, diag, picker)


def numbered_audit_records(numbered: Iterator[tuple[int, bytes | None]], source: str, diag: Diagnostics,
                           picker: AuditLineFilter | None = None) -> Iterator[Record]:
    """Records of the exec events in ``(line number, line)`` pairs (``None``: a line too long).

    ``picker``, when the lines were picked through it, adds the exec events it passed over.
    """
    # The reassembler's own counts (reasons get an ``audit-`` prefix below); under
    # ``strict`` its first skipped line raises, located.
    audit_diag = Diagnostics(strict=diag.strict)
    stats = NormalizeStats()

    def lines() -> Iterator[tuple[int, bytes]]:
        for lineno, line in numbered:
            if line is None:
                diag.skip("line-too-long", source, lineno)
            else:
                yield lineno, line

    try:
        for event in raw.iter_numbered_audit_events(lines(), path=source, diagnostics=audit_diag):
            doc = to_ecs(event, stats=stats)
            if doc is not None:
                yield Record(doc, source, event.lineno)
    finally:
        if picker is not None:
            diag.events += picker.passed_over
            diag.prefiltered += picker.passed_over
        diag.merge(audit_diag, prefix="audit-")
        # Logins, CONFIG_CHANGE, a lone CWD or PROCTITLE...: valid audit data, not defects.
        diag.other_events += sum(stats.skipped.values())
