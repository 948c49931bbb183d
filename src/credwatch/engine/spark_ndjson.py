"""NDJSON for ``--engine spark``: every scalar kept as its JSON text, lines numbered exactly.

Spark reads the files twice as text and once for their schema, all on the executors:

1. **schema**: ``spark.read.json(..., primitivesAsString=True)``: every scalar is a
   string holding its JSON text (``1`` and ``"1"`` are both ``"1"``), which is what a
   keyword field indexes and what the Spark SQL target compiles against;
2. **line numbers**: ``spark.read.text`` (lines split on ``\\n`` only, as the Python
   reader splits them; blank lines count) with each row's file, the start of its
   split and ``monotonically_increasing_id`` (consecutive within a split). One small
   aggregate per split (rows, first id, non-blank rows) is collected; a row's line
   is then the rows of the file's earlier splits plus its place in its split;
3. **filter**: each line parsed with ``from_json`` and the schema of step 1 (a line
   that does not parse is a null row and never matches), the rules' filter applied;
   only matching lines travel to the driver, as text, where the Python reader's
   line decoder turns them into the very records ``--engine python`` reads
   (same ``file:line``, type checks, ``_index``/``_id``).

Executors run no Python. Known limits (docs/engines.md): diagnostics cover the
matching lines only (a bad line elsewhere is not counted as skipped), and an
array mixing scalars and arrays is one raw JSON string to Spark.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from credwatch.backends.spark import require_pyspark, schema_of
from credwatch.backends.sqlschema import SType
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import line_records_checked
from credwatch.sources.record import Record

__all__ = ["NdjsonFrame", "ndjson_frame"]

_COLS = ("__cw_text", "__cw_file", "__cw_split", "__cw_id")


@dataclass
class NdjsonFrame:
    """The parsed lines of some NDJSON files, their schema and how to number them."""

    frame: Any
    schema: dict[str, SType]
    #: (file, split start) → (line number of the split's first row, its first id).
    splits: dict[tuple[str, int], tuple[int, int]]
    #: Non-blank lines (the events the Python reader would decode).
    events: int
    #: Absolute local path → the path as the user gave it (what the Python reader reports).
    given: dict[str, str]

    def source(self, uri: str) -> str:
        """The name of a file as ``--engine python`` reports it (Spark gives ``file:`` URIs)."""
        if uri.startswith("file:"):
            local = unquote(urlparse(uri).path)
            return self.given.get(local, local)
        return uri

    def filtered(self, where: str) -> Any:
        """The lines matching the Spark SQL ``where``, as (text, file, line), in file and line order."""
        funcs = require_pyspark().functions
        return (self.frame.filter(funcs.expr(f"COALESCE(({where}), FALSE)"))
                .select(*_COLS).orderBy("__cw_file", "__cw_split", "__cw_id"))

    def line(self, file: str, split: int, ident: int) -> int:
        """The 1-based line number of a row."""
        first, first_id = self.splits[(file, split)]
        return first + (ident - first_id)

    def records(self, rows: Any, diag: Diagnostics) -> Iterator[tuple[Record, Any]]:
        """Decode the rows of :meth:`filtered` (or any with :data:`_COLS`) with the Python decoder."""
        for row in rows:
            lineno = self.line(row["__cw_file"], int(row["__cw_split"]), int(row["__cw_id"]))
            text = row["__cw_text"] or ""
            source = self.source(row["__cw_file"])
            for rec in line_records_checked(text.encode("utf-8"), source, lineno, diag):
                yield rec, row


def ndjson_frame(spark: Any, given: Sequence[str]) -> NdjsonFrame:
    """Read ``given`` (local files or URLs) as NDJSON (see the module docstring)."""
    funcs = require_pyspark().functions
    names = {os.path.abspath(p): p for p in given if "://" not in p}
    paths = [p if "://" in p else os.path.abspath(p) for p in given]
    inferred = spark.read.json(list(paths), primitivesAsString=True)
    fields = [f for f in inferred.schema.fields if f.name != "_corrupt_record"]
    text = (spark.read.option("lineSep", "\n").text(list(paths))
            .select(funcs.col("value").alias("__cw_text"),
                    funcs.col("_metadata.file_path").alias("__cw_file"),
                    funcs.col("_metadata.file_block_start").alias("__cw_split"),
                    funcs.monotonically_increasing_id().alias("__cw_id")))
    blank = funcs.trim(funcs.col("__cw_text")) == ""
    stats = (text.groupBy("__cw_file", "__cw_split")
             .agg(funcs.count(funcs.lit(1)).alias("n"), funcs.min("__cw_id").alias("first"),
                  funcs.sum(funcs.when(blank, 0).otherwise(1)).alias("events"))
             .collect())
    splits: dict[tuple[str, int], tuple[int, int]] = {}
    next_line: dict[str, int] = {}
    events = 0
    for row in sorted(stats, key=lambda r: (r["__cw_file"], int(r["__cw_split"]))):
        file = row["__cw_file"]
        start = next_line.get(file, 1)
        splits[(file, int(row["__cw_split"]))] = (start, int(row["first"]))
        next_line[file] = start + int(row["n"])
        events += int(row["events"] or 0)
    if fields:
        struct = require_pyspark().types.StructType(fields)
        parsed = text.withColumn("__cw_e", funcs.from_json(funcs.col("__cw_text"), struct))
        frame = parsed.select(*_COLS, "__cw_e.*")
    else:
        frame = text
    schema = {k: v for k, v in schema_of(frame).items() if k not in _COLS}
    return NdjsonFrame(frame, schema, splits, events, names)
