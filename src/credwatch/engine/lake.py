"""``scan --engine duckdb``: the rules' filter runs inside DuckDB, alerts are built as always.

Each input is read by DuckDB with its own threads (NDJSON through
:func:`credwatch.backends.duckdb.read_sql`: whole-file schema, no date guessing;
Parquet through ``read_parquet``). Every rule's KQL is compiled against that
input's schema by the DuckDB SQL target and the rules are OR-ed into one
``WHERE``; only matching rows come back. Those rows become the very
:class:`~credwatch.sources.record.Record` the Python engine would have read:

* NDJSON: DuckDB returns the matching row numbers; the matching lines (only
  those) are then decoded by the Python reader's line decoder, so the event, its
  ``file:line``, ``_index``/``_id`` and type checks are the Python engine's;
* Parquet written by ``credwatch convert``: ``_cw_event`` and the other meta
  columns give back the original event and origin exactly; other Parquet becomes
  its non-null columns as nested objects.

The records then go through :meth:`Scanner.scan`, which applies index
patterns, re-evaluates the match for its explanation and builds the alert:
the same code as ``--engine python``, hence the same documents and
``kibana.alert.uuid``. A row DuckDB returned that the Python evaluator rejects
is reported as an ``engine-disagreement`` warning (never silently dropped).

Not supported (raise :class:`UnsupportedError` before anything is read):
standard input, inputs other than NDJSON/Parquet (raw ``audit.log``, JSON
arrays, ``_search`` responses: ``credwatch convert`` them first), NDJSON of
Elasticsearch hits (``_source``), and rules on ``credwatch.normalized.*``
fields (derived in Python only).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import duckdb

from credwatch.backends.duckdb import compile_duckdb, connect, read_sql, schema_of
from credwatch.backends.sqlschema import SType
from credwatch.engine.convert import META_PREFIX, record_from_row
from credwatch.engine.lake_plan import require_engine
from credwatch.engine.scan import Scanner
from credwatch.errors import SourceError, UnsupportedError
from credwatch.kql.passes import fields
from credwatch.sources.detect import prepare
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import line_records_checked
from credwatch.sources.inputs import READ_ERRORS, Input, describe, expand_inputs, iter_lines
from credwatch.sources.read import open_binary
from credwatch.sources.record import Record

ENGINES = ("python", "duckdb")
Kind = Literal["ndjson", "parquet"]
_PARQUET_MAGIC = b"PAR1"
_DERIVED = "credwatch.normalized."
#: Rows fetched from DuckDB at a time (memory stays bounded whatever the match count).
FETCH_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class LakeInput:
    """One input file and how DuckDB reads it."""

    path: str
    kind: Kind


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def classify(inp: Input) -> LakeInput | None:
    """Parquet (by its magic bytes) or NDJSON (as the Python reader detects it).

    Anything else raises :class:`UnsupportedError`; an input that cannot be opened
    returns ``None`` (the reader reports it as a failed input, as ``--engine python`` does).
    """
    if inp.path == "-" or not inp.regular:
        raise UnsupportedError(f"{inp.source}: --engine duckdb reads regular files, not standard "
                               "input or pipes; use --engine python")
    try:
        with open(inp.path, "rb") as fh:
            if fh.read(4) == _PARQUET_MAGIC:
                return LakeInput(inp.path, "parquet")
        stream = open_binary(inp.path)
        try:
            _s, _skipped, fmt = prepare(stream, "auto")
        finally:
            stream.close()
    except (SourceError, OSError, EOFError, zlib.error):
        return LakeInput(inp.path, "ndjson")  # reading it again fails and is reported then
    if fmt in ("ndjson", "empty"):
        return LakeInput(inp.path, "ndjson")
    raise UnsupportedError(f"{inp.path}: {fmt} input is not supported by --engine duckdb; "
                           "run `credwatch convert` to Parquet first, or use --engine python")


def plan_inputs(paths: Sequence[str], diag: Diagnostics, glob: str | None = None) -> list[LakeInput]:
    """Every input file behind ``paths``, classified (unsupported ones raise before any scan).

    Paths that are not inputs (missing, dangling links, sockets) go to ``diag.failed``.
    """
    return [x for inp in expand_inputs(paths, diag, glob) if (x := classify(inp)) is not None]


def _check_rules(scanner: Scanner) -> None:
    for crule in scanner.rules:
        used = [f for f in fields(crule.matcher.ast) if f.startswith(_DERIVED)]
        if used:
            raise UnsupportedError(f"rule {crule.rule.name!r} uses {used[0]}, which only the Python "
                                   "engine derives; use --engine python")


class LakeScan:
    """Run ``scanner``'s rules inside DuckDB and yield only the records that matched."""

    def __init__(self, scanner: Scanner, con: duckdb.DuckDBPyConnection | None = None) -> None:
        _check_rules(scanner)
        self.scanner = scanner
        self.con = con or connect()
        self._rows = 0  # rows DuckDB read in the current input

    def where(self, schema: dict[str, SType]) -> str:
        """The OR of every rule's compiled filter over ``schema``."""
        now = self.scanner.clock()
        parts = [f"({compile_duckdb(c.matcher.ast, schema, now=now)})" for c in self.scanner.rules]
        return " OR ".join(parts) or "FALSE"

    def records(self, inputs: Sequence[LakeInput], diag: Diagnostics) -> Iterator[Record]:
        """Matching records of every input, in input order; unreadable inputs go to ``diag.failed``."""
        for inp in inputs:
            diag.files += 1
            self._rows = yielded = 0
            try:
                reader = self._parquet if inp.kind == "parquet" else self._ndjson
                for rec in reader(inp.path, diag):
                    yielded += 1
                    yield rec
                # The scanner counts the records it is given; the rest were read by DuckDB.
                diag.events += max(self._rows - yielded, 0)
            except INPUT_ERRORS as exc:
                diag.fail(inp.path, input_failure(exc))

    def _checked(self, rec: Record, diag: Diagnostics) -> Record | None:
        if any(c.matcher.matches(rec.event) for c in self.scanner.rules):
            return rec
        diag.warn("engine-disagreement", rec.source, rec.line,
                  "DuckDB matched a row the Python evaluator does not")
        return None

    def _ndjson(self, path: str, diag: Diagnostics) -> Iterator[Record]:
        if _is_empty(path):
            diag.skip("empty-file", path, None)
            return
        source = read_sql(path)
        schema = schema_of(self.con.sql(f"SELECT * FROM {source}"))
        if "_source" in schema or "hits" in schema:
            raise UnsupportedError(f"{path}: Elasticsearch hits are not supported by --engine duckdb; "
                                   "run `credwatch convert` first, or use --engine python")
        wanted, self._rows = matching_rows(self.con, source, self.where(schema))
        yield from self._lines(path, list(wanted), diag)

    def _lines(self, path: str, wanted: list[int], diag: Diagnostics) -> Iterator[Record]:
        """Decode only the ``wanted`` non-blank lines (DuckDB's row numbers) with the Python decoder."""
        for rec, _row in decode_rows(path, wanted, diag):
            checked = self._checked(rec, diag)
            if checked is not None:
                yield checked

    def _parquet(self, path: str, diag: Diagnostics) -> Iterator[Record]:
        source = (f"read_parquet({_quote(path)}, file_row_number=true, hive_partitioning=false, "
                  "binary_as_string=true)")
        relation = self.con.sql(f"SELECT * FROM {source}")
        schema = {k: v for k, v in schema_of(relation).items()
                  if not k.startswith(META_PREFIX) and k != "file_row_number"}
        total = self.con.execute(f"SELECT count(*) FROM {source}").fetchone()
        cols = "*" if "_cw_event" not in relation.columns else (
            "_cw_event, _cw_source, _cw_line, _cw_index, _cw_id, _cw_version, file_row_number")
        cur = self.con.execute(f"SELECT {cols} FROM {source} WHERE {self.where(schema)} "
                               "ORDER BY file_row_number")
        names = [d[0] for d in cur.description or []]
        self._rows = int(total[0] if total else 0)
        while batch := cur.fetchmany(FETCH_ROWS):
            for values in batch:
                row: dict[str, Any] = dict(zip(names, values, strict=True))
                rec = record_from_row(row, path, int(row.pop("file_row_number")) + 1)
                checked = self._checked(rec, diag)
                if checked is not None:
                    yield checked


