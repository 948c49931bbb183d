"""``scan --engine spark``: the rules' filter runs in Spark, alerts are built as always.

Parquet and NDJSON (:mod:`credwatch.engine.spark_ndjson`: every scalar as its JSON
text, exact line numbers); other inputs are refused (``credwatch convert`` them).
Parquet is read with ``spark.read.parquet`` (schemas merged), every rule's KQL is
compiled by the Spark SQL target (:mod:`credwatch.backends.spark`) against that
schema and the rules are OR-ed into one filter; Spark evaluates it on its
executors and only matching rows travel back to the driver
(``toLocalIterator``), where they become the original records
(:func:`credwatch.engine.convert.record_from_row`) and go through the same
:class:`~credwatch.engine.scan.Scanner` as ``--engine python``: same index
patterns, same alert documents and ``kibana.alert.uuid``.

Paths with a scheme (``s3a://``, ``gs://``, ``hdfs://``) are handed to Spark as
they are (Parquet, or NDJSON with ``--input-format ndjson``); local paths are
expanded like the Python reader's (folders, ``--glob``) and classified by content.
Rows come back ordered by file path and row position in the file.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from credwatch.backends.spark import compile_spark, require_pyspark, schema_of
from credwatch.backends.sqlschema import SType
from credwatch.engine.convert import ENVELOPE_FIELDS, META_PREFIX, day_name, record_from_row
from credwatch.engine.eventtime import TimeFields
from credwatch.engine.lake_plan import (
    JAVA_HINT,
    Engine,
    LakeFile,
    ReadReport,
    check_rules,
    rules_query,
    time_names,
    time_query,
)
from credwatch.engine.readpos import Span
from credwatch.engine.scan import CompiledRule, Scanner
from credwatch.engine.spark_ndjson import ndjson_frame
from credwatch.errors import ConfigError, SourceError, UnsupportedError
from credwatch.sources.detect import prepare
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.inputs import expand_inputs
from credwatch.sources.read import open_binary
from credwatch.sources.record import Record

DEFAULT_MASTER = "local[*]"
_PARQUET_MAGIC = b"PAR1"
_META_COLS = ("_cw_event", "_cw_source", "_cw_line", "_cw_index", "_cw_id", "_cw_version")


def session(master: str | None) -> Any:
    """The Spark session: ``master`` if given, else spark-submit's, else ``local[*]``.

    Raises :class:`ConfigError` naming the install command when pyspark is missing
    and saying so when Java cannot be started.
    """
    sql = require_pyspark()
    builder = sql.SparkSession.builder.appName("credwatch-scan")
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # launched by spark-submit: it set the master
    if master or not submitted:
        builder = builder.master(master or DEFAULT_MASTER)
    try:
        spark = (builder.config("spark.sql.session.timeZone", "UTC")
                 .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                 .getOrCreate())
    except Exception as exc:
        raise ConfigError(f"Spark could not start ({str(exc).splitlines()[0] if str(exc) else exc}); "
                          f"it needs Java 17+: {JAVA_HINT}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@dataclass
class SparkInputs:
    """What ``--engine spark`` reads: Parquet and NDJSON files or URLs."""

    parquet: list[str] = field(default_factory=list)
    ndjson: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.parquet or self.ndjson)


def _local_kind(path: str) -> str:
    """``parquet`` or ``ndjson`` for a local file (anything else raises :class:`UnsupportedError`)."""
    with open(path, "rb") as fh:
        if fh.read(4) == _PARQUET_MAGIC:
            return "parquet"
    try:
        stream = open_binary(path)
        try:
            _s, _skipped, fmt = prepare(stream, "auto")
        finally:
            stream.close()
    except (SourceError, OSError, EOFError, zlib.error):
        return "ndjson"  # reading it fails again in Spark, and is reported then
    if fmt in ("ndjson", "empty"):
        return "ndjson"
    raise UnsupportedError(f"{path}: {fmt} input is not supported by --engine spark; run "
                           "`credwatch convert` to Parquet or NDJSON first, or use --engine python")


def spark_paths(paths: Sequence[str], diag: Diagnostics, glob: str | None = None,
                input_format: str = "auto") -> SparkInputs:
    """Local files behind ``paths`` by kind (others raise); URLs as they are.

    A URL is Parquet (a file or a folder of them) unless ``--input-format ndjson`` says
    it is NDJSON: Spark cannot tell without reading it.
    """
    out = SparkInputs()
    local: list[str] = []
    for p in paths:
        if "://" in p:
            (out.ndjson if input_format == "ndjson" else out.parquet).append(p)
        else:
            local.append(p)
    for inp in expand_inputs(local, diag, glob):
        if not inp.regular:
            raise UnsupportedError(f"{inp.source}: --engine spark reads files, not standard input or pipes")
        kind = _local_kind(inp.path)
        if kind == "ndjson" and os.path.getsize(inp.path) == 0:
            diag.files += 1
            continue  # nothing to read (Spark has no schema for it)
        (out.parquet if kind == "parquet" else out.ndjson).append(inp.path)
    return out


class SparkScan:
    """Run ``scanner``'s rules in Spark over Parquet and NDJSON; yield only the matching records."""

    def __init__(self, scanner: Scanner, paths: SparkInputs, master: str | None = None) -> None:
        self.scanner = scanner
        self.paths = paths
        self.master = master

    def _where(self, schema: dict[str, SType]) -> str:
        now = self.scanner.clock()
        return " OR ".join(f"({compile_spark(c.matcher.ast, schema, now=now)})"
                           for c in self.scanner.rules) or "FALSE"

    def _checked(self, rec: Record, diag: Diagnostics) -> bool:
        if any(c.matcher.matches(rec.event) for c in self.scanner.rules):
            return True
        diag.warn("engine-disagreement", rec.source, rec.line,
                  "Spark matched a row the Python evaluator does not")
        return False

    def records(self, diag: Diagnostics) -> Iterator[Record]:
        """The matching records (the scanner counts them; the other rows are added to ``diag.events``)."""
        if not self.paths:
            return
        spark = session(self.master)
        if self.paths.parquet:
            yield from self._parquet(spark, diag)
        if self.paths.ndjson:
            yield from self._ndjson(spark, diag)

    def _parquet(self, spark: Any, diag: Diagnostics) -> Iterator[Record]:
        funcs = require_pyspark().functions
        df = spark.read.option("mergeSchema", "true").parquet(
            *(p if "://" in p else os.path.abspath(p) for p in self.paths.parquet))
        schema = {k: v for k, v in schema_of(df).items() if not k.startswith(META_PREFIX)}
        where = self._where(schema)
        diag.files += len(self.paths.parquet)
        total = df.count()
        own = "_cw_event" in df.columns
        cols = [funcs.col(c) for c in (_META_COLS if own else df.columns)]
        matched = (df.filter(funcs.expr(where))
                   .select(*cols, funcs.col("_metadata.file_path").alias("__cw_file"),
                           funcs.col("_metadata.row_index").alias("__cw_row"))
                   .orderBy("__cw_file", "__cw_row"))
        yielded = 0
        for row in matched.toLocalIterator():
            values = row.asDict(recursive=True)
            source, line = values.pop("__cw_file"), int(values.pop("__cw_row")) + 1
            rec = record_from_row(values, source, line)
            if self._checked(rec, diag):
                yielded += 1
                yield rec
        diag.events += max(total - yielded, 0)

    def _ndjson(self, spark: Any, diag: Diagnostics) -> Iterator[Record]:
        frame = ndjson_frame(spark, self.paths.ndjson)
        diag.files += len(self.paths.ndjson)
        if "_source" in frame.schema or "hits" in frame.schema:
            raise UnsupportedError("Elasticsearch hits are not supported by --engine spark; "
                                   "run `credwatch convert` first, or use --engine python")
        yielded = 0
        rows = frame.filtered(self._where(frame.schema)).toLocalIterator()
        for rec, _row in frame.records(rows, diag):
            if self._checked(rec, diag):
                yielded += 1
                yield rec
        diag.events += max(frame.events - yielded, 0)


