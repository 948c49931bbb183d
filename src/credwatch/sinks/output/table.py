"""A readable terminal table of alerts (rich), grouped by rule.

Columns are what an analyst triages first: time, host, user, process, the
credential path that matched, and the parent process. Every value comes from
the event and is attacker-chosen: cells are :func:`terminal_cell` texts
(control characters escaped, never parsed as rich markup).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from credwatch.alerts.display import terminal_cell
from credwatch.normalize.flatten import get_values

_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def _first(doc: Mapping[str, Any], field: str) -> str:
    vals = get_values(doc, field)
    return str(vals[0]) if vals else ""


def matched_path(alert: Mapping[str, Any]) -> str:
    """The argument that satisfied a path clause, from the explain block."""
    explain = get_values(alert, "credwatch.explain") if "credwatch.explain" not in alert else alert["credwatch.explain"]
    best = ""
    for hit in explain if isinstance(explain, list) else []:
        if isinstance(hit, dict) and hit.get("field") == "process.args":
            value = str(hit.get("value", ""))
            # Prefer a value that looks like a path over a tool name like `cat`.
            if "/" in value or not best:
                best = value
    return best


class TableSink:
    """Collect alerts and print one table per rule on close."""

    def __init__(self, stream: IO[str], *, color: bool = True, width: int | None = None) -> None:
        self.console = Console(file=stream, force_terminal=color, no_color=not color,
                               width=width or (None if color else 160), highlight=False)
        self.by_rule: dict[str, list[Mapping[str, Any]]] = defaultdict(list)

    def write(self, alert: Mapping[str, Any]) -> None:
        self.by_rule[_first(alert, "kibana.alert.rule.name")].append(alert)

    def close(self) -> None:
        for name, alerts in self.by_rule.items():
            sev = _first(alerts[0], "kibana.alert.severity")
            table = Table(title=terminal_cell(f"{name} [{sev}] — {len(alerts)} alert(s)"),
                          title_style=_SEVERITY_STYLE.get(sev, "bold"), show_lines=False,
                          expand=False)
            for col in ("time", "host", "user", "process", "credential path", "parent", "uuid"):
                table.add_column(col, overflow="fold")
            for a in sorted(alerts, key=lambda d: _first(d, "kibana.alert.original_time")):
                table.add_row(*(terminal_cell(v) for v in (
                    _first(a, "kibana.alert.original_time") or _first(a, "@timestamp"),
                    _first(a, "host.name"),
                    _first(a, "user.name") or _first(a, "user.id"),
                    _first(a, "process.executable") or _first(a, "process.name"),
                    matched_path(a),
                    _first(a, "process.parent.executable") or _first(a, "process.parent.name"),
                    _first(a, "kibana.alert.uuid")[:12],
                )))
            self.console.print(table)
        if not self.by_rule:
            self.console.print("No alerts.")