def matching_rows(con: duckdb.DuckDBPyConnection, source: str, where: str,
                  also: str = "FALSE") -> tuple[dict[int, bool], int]:
    """The 0-based rows of ``source`` where ``where`` holds, and how many rows it has.

    Each row found maps to whether ``also`` holds there too (``run``: the rules, ``where``
    being the time span). A projection, not ``row_number() OVER ()``: the window materialises every column of
    the file on one thread (x7 slower on 1M events); DuckDB keeps a projection in file
    order (``preserve_insertion_order``, on by default).
    """
    cur = con.execute(f"SELECT COALESCE(({where}), FALSE), COALESCE(({also}), FALSE) FROM {source}")
    wanted: dict[int, bool] = {}
    total = 0
    while batch := cur.fetchmany(FETCH_ROWS * 10):
        for hit, extra in batch:
            if hit:
                wanted[total] = bool(extra)
            total += 1
    return wanted, total


def _is_empty(path: str) -> bool:
    if os.path.getsize(path) == 0:
        return True
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            return not fh.read(1)
    return False


@dataclass(slots=True)
class LakePlan:
    """A checked ``--engine duckdb|spark`` scan: its inputs and the engine, nothing read yet."""

    scan: LakeScan | None
    inputs: list[LakeInput]
    spark: Any = None

    def records(self, diag: Diagnostics) -> Iterator[Record]:
        """The matching records, as :meth:`LakeScan.records` (or the Spark engine's)."""
        if self.spark is not None:
            records: Iterator[Record] = self.spark.records(diag)
            return records
        assert self.scan is not None
        return self.scan.records(self.inputs, diag)


