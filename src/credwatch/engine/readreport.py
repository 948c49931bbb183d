"""How much one execution of ``run --engine duckdb|spark`` read (printed, and stored with the run).

Kept apart from :mod:`credwatch.engine.lake_plan` so that the run history
(:mod:`credwatch.engine.runs`) can store and load it without importing anything
an engine needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["COUNTS", "ReadReport"]

#: The figures, in the order they are stored and shown.
COUNTS = ("partitions_read", "partitions_skipped", "files_read", "files_skipped",
          "row_groups_read", "row_groups_total", "rows", "rows_scanned")


@dataclass
class ReadReport:
    """How much an execution (or a whole run) read.

    ``row_groups_read``, ``row_groups_total`` and ``rows_scanned`` are None when the
    engine does not say (Spark): unknown, which is not the same as zero.
    """

    engine: str = "duckdb"
    partitions_read: int = 0
    partitions_skipped: int = 0
    files_read: int = 0
    files_skipped: int = 0
    row_groups_read: int | None = 0
    row_groups_total: int | None = 0
    #: Rows in the execution's span that the engine returned.
    rows: int = 0
    #: Rows the engine had to look at (DuckDB: the rows of the row groups it read, or
    #: every row of an NDJSON file).
    rows_scanned: int | None = 0

    @classmethod
    def start(cls, engine: str, *, reports_scans: bool) -> ReadReport:
        """An empty report for ``engine`` (row groups and rows scanned unknown unless it reports them)."""
        if reports_scans:
            return cls(engine)
        return cls(engine, row_groups_read=None, row_groups_total=None, rows_scanned=None)

    def scanned(self, rows: int) -> None:
        """Count ``rows`` more rows scanned (kept unknown when unknown)."""
        if self.rows_scanned is not None:
            self.rows_scanned += rows

    def row_group(self, *, read: bool, rows: int) -> None:
        """Count one more row group; a group read adds its rows to the rows scanned."""
        if self.row_groups_total is not None:
            self.row_groups_total += 1
        if read:
            if self.row_groups_read is not None:
                self.row_groups_read += 1
            self.scanned(rows)

    def add(self, other: ReadReport) -> None:
        """Add ``other``'s counts to these (unknown on either side stays unknown)."""
        for name in COUNTS:
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, None if mine is None or theirs is None else mine + theirs)

    def text(self) -> str:
        """One line for the run summary."""
        out = (f"{self.files_read} file(s) read, {self.files_skipped} skipped; "
               f"{self.partitions_read} day partition(s) read, {self.partitions_skipped} skipped")
        if self.row_groups_total:
            out += f"; {self.row_groups_read} of {self.row_groups_total} row group(s) read"
        if self.rows_scanned is None:
            out += "; rows scanned not reported"
        elif self.rows_scanned:
            out += f"; {self.rows_scanned} row(s) scanned"
        return out + f"; {self.rows} row(s) in the windows"

    def to_json(self) -> dict[str, Any]:
        """JSON form (``credwatch runs --format json``): the engine and every figure."""
        return {"engine": self.engine, **{name: getattr(self, name) for name in COUNTS}}
