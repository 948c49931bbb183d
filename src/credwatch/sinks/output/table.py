"""A readable terminal table of alerts (rich), grouped by rule, that fits the terminal.

Columns are what an analyst triages first: priority, host, user, process, the
argument that matched and the reason (the credential it names, else the clause
that matched). On terminals of :data:`WIDE` columns or more, the event time, the
parent process and the alert id (for ``alerts show``) are shown too. Every value comes from the event and is
attacker-chosen: cells are :func:`terminal_cell` texts (control characters
escaped, never parsed as rich markup).

Only the few strings a row shows are kept per alert, not the alert document,
so a hunt with many alerts does not hold every document until the end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from credwatch.alerts.display import terminal_cell
from credwatch.normalize.flatten import get_values

if TYPE_CHECKING:
    from rich.table import Table

_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
#: From this many columns on, the table adds the event time and the parent process.
WIDE = 120
#: Width used when the output is not a terminal (a file or a pipe) and none was given.
DEFAULT_WIDTH = 160


def first_value(doc: Mapping[str, Any], field: str) -> str:
    """The first value of ``field`` in ``doc`` as text (flat key or nested), '' when absent."""
    if field in doc:
        value = doc[field]
        if isinstance(value, list):
            return str(value[0]) if value else ""
        return "" if value is None else str(value)
    vals = get_values(doc, field)
    return str(vals[0]) if vals else ""


_first = first_value


def _explain(alert: Mapping[str, Any]) -> list[Any]:
    explain = alert["credwatch.explain"] if "credwatch.explain" in alert else get_values(
        alert, "credwatch.explain")
    return explain if isinstance(explain, list) else []


def matched_path(alert: Mapping[str, Any]) -> str:
    """The argument that satisfied a path clause, from the explain block."""
    best = ""
    for hit in _explain(alert):
        if isinstance(hit, dict) and hit.get("field") == "process.args":
            value = str(hit.get("value", ""))
            # Prefer a value that looks like a path over a tool name like `cat`.
            if "/" in value or not best:
                best = value
    return best


def matched_value(alert: Mapping[str, Any]) -> str:
    """What matched: the argument for path rules, else the first value a clause matched."""
    path = matched_path(alert)
    if path:
        return path
    for hit in reversed(_explain(alert)):
        if isinstance(hit, dict) and hit.get("value") is not None:
            return str(hit["value"])
    return ""


def alert_reason(alert: Mapping[str, Any]) -> str:
    """Why it alerted, short: the credential kinds triage found, else the matching clause."""
    creds = alert.get("credwatch.triage.credentials")
    if creds is None:
        creds = get_values(alert, "credwatch.triage.credentials")
    labels = []
    for cred in creds if isinstance(creds, list) else []:
        if isinstance(cred, dict) and cred.get("label") and cred["label"] not in labels:
            labels.append(str(cred["label"]))
    if labels:
        return "; ".join(labels)
    clauses = [str(h.get("clause")) for h in _explain(alert)
               if isinstance(h, dict) and h.get("clause") and h.get("field") == "process.args"]
    if not clauses:
        clauses = [str(h.get("clause")) for h in _explain(alert)
                   if isinstance(h, dict) and h.get("clause")]
    return clauses[-1] if clauses else first_value(alert, "kibana.alert.rule.name")


def alert_priority(alert: Mapping[str, Any]) -> str:
    """The triage priority (P1..P4), else the severity."""
    return first_value(alert, "credwatch.triage.priority") or first_value(alert, "kibana.alert.severity")


def alert_time(alert: Mapping[str, Any]) -> str:
    """When the event happened (the alert's original time), else when the alert was made."""
    return first_value(alert, "kibana.alert.original_time") or first_value(alert, "@timestamp")


@dataclass(frozen=True, slots=True)
class Row:
    """The strings one table row shows (the alert itself is not kept)."""

    rule: str
    severity: str
    priority: str
    time: str
    host: str
    user: str
    process: str
    matched: str
    reason: str
    parent: str
    uuid: str

    @classmethod
    def of(cls, alert: Mapping[str, Any]) -> Row:
        """The row for ``alert``."""
        return cls(
            rule=first_value(alert, "kibana.alert.rule.name"),
            severity=first_value(alert, "kibana.alert.severity"),
            priority=alert_priority(alert),
            time=alert_time(alert),
            host=first_value(alert, "host.name"),
            user=first_value(alert, "user.name") or first_value(alert, "user.id"),
            process=first_value(alert, "process.name") or first_value(alert, "process.executable"),
            matched=matched_value(alert),
            reason=alert_reason(alert),
            parent=first_value(alert, "process.parent.executable")
            or first_value(alert, "process.parent.name"),
            uuid=first_value(alert, "kibana.alert.uuid"),
        )

    def order(self) -> tuple[str, int, str]:
        """Most urgent first (P1 before P4, critical before low), then by event time."""
        return (self.priority or "~", _SEVERITY_RANK.get(self.severity, 9), self.time)


class TableSink:
    """Collect rows and print one table per rule on close.

    ``width`` is the terminal's width (:data:`DEFAULT_WIDTH` when not a
    terminal); ``limit`` shows only the first ``limit`` rows, most urgent first,
    and says "N of M".
    """

    def __init__(self, stream: IO[str], *, color: bool = True, width: int | None = None,
                 limit: int | None = None) -> None:
        # rich is imported by the table alone: other outputs start ~30 ms faster without it.
        from rich.console import Console

        self.width = width or (None if color else DEFAULT_WIDTH)
        self.console = Console(file=stream, force_terminal=color, no_color=not color,
                               width=self.width, highlight=False)
        self.rows: list[Row] = []
        self.limit = limit

    def write(self, alert: Mapping[str, Any]) -> None:
        self.rows.append(Row.of(alert))

    def close(self) -> None:
        total = len(self.rows)
        rows = sorted(self.rows, key=Row.order)
        if self.limit is not None:
            rows = rows[: self.limit]
        by_rule: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            by_rule[row.rule].append(row)
        wide = (self.console.width or 0) >= WIDE
        for name, group in by_rule.items():
            self.console.print(self._table(name, group, wide))
        if not total:
            self.console.print("No alerts.")
        elif len(rows) < total:
            self.console.print(f"{len(rows)} of {total} alerts shown (--limit {self.limit}).")
        self.console.file.flush()

    @staticmethod
    def _table(name: str, rows: list[Row], wide: bool) -> Table:
        from rich import box
        from rich.table import Table

        sev = rows[0].severity
        table = Table(title=terminal_cell(f"{name} [{sev}] — {len(rows)} alert(s)"),
                      title_style=_SEVERITY_STYLE.get(sev, "bold"), box=box.SIMPLE_HEAD,
                      expand=False, pad_edge=False)
        columns = ["prio", *(["time"] if wide else []), "host", "user", "process", "matched",
                   "reason", *(["parent", "id"] if wide else [])]
        for col in columns:
            table.add_column(col, overflow="fold")
        for r in rows:
            cells = [r.priority, *([r.time] if wide else []), r.host, r.user, r.process, r.matched,
                     r.reason, *([r.parent, r.uuid[:12]] if wide else [])]
            table.add_row(*(terminal_cell(v) for v in cells))
        return table