class SparkRunEngine(Engine):
    """The Spark side of ``run --engine spark``: each execution's span as a Spark filter.

    Local files come pruned by :class:`~credwatch.engine.lake_run.LakeEventSource`; a
    URL (``s3a://``...) is read by Spark, whose partition discovery gives a ``day``
    column that is filtered (Spark prunes those folders) when the rule is timed by
    ``@timestamp`` alone. The envelope filter on ``_cw_t0``/``_cw_t1`` is pushed to
    the Parquet reader (row-group statistics) as in DuckDB.
    """

    name = "spark"
    #: Spark does not say which row groups its Parquet reader skipped nor how many rows it
    #: looked at: those figures are stored as unknown (null), not as zero.
    reports_scans = False

    def __init__(self, rules: Sequence[CompiledRule], master: str | None = None) -> None:
        check_rules(rules, self.name)
        self.query = rules_query(rules)
        self.master = master
        self._spark: Any = None

    def rows(self, files: Sequence[LakeFile], fields: TimeFields, span: Span,
             report: ReadReport, diag: Diagnostics) -> Iterator[tuple[Record, bool]]:
        """See :meth:`credwatch.engine.lake_run.Engine.rows`."""
        paths: list[str] = []
        ndjson: list[str] = []
        for f in files:
            if "://" in f.path:
                paths.append(f.path)
                continue
            try:
                kind = _local_kind(f.path)
            except UnsupportedError as exc:
                diag.fail(f.path, str(exc).split(": ", 1)[-1])
                continue
            if kind == "ndjson" and os.path.getsize(f.path) == 0:
                continue
            (paths if kind == "parquet" else ndjson).append(f.path)
        if not paths and not ndjson:
            return
        if self._spark is None:
            self._spark = session(self.master)
        for group, reader in ((paths, self._rows), (ndjson, self._ndjson_rows)):
            if not group:
                continue
            try:
                yield from reader(group, fields, span, report, diag)
            except Exception as exc:  # Spark's errors are Java's; one line each, never a traceback
                text = str(exc).strip().splitlines()
                diag.fail(group[0] if len(group) == 1 else f"{len(group)} inputs",
                          f"Spark could not read it: {text[0] if text else type(exc).__name__}")

    def _ndjson_rows(self, paths: list[str], fields: TimeFields, span: Span, report: ReadReport,
                     diag: Diagnostics) -> Iterator[tuple[Record, bool]]:
        funcs = require_pyspark().functions
        frame = ndjson_frame(self._spark, paths)
        types = dict.fromkeys(time_names(fields), "date")
        time_sql = compile_spark(time_query(fields, span), frame.schema, types)
        match = funcs.expr(f"COALESCE(({compile_spark(self.query, frame.schema)}), FALSE)")
        rows = (frame.frame.filter(funcs.expr(f"COALESCE(({time_sql}), FALSE)"))
                .select("__cw_text", "__cw_file", "__cw_split", "__cw_id", match.alias("__cw_m"))
                .orderBy("__cw_file", "__cw_split", "__cw_id"))
        for rec, row in frame.records(rows.toLocalIterator(), diag):
            report.rows += 1
            yield rec, bool(row["__cw_m"])

    def _rows(self, paths: list[str], fields: TimeFields, span: Span, report: ReadReport,
              _diag: Diagnostics) -> Iterator[tuple[Record, bool]]:
        funcs = require_pyspark().functions
        df = self._spark.read.option("mergeSchema", "true").parquet(
            *(p if "://" in p else os.path.abspath(p) for p in paths))
        schema = {k: v for k, v in schema_of(df).items() if not k.startswith(META_PREFIX)}
        names = time_names(fields)
        if "_cw_t0" in df.columns and names <= set(ENVELOPE_FIELDS):
            df = df.filter((funcs.col("_cw_t1") >= span.lo) & (funcs.col("_cw_t0") <= span.hi))
        else:
            types = dict.fromkeys(names, "date")
            df = df.filter(funcs.expr(compile_spark(time_query(fields, span), schema, types)))
        if "day" in df.columns and names == {"@timestamp"}:
            lo, hi = day_name(span.lo - 86_400_000), day_name(span.hi + 86_400_000)
            df = df.filter(funcs.col("day").between(lo, hi))  # Spark prunes the day= folders
        own = "_cw_event" in df.columns
        cols = [funcs.col(c) for c in (_META_COLS if own else df.columns)]
        match = funcs.expr(f"COALESCE(({compile_spark(self.query, schema)}), FALSE)")
        rows = (df.select(*cols, match.alias("__cw_m"),
                          funcs.col("_metadata.file_path").alias("__cw_file"),
                          funcs.col("_metadata.row_index").alias("__cw_row"))
                .orderBy("__cw_file", "__cw_row"))
        for row in rows.toLocalIterator():
            values = row.asDict(recursive=True)
            could = bool(values.pop("__cw_m"))
            source, line = values.pop("__cw_file"), int(values.pop("__cw_row")) + 1
            report.rows += 1
            yield record_from_row(values, source, line), could