def _check_options(args: Any) -> None:
    engine = args.engine
    if args.input_format not in ("auto", "ndjson"):
        raise UnsupportedError(f"--input-format {args.input_format} is not supported by --engine "
                               f"{engine} (NDJSON and Parquet only); run `credwatch convert` first")
    if args.strict:
        raise UnsupportedError(f"--strict applies to --engine python; {engine} stops on the first bad "
                               "line of an input anyway (reported as a failed input)")
    if args.workers is not None:
        raise UnsupportedError(f"--workers applies to --engine python; {engine} uses its own threads")


def plan_scan(args: Any, scanner: Scanner) -> LakePlan:
    """Check ``scan``'s options and inputs for a non-Python engine (raises before outputs are opened)."""
    if args.engine not in ("duckdb", "spark"):
        raise UnsupportedError(f"--engine {args.engine} is not available; use python, duckdb or spark")
    _check_options(args)
    _check_rules(scanner)
    require_engine(args.engine)
    if args.engine == "spark":
        from credwatch.engine.spark_lake import (  # pyspark only when asked for
            SparkScan,
            spark_paths,
        )

        paths = spark_paths(args.paths, scanner.diagnostics, args.glob, args.input_format)
        return LakePlan(None, [], SparkScan(scanner, paths, getattr(args, "spark_master", None)))
    return LakePlan(LakeScan(scanner), plan_inputs(args.paths, scanner.diagnostics, args.glob))


def decode_rows(path: str, wanted: list[int], diag: Diagnostics) -> Iterator[tuple[Record, int]]:
    """The records of the ``wanted`` non-blank lines (sorted DuckDB row numbers), with their row.

    Decoded by the Python reader's line decoder, so an event found by DuckDB is
    the same record, with the same ``file:line`` and type checks, as scanning finds.
    """
    if not wanted:
        return
    stream = open_binary(path)
    try:
        pos, row = 0, -1
        for lineno, raw in iter_lines(stream):
            if raw is None or not raw.strip():
                continue
            row += 1
            if row != wanted[pos]:
                continue
            for rec in line_records_checked(raw, path, lineno, diag):
                yield rec, row
            pos += 1
            if pos == len(wanted):
                return
    finally:
        stream.close()


#: What reading one input with DuckDB may raise that costs only that input (``path: reason``).
INPUT_ERRORS: tuple[type[BaseException], ...] = (duckdb.Error, SourceError, *READ_ERRORS)


def input_failure(exc: BaseException) -> str:
    """The ``path: reason`` reason for an input an engine could not read (one line)."""
    if isinstance(exc, duckdb.Error):
        text = str(exc)
        return f"DuckDB could not read it: {text.splitlines()[0] if text else type(exc).__name__}"
    if isinstance(exc, SourceError):
        return exc.message
    if isinstance(exc, READ_ERRORS):
        return describe(exc)
    return str(exc)
