"""``--format timeline``: one CSV line per alert, ordered by the event's time.

The columns are the ones timeline tools import. Timesketch's CSV importer
requires ``message``, ``datetime`` (ISO 8601) and ``timestamp_desc``, and takes
``timestamp`` (epoch microseconds) and any other column as attributes; the rest
(host, user, process, matched argument, rule, severity, priority) are what
Hayabusa's and chainsaw's CSV timelines show per detection. Alerts are sorted by
the time of the event that triggered them (``kibana.alert.original_time``), not
by when credwatch made the alert. Cells are defused against spreadsheet formula
injection like ``--format csv`` (arguments are attacker-chosen).

Only the row strings are kept until the end (sorting needs every row), not the
alert documents.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from typing import IO, Any

from credwatch.normalize.flatten import get_values
from credwatch.sinks.output.fields import csv_cell
from credwatch.sinks.output.rows import Row, first_value
from credwatch.timemath import parse_instant

COLUMNS = ("datetime", "timestamp", "timestamp_desc", "message", "host", "user", "process",
           "command_line", "matched_arg", "reason", "rule", "severity", "priority", "alert_id")
TIMESTAMP_DESC = "Process Exec"


def command_line(alert: Mapping[str, Any]) -> str:
    """The command line: ``process.command_line``, else the arguments joined by spaces."""
    text = first_value(alert, "process.command_line")
    if text:
        return text
    args = alert.get("process.args")
    if args is None:
        args = get_values(alert, "process.args")
    return " ".join(str(a) for a in args) if isinstance(args, list) else str(args or "")


def _sort_key(ms: int | None, time_text: str) -> tuple[int, int, str]:
    # Events without a parseable time go last, in input order among themselves.
    return (0, ms, time_text) if ms is not None else (1, 0, time_text)


class TimelineSink:
    """Collect alerts as timeline rows and write them sorted by event time on close."""

    def __init__(self, stream: IO[str], *, owns: bool = False) -> None:
        self.stream = stream
        self.owns = owns
        self.rows: list[tuple[tuple[int, int, str], int, list[str]]] = []

    def write(self, alert: Mapping[str, Any]) -> None:
        row = Row.of(alert)
        ms = parse_instant(row.time) if row.time else None
        command = command_line(alert)
        # What a timeline reader scans for: who ran what where, and why it matters.
        message = (f"{row.user or '?'} ran {command or row.process or '?'} on {row.host or '?'}: "
                   f"{row.reason} [{row.rule}]")
        cells = [row.time, "" if ms is None else str(ms * 1000), TIMESTAMP_DESC, message, row.host,
                 row.user, row.process, command, row.matched, row.reason, row.rule, row.severity,
                 row.priority, row.uuid]
        self.rows.append((_sort_key(ms, row.time), len(self.rows), cells))

    def close(self) -> None:
        writer = csv.writer(self.stream, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for _key, _n, cells in sorted(self.rows, key=lambda r: (r[0], r[1])):
            writer.writerow([csv_cell(c) for c in cells])
        self.stream.flush()
        if self.owns:
            self.stream.close()
