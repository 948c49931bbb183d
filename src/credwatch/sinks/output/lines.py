"""One line per alert, written as it comes: ``watch``'s table on a terminal.

The table of ``scan`` needs the whole run; a live watch cannot wait for it.
Each alert becomes one row of fixed columns (time, priority, host, user,
process, matched argument, reason), a header comes first, and every line is cut
to the terminal's width. Values are attacker-chosen: each is escaped with
:func:`~credwatch.alerts.display.terminal_text` before it is measured and cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from credwatch.alerts.display import terminal_text
from credwatch.sinks.output.rows import Row

#: Column widths (in terminal cells) of the fixed columns; the last two share the rest.
_FIXED = (("time", 8), ("prio", 4), ("host", 14), ("user", 8), ("process", 10))
DEFAULT_WIDTH = 120


def _fit(text: str, width: int) -> str:
    """``text`` padded or cut to exactly ``width`` cells (cut text ends with '…')."""
    from rich.cells import cell_len, set_cell_size  # only when lines are drawn (start-up)

    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, max(width - 1, 0)) + "…" if width else ""


class LineSink:
    """Write each alert as one line of at most ``width`` cells, flushed at once."""

    def __init__(self, stream: IO[str], *, width: int | None = None, owns: bool = False) -> None:
        self.stream = stream
        self.width = max(width or DEFAULT_WIDTH, 40)
        self.owns = owns
        self._header = False

    def _line(self, cells: list[str]) -> str:
        parts = [_fit(terminal_text(c), w) for c, (_n, w) in zip(cells, _FIXED, strict=False)]
        used = sum(w + 1 for _n, w in _FIXED)
        rest = max(self.width - used, 2)
        matched_w = rest // 2
        parts.append(_fit(terminal_text(cells[5]), matched_w))
        parts.append(_fit(terminal_text(cells[6]), rest - matched_w - 1).rstrip())
        return " ".join(parts).rstrip()

    def write(self, alert: Mapping[str, Any]) -> None:
        if not self._header:
            self.stream.write(self._line([n for n, _w in _FIXED] + ["matched", "reason"]) + "\n")
            self._header = True
        row = Row.of(alert)
        clock = row.time[11:19] if len(row.time) >= 19 else row.time
        self.stream.write(self._line([clock, row.priority, row.host, row.user, row.process,
                                      row.matched, row.reason]) + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
        if self.owns:
            self.stream.close()
