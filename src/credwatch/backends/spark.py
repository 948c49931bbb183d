"""KQL → a Spark SQL boolean expression over a DataFrame read with ``spark.read.json``.

Same semantics and generator as the DuckDB target (:mod:`credwatch.backends.sqlbase`);
only the dialect templates differ. Read the data with
``primitivesAsString=True`` (as :func:`read_ndjson` does) so every scalar keeps
its JSON text, which is what a keyword field indexes; numbers, dates and IPs
are parsed from that text with ``try_cast`` so Spark's ANSI mode never raises.

pyspark is optional (the ``spark`` extra) and imported lazily: without it
:func:`require_pyspark` raises :class:`~credwatch.errors.ConfigError`.

Known limits (raise :class:`UnsupportedError`): IPv6 literals. A field whose
values mix scalars and arrays *across rows* is a string column holding raw
JSON text in Spark; such columns are compared as text.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from credwatch.backends.sqlbase import SqlBackend
from credwatch.backends.sqlschema import SType
from credwatch.errors import ConfigError
from credwatch.kql.ast import Node
from credwatch.kql.parser import parse

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession


class SparkBackend(SqlBackend):
    """The Spark SQL dialect of the shared SQL generator."""

    name: ClassVar[str] = "spark"
    column_tpl: ClassVar[str] = "`{name}`"
    field_tpl: ClassVar[str] = "{expr}[{name}]"
    lambda_tpl: ClassVar[str] = "{var} -> {body}"
    any_tpl: ClassVar[str] = "exists({list}, {fn})"
    transform_tpl: ClassVar[str] = "transform({list}, {fn})"
    # Spark's flatten is NULL when any inner array is NULL; drop those first.
    flatten_tpl: ClassVar[str] = "flatten(filter({list}, _fl -> _fl IS NOT NULL))"
    text_tpl: ClassVar[str] = "CAST({expr} AS STRING)"
    try_double_tpl: ClassVar[str] = "try_cast({expr} AS DOUBLE)"
    finite_tpl: ClassVar[str] = "(NOT isnan({expr}) AND abs({expr}) < double('infinity'))"
    like_tpl: ClassVar[str] = "{expr} LIKE {pattern} ESCAPE '\\\\'"
    full_match_tpl: ClassVar[str] = "({expr} RLIKE concat('^(?:', {regex}, ')$'))"
    epoch_ms_tpl: ClassVar[str] = "timestamp_millis(try_cast(try_cast({expr} AS DOUBLE) AS BIGINT))"
    ms_trunc_tpl: ClassVar[str] = "date_trunc('MILLISECOND', {expr})"
    int_type: ClassVar[str] = "DECIMAL(38,0)"
    try_cast_tpl: ClassVar[str] = "try_cast({expr} AS {type})"
    trunc_tpl: ClassVar[str] = "(CASE WHEN {expr} >= 0 THEN floor({expr}, 0) ELSE ceil({expr}, 0) END)"
    try_ts_tpl: ClassVar[str] = "try_cast({expr} AS TIMESTAMP)"
    ts_literal_tpl: ClassVar[str] = "TIMESTAMP '{iso}Z'"
    tokens_tpl: ClassVar[str] = r"regexp_extract_all(lower({expr}), '[\\p{{L}}\\p{{N}}_]+', 0)"
    overlap_tpl: ClassVar[str] = "arrays_overlap({list}, array({items}))"
    phrase_tpl: ClassVar[str] = "instr(concat(' ', array_join({list}, ' '), ' '), {phrase}) > 0"
    ipv4_int_tpl: ClassVar[str] = (
        "(try_cast(split_part({t}, '.', 1) AS BIGINT) * 16777216 + "
        "try_cast(split_part({t}, '.', 2) AS BIGINT) * 65536 + "
        "try_cast(split_part({t}, '.', 3) AS BIGINT) * 256 + "
        "try_cast(split_part({t}, '.', 4) AS BIGINT))"
    )
    v4_unmap_tpl: ClassVar[str] = "regexp_replace({expr}, '^::[fF]{{4}}:', '')"
    json_values_tpl: ClassVar[str | None] = None
    json_path_tpl: ClassVar[str | None] = None
    json_exists_tpl: ClassVar[str | None] = None
    map_get_tpl: ClassVar[str | None] = None
    map_exists_tpl: ClassVar[str | None] = None
    string_backslash: ClassVar[bool] = True


def require_pyspark() -> Any:
    """Import and return ``pyspark.sql``, or raise a clear error when it is missing."""
    try:
        import pyspark.sql
    except ImportError as exc:  # pragma: no cover - the test env has pyspark
        raise ConfigError("the Spark backend needs pyspark: pip install 'credwatch[spark]'") from exc
    return pyspark.sql


_INT_TYPES = frozenset({"ByteType", "ShortType", "IntegerType", "LongType", "DecimalType"})
_FLOAT_TYPES = frozenset({"FloatType", "DoubleType"})


def stype_of(dtype: Any) -> SType:
    """Convert a ``pyspark.sql.types.DataType`` into the compiler's :class:`SType`."""
    kind = type(dtype).__name__
    if kind == "StructType":
        return SType("struct", fields=tuple((f.name, stype_of(f.dataType)) for f in dtype.fields))
    if kind == "ArrayType":
        return SType("list", elem=stype_of(dtype.elementType))
    if kind == "StringType":
        return SType("str")
    if kind == "BooleanType":
        return SType("bool")
    if kind in _INT_TYPES:
        return SType("int")
    if kind in _FLOAT_TYPES:
        return SType("num")
    if kind in ("DateType", "TimestampType", "TimestampNTZType"):
        return SType("date")
    return SType("other")


def schema_of(df: DataFrame) -> dict[str, SType]:
    """The schema of a DataFrame (column → :class:`SType`)."""
    return {f.name: stype_of(f.dataType) for f in df.schema.fields}


def compile_spark(query: str | Node, schema: Mapping[str, SType],
                  field_types: Mapping[str, str] | None = None, now: datetime | None = None) -> str:
    """Compile KQL into a Spark SQL boolean expression for ``schema``.

    Date math is resolved against ``now`` when given, else the evaluation
    clock (:func:`credwatch.timemath.now_ms`), when the SQL is built.
    """
    ast = parse(query) if isinstance(query, str) else query
    return SparkBackend(schema, field_types, now=now).visit(ast)


def local_session(app: str = "credwatch") -> SparkSession:
    """A small local Spark session (one core, UTC) for scans and tests."""
    sql = require_pyspark()
    session: SparkSession = (
        sql.SparkSession.builder.master("local[1]").appName(app)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


def read_ndjson(spark: SparkSession, source: str | os.PathLike[str] | Iterable[str]) -> DataFrame:
    """Read NDJSON (a path, or JSON lines) the way this backend expects."""
    if isinstance(source, (str, os.PathLike)):
        return spark.read.json(os.fspath(source), primitivesAsString=True)
    lines = list(source)
    return spark.read.json(spark.sparkContext.parallelize(lines, 1), primitivesAsString=True)


def spark_filter(df: DataFrame, query: str | Node,
                 field_types: Mapping[str, str] | None = None,
                 now: datetime | None = None) -> DataFrame:
    """The rows of ``df`` that match ``query`` (date math resolved at ``now``)."""
    sql = require_pyspark()
    return df.filter(sql.functions.expr(compile_spark(query, schema_of(df), field_types, now)))
