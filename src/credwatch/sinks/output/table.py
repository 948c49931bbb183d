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
from typing import IO, TYPE_CHECKING, Any

from credwatch.alerts.display import terminal_cell
from credwatch.sinks.output.rows import Row, matched_path

__all__ = ["DEFAULT_WIDTH", "WIDE", "TableSink", "matched_path"]

if TYPE_CHECKING:
    from rich.table import Table

_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
#: From this many columns on, the table adds the event time and the parent process.
WIDE = 120
#: Width used when the output is not a terminal (a file or a pipe) and none was given.
DEFAULT_WIDTH = 160


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
