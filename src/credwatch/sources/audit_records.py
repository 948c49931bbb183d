"""Bridge raw audit logs into the scan pipeline: audit.log bytes → ECS :class:`Record` s.

Reassembly and the ECS mapping live in :mod:`credwatch.sources.auditd` and
:mod:`credwatch.normalize.auditd`; this module only adapts their output and
their diagnostics to the ones :mod:`credwatch.sources.ecs` reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from credwatch.normalize.auditd import NormalizeStats, to_ecs
from credwatch.sources import auditd as raw

if TYPE_CHECKING:
    from credwatch.sources.ecs import Diagnostics, Record


def audit_records(stream: IO[bytes], source: str, diag: Diagnostics) -> Iterator[Record]:
    """Yield one record per exec event in a raw audit log; count everything else."""
    from credwatch.sources.ecs import Record, iter_lines

    audit_diag = raw.Diagnostics()
    stats = NormalizeStats()

    def lines() -> Iterator[bytes]:
        for lineno, line in iter_lines(stream):
            if line is None:
                diag.skip("line-too-long", source, lineno)
                yield b"\n"  # keep numbering aligned
            else:
                yield line

    try:
        for event in raw.iter_audit_events(lines(), path=source, diagnostics=audit_diag):
            doc = to_ecs(event, stats=stats)
            if doc is not None:
                yield Record(doc, source, event.lineno)
    finally:
        for reason, n in audit_diag.skipped.items():
            diag.skipped[f"audit-{reason}"] += n
        for reason, n in audit_diag.warnings.items():
            diag.warnings[f"audit-{reason}"] += n
        non_exec = sum(stats.skipped.values())
        if non_exec:
            diag.warnings["audit-non-exec-events"] += non_exec
        for sample in audit_diag.samples:
            if len(diag.samples) < 20:
                diag.samples.append(str(sample))
        if diag.strict and audit_diag.skipped:
            from credwatch.errors import SourceError

            first = audit_diag.samples[0] if audit_diag.samples else None
            raise SourceError(first.message if first else "bad audit record",
                              first.path if first else source, first.line if first else None)
