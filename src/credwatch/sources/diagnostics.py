"""What reading the inputs went through: counts by reason, ``file:line`` samples, failed inputs.

Readers never raise on bad data. A bad line, record or value is *skipped* (counted by
reason, with a located sample); something odd that was still evaluated is a *warning*;
an input that could not be read at all, or only in part (a corrupt gzip, a dangling
symlink, a socket, a file that shrank while read), is a *failed input*, reported as
``path: reason``. The CLI turns failed inputs into exit status 3 (PARTIAL).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from credwatch.errors import SourceError

#: How many ``file:line`` samples are kept for the report.
SAMPLE_LIMIT = 20


@dataclass
class Diagnostics:
    """Counts of what was read, skipped (by reason) and matched, with file:line samples."""

    files: int = 0
    events: int = 0
    matched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    strict: bool = False
    #: Events counted without being decoded or dismissed by the literal prefilter.
    prefiltered: int = 0
    #: Inputs that could not be read, or not to their end: ``path: reason`` each.
    failed: list[str] = field(default_factory=list)
    #: Valid audit events that carry no exec (logins, CONFIG_CHANGE, a lone CWD...): not defects.
    other_events: int = 0
    #: Raw audit lines, records and record types seen by the reassembler
    #: (:mod:`credwatch.sources.audit_reassembly`; zero for other inputs).
    lines: int = 0
    records: int = 0
    record_types: Counter[str] = field(default_factory=Counter)
    #: Called by readers that count many events at once (see :meth:`tick`), e.g. a progress bar.
    progress: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def tick(self) -> None:
        """Tell :attr:`progress` that the counts moved."""
        if self.progress is not None:
            self.progress()

    def skip(self, reason: str, source: str, line: int | None, detail: str = "") -> None:
        """Record a skipped input unit; raise :class:`SourceError` under ``strict``."""
        self.skipped[reason] += 1
        where = f"{source}:{line}" if line is not None else source
        message = f"{where}: {reason}" + (f" ({detail})" if detail else "")
        if self.strict:
            raise SourceError(f"{reason}" + (f" ({detail})" if detail else ""), source, line)
        if len(self.samples) < SAMPLE_LIMIT:
            self.samples.append(message)

    def warn(self, reason: str, source: str, line: int | None, detail: str = "") -> None:
        """Record something odd that was still evaluated (e.g. a string where an array is usual)."""
        self.warnings[reason] += 1
        if len(self.samples) < SAMPLE_LIMIT:
            where = f"{source}:{line}" if line is not None else source
            self.samples.append(f"{where}: warning: {reason}" + (f" ({detail})" if detail else ""))

    def fail(self, source: str, reason: str) -> None:
        """Record an input that could not be read (or not to its end); never raises.

        Unlike :meth:`skip`, this is not fatal under ``strict``: one unreadable input
        must not stop the others. The CLI reports every failed input and exits 3.
        """
        self.failed.append(f"{source}: {reason}")

    def merge(self, other: Diagnostics, prefix: str = "") -> None:
        """Add ``other``'s skipped and warning counts (reasons prefixed) and samples to these."""
        for reason, n in other.skipped.items():
            self.skipped[prefix + reason] += n
        for reason, n in other.warnings.items():
            self.warnings[prefix + reason] += n
        self.samples.extend(other.samples[: max(0, SAMPLE_LIMIT - len(self.samples))])
        self.failed.extend(other.failed)

    @property
    def failed_inputs(self) -> int:
        """How many inputs could not be read, or not completely."""
        return len(self.failed)

    @property
    def skipped_total(self) -> int:
        """Total number of skipped input units."""
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One line: events read, skipped by reason, failed inputs, matched."""
        parts = [f"{self.events} events read from {self.files} input(s)"]
        if self.prefiltered:
            parts[0] += f" ({self.prefiltered} ruled out by the literal prefilter)"
        if self.other_events:
            parts[0] += f" (and {self.other_events} non-exec audit events)"
        if self.skipped:
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items()))
            parts.append(f"{self.skipped_total} skipped ({reasons})")
        else:
            parts.append("0 skipped")
        if self.warnings:
            parts.append(", ".join(f"{n} {r}" for r, n in sorted(self.warnings.items())))
        if self.failed:
            parts.append(f"{len(self.failed)} input(s) could not be read")
        parts.append(f"{self.matched} matched")
        return "; ".join(parts)
