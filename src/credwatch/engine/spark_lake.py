"""``scan --engine spark``: the rules' filter runs in Spark, alerts are built as always.

Parquet only for now (``credwatch convert`` writes it from any input). The files
are read with ``spark.read.parquet`` (schemas merged), every rule's KQL is
compiled by the Spark SQL target (:mod:`credwatch.backends.spark`) against that
schema and the rules are OR-ed into one filter; Spark evaluates it on its
executors and only matching rows travel back to the driver
(``toLocalIterator``), where they become the original records
(:func:`credwatch.engine.convert.record_from_row`) and go through the same
:class:`~credwatch.engine.scan.Scanner` as ``--engine python``: same index
patterns, same alert documents and ``kibana.alert.uuid``.

Paths with a scheme (``s3a://``, ``gs://``, ``hdfs://``) are handed to Spark as
they are; local paths are expanded like the Python reader's (folders, ``--glob``).
Rows come back ordered by file path and row position in the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from credwatch.backends.spark import compile_spark, require_pyspark, schema_of
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
from credwatch.errors import ConfigError, UnsupportedError
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.inputs import expand_inputs
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


def spark_paths(paths: Sequence[str], diag: Diagnostics, glob: str | None = None) -> list[str]:
    """Local Parquet files behind ``paths`` (others raise), URLs as they are."""
    out: list[str] = []
    local: list[str] = []
    for p in paths:
        (out if "://" in p else local).append(p)
    for inp in expand_inputs(local, diag, glob):
        if not inp.regular:
            raise UnsupportedError(f"{inp.source}: --engine spark reads files, not standard input or pipes")
        with open(inp.path, "rb") as fh:
            if fh.read(4) != _PARQUET_MAGIC:
                raise UnsupportedError(f"{inp.path}: --engine spark reads Parquet only for now; run "
                                       "`credwatch convert --to parquet` first, or use --engine duckdb")
        out.append(os.path.abspath(inp.path))
    return out


class SparkScan:
    """Run ``scanner``'s rules in Spark over Parquet and yield only the matching records."""

    def __init__(self, scanner: Scanner, paths: list[str], master: str | None = None) -> None:
        self.scanner = scanner
        self.paths = paths
        self.master = master

    def records(self, diag: Diagnostics) -> Iterator[Record]:
        """The matching records (the scanner counts them; the other rows are added to ``diag.events``)."""
        if not self.paths:
            return
        spark = session(self.master)
        funcs = require_pyspark().functions
        df = spark.read.option("mergeSchema", "true").parquet(*self.paths)
        schema = {k: v for k, v in schema_of(df).items() if not k.startswith(META_PREFIX)}
        now = self.scanner.clock()
        where = " OR ".join(f"({compile_spark(c.matcher.ast, schema, now=now)})"
                            for c in self.scanner.rules) or "FALSE"
        diag.files += len(self.paths)
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
            if any(c.matcher.matches(rec.event) for c in self.scanner.rules):
                yielded += 1
                yield rec
            else:
                diag.warn("engine-disagreement", rec.source, rec.line,
                          "Spark matched a row the Python evaluator does not")
        diag.events += max(total - yielded, 0)


class SparkRunEngine(Engine):
    """The Spark side of ``run --engine spark``: each execution's span as a Spark filter.

    Local files come pruned by :class:`~credwatch.engine.lake_run.LakeEventSource`; a
    URL (``s3a://``...) is read by Spark, whose partition discovery gives a ``day``
    column that is filtered (Spark prunes those folders) when the rule is timed by
    ``@timestamp`` alone. The envelope filter on ``_cw_t0``/``_cw_t1`` is pushed to
    the Parquet reader (row-group statistics) as in DuckDB.
    """

    name = "spark"

    def __init__(self, rules: Sequence[CompiledRule], master: str | None = None) -> None:
        check_rules(rules, self.name)
        self.query = rules_query(rules)
        self.master = master
        self._spark: Any = None

    def rows(self, files: Sequence[LakeFile], fields: TimeFields, span: Span,
             report: ReadReport, diag: Diagnostics) -> Iterator[tuple[Record, bool]]:
        """See :meth:`credwatch.engine.lake_run.Engine.rows`."""
        paths: list[str] = []
        for f in files:
            if "://" in f.path:
                paths.append(f.path)
                continue
            with open(f.path, "rb") as fh:
                if fh.read(4) != _PARQUET_MAGIC:
                    diag.fail(f.path, "run --engine spark reads Parquet only; run `credwatch convert "
                              "--to parquet` first, or use --engine duckdb")
                    continue
            paths.append(os.path.abspath(f.path))
        if not paths:
            return
        if self._spark is None:
            self._spark = session(self.master)
        try:
            yield from self._rows(paths, fields, span, report)
        except Exception as exc:  # Spark's errors are Java's; one line each, never a traceback
            text = str(exc).strip().splitlines()
            diag.fail(paths[0] if len(paths) == 1 else f"{len(paths)} inputs",
                      f"Spark could not read it: {text[0] if text else type(exc).__name__}")

    def _rows(self, paths: list[str], fields: TimeFields, span: Span,
              report: ReadReport) -> Iterator[tuple[Record, bool]]:
        funcs = require_pyspark().functions
        df = self._spark.read.option("mergeSchema", "true").parquet(*paths)
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
