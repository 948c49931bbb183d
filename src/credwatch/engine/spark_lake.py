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
from credwatch.engine.convert import META_PREFIX, record_from_row
from credwatch.engine.scan import Scanner
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
                          "it needs Java 17+ on PATH or JAVA_HOME") from None
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
