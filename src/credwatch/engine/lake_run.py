"""``run --engine duckdb|spark``: each execution's time span is pushed into the engine.

The scheduler (:mod:`credwatch.engine.schedule`) and one execution
(:mod:`credwatch.engine.execute`: windows, dedup, ``max_signals``, exceptions,
suppression, the store) are the in-process run's own code; only the
:class:`~credwatch.engine.window.EventSource` differs. :class:`LakeEventSource`
answers the execution's one question, "the events whose time is in this span,
and whether each can match", by asking the engine:

* **partition pruning**: a file under a Hive ``day=YYYY-MM-DD`` folder is only
  read when the span can hold one of its events. Folders written by ``credwatch
  convert --partition-by day`` carry a summary (:data:`~credwatch.engine.convert.SPAN_FILE`:
  the envelope of the partition's ``@timestamp`` and ``event.ingested`` times), so
  the test is exact for rules timed by those fields (``timestamp_override`` with or
  without its fallback). Without a summary, only rules timed by ``@timestamp``
  alone prune, by the folder's date with a day's margin either side (another
  writer may have used local dates). ``day=unknown`` holds events without a usable
  ``@timestamp``; such an event is in no window (Kibana's range query never
  matches a missing time field), so that folder is skipped as well;
* **row-group pruning**: credwatch's Parquet has ``_cw_t0``/``_cw_t1`` (the row's
  time envelope, epoch ms): the engine's filter ``_cw_t1 >= lo AND _cw_t0 <= hi``
  is checked against each row group's statistics, so groups outside the span are
  not read. The ISO text of ``@timestamp`` is kept as written (a query on it
  must see what the event holds), so it is not what pruning uses;
* **the time filter**: other inputs (NDJSON, others' Parquet) get the span as a
  KQL range on the rule's time fields, compiled by the engine's SQL target;
* **the rules' filter** is computed by the engine for the rows of the span; the
  Python matcher only sees the rows it matched (``could_match``), as it only sees
  lines that pass the literal prefilter in the in-process run.

The rows of the span come back with their events (``_cw_event``, or the NDJSON
line decoded by the Python reader), their exact times are taken by the same
code as in-process, and the execution counts, sorts and caps them as always.
:attr:`LakeEventSource.last_report` says how much the last execution read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from credwatch.backends.duckdb import compile_duckdb, connect, read_sql, schema_of
from credwatch.backends.sqlschema import SType
from credwatch.engine.convert import (
    ENVELOPE_FIELDS,
    META_PREFIX,
    record_from_row,
)
from credwatch.engine.eventtime import TimedEvent, TimeFields, event_times
from credwatch.engine.lake import (
    FETCH_ROWS,
    INPUT_ERRORS,
    _is_empty,
    _quote,
    classify,
    decode_rows,
    input_failure,
    matching_rows,
)
from credwatch.engine.lake_plan import (
    META_COLS,
    Engine,
    LakeFile,
    PartitionSummary,
    check_rules,
    day_of_path,
    keeps,
    rules_query,
    time_names,
    time_query,
)
from credwatch.engine.readpos import Span
from credwatch.engine.readreport import ReadReport
from credwatch.engine.scan import CompiledRule
from credwatch.engine.window import EventSource
from credwatch.engine.window_reader import Yielded
from credwatch.errors import UnsupportedError
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.inputs import Input, expand_inputs
from credwatch.sources.record import Record

__all__ = ["DuckDbEngine", "LakeEventSource", "ReadReport"]

# A file in a run may also hold a column type the SQL plan cannot use: that input alone is lost.
_RUN_INPUT_ERRORS: tuple[type[BaseException], ...] = (*INPUT_ERRORS, UnsupportedError)

@dataclass
class LakeEventSource(EventSource):
    """An :class:`EventSource` whose reading, time filter and rule filter run in DuckDB or Spark."""

    engine: Engine | None = None
    #: What the last execution read, and every execution together.
    last_report: ReadReport = field(default_factory=ReadReport)
    total_report: ReadReport = field(default_factory=ReadReport)
    _files: list[LakeFile] = field(default_factory=list)
    _urls: list[str] = field(default_factory=list)
    _summaries: dict[str, PartitionSummary | None] = field(default_factory=dict)

    def refresh(self) -> bool:
        """List the inputs again (stat only: nothing is opened until an execution needs it)."""
        diag = Diagnostics()
        local = [p for p in self.paths if "://" not in p]
        self._urls = [p for p in self.paths if "://" in p]
        files: list[LakeFile] = []
        summaries: dict[str, PartitionSummary | None] = {}
        for inp in expand_inputs(local, diag, self.glob):
            if inp.path == "-" or not inp.regular:
                raise UnsupportedError(f"{inp.source}: run --engine {self.engine_name} reads regular "
                                       "files, not standard input or pipes")
            day = day_of_path(inp.path)
            folder = os.path.dirname(inp.path)
            if day is not None and folder not in summaries:
                summaries[folder] = PartitionSummary.load(folder)
            files.append(LakeFile(inp.path, day, summaries.get(folder) if day else None))
        self._missing = list(diag.failed)
        changed = [f.path for f in files] != [f.path for f in self._files]
        self._files = sorted(files, key=lambda f: f.path)
        self._summaries = summaries
        return changed

    @property
    def engine_name(self) -> str:
        """``duckdb`` or ``spark``."""
        return self.engine.name if self.engine is not None else "duckdb"

    def close(self) -> None:
        """Release the engine."""
        if self.engine is not None:
            self.engine.close()

    def events(self, fields: TimeFields, span: Span,
               literals: frozenset[str] | None = None) -> Iterator[Yielded]:
        """Every event with a time in ``span`` the engine returns, with the rules' verdict."""
        assert self.engine is not None
        self.failures = list(self._missing)
        report = ReadReport.start(self.engine_name, reports_scans=self.engine.reports_scans)
        self.last_report = report  # this execution's, even if reading stops half-way
        kept = [f for f in self._files if keeps(f, fields, span)]
        report.files_read, report.files_skipped = len(kept), len(self._files) - len(kept)
        days_all = {os.path.dirname(f.path) for f in self._files if f.day}
        days_read = {os.path.dirname(f.path) for f in kept if f.day}
        report.partitions_read, report.partitions_skipped = len(days_read), len(days_all - days_read)
        ranks = {f.path: i for i, f in enumerate(self._files)}
        diag = Diagnostics()
        try:
            for rec, could in self.engine.rows(kept + [LakeFile(u, None, None) for u in self._urls],
                                               fields, span, report, diag):
                primary, secondary = event_times(rec.event, fields)
                ev = TimedEvent(rec, primary, secondary, (ranks.get(rec.source, len(ranks)), rec.line, 0))
                if ev.points:
                    self.lines_read += 1
                    yield ev, could
        finally:
            self.failures.extend(diag.failed)
            diag.failed.clear()
            self.diagnostics.merge(diag)
            self.total_report.engine = report.engine
            self.total_report.add(report)

    def read_report(self) -> ReadReport | None:
        """What the last execution read (see :meth:`EventSource.read_report`)."""
        return dataclasses.replace(self.last_report)  # a copy: the next execution starts its own


