"""The data a raw audit log is made of, as the ECS mapping sees it: records and events.

Readers (:mod:`credwatch.sources.auditd`) produce them; the mapping
(:mod:`credwatch.normalize.auditd`) consumes them. They live here, below both, so
that normalize never imports sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class AuditRecord:
    """One parsed audit.log line."""

    type: str
    node: str | None
    stamp: str  #: the text inside ``audit(…)`` before the serial, e.g. ``1796124794.651``
    serial: int
    time: datetime
    fields: list[tuple[str, bytes]]  #: raw tokens (quotes/hex kept), in log order
    enriched: dict[str, str]  #: ENRICHED interpretations (``UID`` → ``root``)
    text: str  #: ``type=… msg=audit(…): …`` without node prefix and enrichment
    path: str
    lineno: int
    interpreted: bool = False  #: an ``ausearch -i`` line: values are already decoded
    truncated: bool = False  #: the line ended inside a quoted value

    def get(self, key: str) -> bytes | None:
        """The first raw token for ``key``, or None."""
        for k, v in self.fields:
            if k == key:
                return v
        return None


@dataclass(slots=True)
class AuditEvent:
    """All records of one ``audit(<stamp>:<serial>)``, in arrival order."""

    node: str | None
    stamp: str
    serial: int
    time: datetime
    records: list[AuditRecord]
    path: str
    lineno: int  #: line of the first record seen

    @property
    def id(self) -> str:
        """Stable identity ``node:stamp:serial``: the same event read twice has the same id."""
        return f"{self.node or ''}:{self.stamp}:{self.serial}"

    @property
    def interpreted(self) -> bool:
        """True when the records came from ``ausearch -i`` output."""
        return any(r.interpreted for r in self.records)

    def of_type(self, rtype: str) -> list[AuditRecord]:
        """The records of one type, in log order."""
        return [r for r in self.records if r.type == rtype]

    def first(self, rtype: str) -> AuditRecord | None:
        """The first record of one type, or None."""
        for r in self.records:
            if r.type == rtype:
                return r
        return None
