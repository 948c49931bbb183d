"""Parquet for the in-process engine (``scan --engine python``): records read with pyarrow, in batches.

A file ``credwatch convert`` wrote gives back each original event exactly
(``_cw_event`` and the origin columns: same alert documents and uuids as the
input it was converted from); any other Parquet becomes its non-null columns as
nested objects (structs are objects, lists arrays), with values JSON cannot hold
turned into text (timestamps and dates as ISO 8601, bytes as UTF-8, decimals as
numbers). Rows are numbered from 1 as the record's line. Events go through the
same Elasticsearch type checks as NDJSON lines.

Only the ``_cw_*`` columns are read from credwatch's own files; memory is bounded
by :data:`BATCH_ROWS` rows whatever the file size. A file pyarrow cannot read is
one failed input (``path: reason``), as an unreadable NDJSON file is.
"""

from __future__ import annotations

import base64
import datetime as dt
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

from credwatch.errors import UnsupportedError
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import check_types
from credwatch.sources.inputs import expand_inputs
from credwatch.sources.record import Record

__all__ = ["BATCH_ROWS", "PARQUET_MAGIC", "is_parquet", "parquet_records", "refuse_parquet"]

PARQUET_MAGIC = b"PAR1"
BATCH_ROWS = 10_000
_META = ("_cw_event", "_cw_source", "_cw_line", "_cw_index", "_cw_id", "_cw_version")


def is_parquet(path: str) -> bool:
    """True when ``path`` starts with Parquet's magic bytes."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == PARQUET_MAGIC
    except OSError:
        return False


def _jsonable(value: Any) -> Any:
    """A value as JSON can hold it (recursive: the depth is the file schema's, not the rows')."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, numbers.Number) and not isinstance(value, (bool, int, float)):
        # decimal.Decimal (a Number, not a Real), without importing decimal for every scan.
        return float(value)  # type: ignore[arg-type]
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def parquet_records(path: str, source: str, diag: Diagnostics,
                    batch_rows: int = BATCH_ROWS) -> Iterator[Record]:
    """Every row of the Parquet file ``path`` as a :class:`Record` (see the module docstring)."""
    # Only for Parquet inputs: every scan imports this module (is_parquet), few read Parquet.
    from credwatch.engine.convert import record_from_row, require_pyarrow

    require_pyarrow()
    import pyarrow
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        own = "_cw_event" in pf.schema_arrow.names
        columns = [c for c in _META if c in pf.schema_arrow.names] if own else None
        row = 0
        for batch in pf.iter_batches(batch_size=batch_rows, columns=columns):
            for values in batch.to_pylist():
                row += 1
                rec = record_from_row(values if own else _jsonable(values), source, row)
                if check_types(rec, diag):
                    yield rec
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        text = str(exc).strip().splitlines()
        diag.fail(source, f"not a readable Parquet file: {text[0] if text else type(exc).__name__}")


def refuse_parquet(paths: Sequence[str], glob: str | None, command: str) -> None:
    """Raise :class:`UnsupportedError` naming the first Parquet file behind ``paths``.

    For ``run --engine python``, whose readers work on text lines (a Parquet file would
    be read as lines of garbage): the engines that read Parquet are named instead.
    """
    for inp in expand_inputs([p for p in paths if p != "-"], Diagnostics(), glob):
        if inp.regular and is_parquet(inp.path):
            raise UnsupportedError(f"{inp.path}: {command} --engine python does not read Parquet; "
                                   "use --engine duckdb or --engine spark")