class DuckDbEngine(Engine):
    """The DuckDB side of :class:`LakeEventSource` (its own threads, one in-memory connection)."""

    name = "duckdb"

    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        check_rules(rules, self.name)
        self.query = rules_query(rules)
        self.con = connect()

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def rows(self, files: Sequence[LakeFile], fields: TimeFields, span: Span,
             report: ReadReport, diag: Diagnostics) -> Iterator[tuple[Record, bool]]:
        """See :meth:`Engine.rows`."""
        for f in files:
            try:
                kind = _kind(f.path)
                reader = self._parquet if kind == "parquet" else self._ndjson
                yield from reader(f.path, fields, span, report, diag)
            except _RUN_INPUT_ERRORS as exc:
                diag.fail(f.path, input_failure(exc))

    def _wheres(self, schema: dict[str, SType], fields: TimeFields, span: Span) -> tuple[str, str]:
        types = dict.fromkeys(time_names(fields), "date")
        return (compile_duckdb(time_query(fields, span), schema, types),
                compile_duckdb(self.query, schema))

    def _parquet(self, path: str, fields: TimeFields, span: Span, report: ReadReport,
                 diag: Diagnostics) -> Iterator[tuple[Record, bool]]:
        src = (f"read_parquet({_quote(path)}, file_row_number=true, hive_partitioning=false, "
               "binary_as_string=true)")
        relation = self.con.sql(f"SELECT * FROM {src}")
        schema = {k: v for k, v in schema_of(relation).items()
                  if not k.startswith(META_PREFIX) and k != "file_row_number"}
        time_sql, match_sql = self._wheres(schema, fields, span)
        if "_cw_t0" in relation.columns and time_names(fields) <= set(ENVELOPE_FIELDS):
            # Integers with Parquet statistics: row groups outside the span are never read.
            time_sql = f'"_cw_t1" >= {int(span.lo)} AND "_cw_t0" <= {int(span.hi)}'
            self._row_groups(path, span, report)
        else:
            count = self.con.execute(f"SELECT count(*) FROM {src}").fetchone()  # the footer's count
            report.scanned(int(count[0]) if count else 0)
        own = "_cw_event" in relation.columns
        cols = ", ".join(META_COLS) if own else "* EXCLUDE (file_row_number)"
        cur = self.con.execute(
            f"SELECT {cols}, file_row_number AS __cw_row, COALESCE(({match_sql}), FALSE) AS __cw_m "
            f"FROM {src} WHERE {time_sql} ORDER BY file_row_number")
        names = [d[0] for d in cur.description or []]
        while batch := cur.fetchmany(FETCH_ROWS):
            for values in batch:
                row: dict[str, Any] = dict(zip(names, values, strict=True))
                report.rows += 1
                could = bool(row.pop("__cw_m"))
                yield record_from_row(row, path, int(row.pop("__cw_row")) + 1), could

    def _row_groups(self, path: str, span: Span, report: ReadReport) -> None:
        """Count the row groups whose ``_cw_t0``/``_cw_t1`` statistics overlap ``span``."""
        groups = self.con.execute(
            "SELECT row_group_id, max(CASE WHEN path_in_schema = '_cw_t0' THEN stats_min_value END), "
            "max(CASE WHEN path_in_schema = '_cw_t1' THEN stats_max_value END), max(row_group_num_rows) "
            f"FROM parquet_metadata({_quote(path)}) GROUP BY row_group_id").fetchall()
        for _gid, t0, t1, rows in groups:
            read = t0 is None or t1 is None or (int(t1) >= span.lo and int(t0) <= span.hi)
            report.row_group(read=read, rows=int(rows or 0))

    def _ndjson(self, path: str, fields: TimeFields, span: Span, report: ReadReport,
                diag: Diagnostics) -> Iterator[tuple[Record, bool]]:
        if _is_empty(path):
            return
        source = read_sql(path)
        schema = schema_of(self.con.sql(f"SELECT * FROM {source}"))
        if "_source" in schema or "hits" in schema:
            raise UnsupportedError("Elasticsearch hits are not supported by --engine duckdb; "
                                   "run `credwatch convert` first, or use --engine python")
        time_sql, match_sql = self._wheres(schema, fields, span)
        # Which rows are in the span, and whether the rules match each, in one pass.
        wanted, total = matching_rows(self.con, source, time_sql, also=match_sql)
        report.rows += len(wanted)
        report.scanned(total)
        for rec, row in decode_rows(path, sorted(wanted), diag):
            yield rec, wanted[row]


def _kind(path: str) -> str:
    """``parquet`` or ``ndjson`` (others raise :class:`UnsupportedError`)."""
    found = classify(Input(path, path, True, os.path.getsize(path)))
    return found.kind if found is not None else "ndjson"
