"""KQL → a DuckDB SQL ``WHERE`` expression over NDJSON read with ``read_ndjson``.

DuckDB turns nested objects into STRUCTs, arrays into LISTs, keys with dots
into plain column names (``"process.args"``) and values of conflicting types
into ``JSON``. The compiler takes the table's schema (``DESCRIBE``, see
:func:`schema_of`) and generates, for each KQL field, an OR over every column
path that can hold it (nested, flat-dotted and mixtures), with lists searched
element-wise. The semantics are those of the Python evaluator; see
:mod:`credwatch.backends.sqlbase` for the details and the NULL handling.

Read the data as :func:`read_sql` does: ``sample_size=-1`` (the whole file
decides the schema) and date detection off (a keyword field holding an ISO
string must keep its exact text).

IPv6 literals are not supported (raises :class:`UnsupportedError`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import duckdb

from credwatch.backends.sqlbase import SqlBackend
from credwatch.backends.sqlschema import SType
from credwatch.errors import SourceError
from credwatch.kql.ast import Node
from credwatch.kql.parser import parse

_INT_IDS = frozenset({"tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint",
                      "usmallint", "uinteger", "ubigint", "uhugeint"})
_FLOAT_IDS = frozenset({"float", "double", "decimal"})
_DATE_IDS = frozenset({"date", "timestamp", "timestamp with time zone", "timestamp_s",
                       "timestamp_ms", "timestamp_ns", "time"})


class DuckDbBackend(SqlBackend):
    """The DuckDB dialect (all templates are the :class:`SqlBackend` defaults)."""

    name: ClassVar[str] = "duckdb"


def stype_of(dtype: Any) -> SType:
    """Convert a ``duckdb.DuckDBPyType`` into the compiler's :class:`SType`."""
    text = str(dtype)
    kind = dtype.id
    if text == "JSON":
        return SType("json")
    if kind == "struct":
        return SType("struct", fields=tuple((n, stype_of(t)) for n, t in dtype.children))
    if kind == "list":
        return SType("list", elem=stype_of(dtype.children[0][1]))
    if kind == "map":
        return SType("map", elem=stype_of(dtype.children[1][1]))
    if kind == "varchar":
        return SType("str")
    if kind == "boolean":
        return SType("bool")
    if kind in _INT_IDS:
        return SType("int")
    if kind in _FLOAT_IDS:
        return SType("num")
    if kind in _DATE_IDS:
        return SType("date")
    return SType("other")


def schema_of(relation: duckdb.DuckDBPyRelation) -> dict[str, SType]:
    """The schema of a relation (column → :class:`SType`)."""
    return {name: stype_of(t) for name, t in zip(relation.columns, relation.types, strict=True)}


def compile_duckdb(query: str | Node, schema: Mapping[str, SType],
                   field_types: Mapping[str, str] | None = None, now: datetime | None = None) -> str:
    """Compile KQL into a DuckDB boolean expression for ``schema``.

    Date math (``now-1d/d``) is resolved against ``now`` when given, else the
    evaluation clock (:func:`credwatch.timemath.now_ms`), when the SQL is built.
    """
    ast = parse(query) if isinstance(query, str) else query
    return DuckDbBackend(schema, field_types, now=now).visit(ast)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_sql(path: str | os.PathLike[str]) -> str:
    """The ``read_ndjson`` call credwatch uses (whole-file schema, no date guessing)."""
    # A format with no placeholders never parses, which turns date detection off.
    return (f"read_ndjson({_quote(os.fspath(path))}, format='newline_delimited', "
            "sample_size=-1, map_inference_threshold=-1, field_appearance_threshold=0, "
            "dateformat='NODATE', timestampformat='NOTIMESTAMP')")


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory connection with UTC as the zone for naive timestamps."""
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    return con


def duckdb_scan(path: str | os.PathLike[str], query: str | Node,
                field_types: Mapping[str, str] | None = None,
                con: duckdb.DuckDBPyConnection | None = None, now: datetime | None = None) -> list[int]:
    """Run ``query`` over an NDJSON file; return the 0-based indexes of matching records.

    ``now`` is the current time for date math (default: the evaluation clock).
    """
    con = con or connect()
    source = read_sql(path)
    try:
        relation = con.sql(f"SELECT * FROM {source}")
        where = compile_duckdb(query, schema_of(relation), field_types, now)
        rows = con.execute(
            f"SELECT __cw_row FROM (SELECT row_number() OVER () - 1 AS __cw_row, * "
            f"FROM {source}) WHERE {where} ORDER BY __cw_row").fetchall()
    except duckdb.Error as exc:
        raise SourceError(f"DuckDB could not run the query: {exc}", os.fspath(path)) from exc
    return [int(r[0]) for r in rows]


def show_sql(query: str | Node, schema: Mapping[str, SType],
             field_types: Mapping[str, str] | None = None, source: str = "events",
             now: datetime | None = None) -> str:
    """A complete ``SELECT`` statement for display (date math resolved at ``now``)."""
    return f"SELECT *\nFROM {source}\nWHERE {compile_duckdb(query, schema, field_types, now)}"
