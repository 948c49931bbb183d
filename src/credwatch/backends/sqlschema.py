"""Schema access for the SQL targets: which SQL expressions reach a KQL field.

An engine reads events into nested columns (objects as STRUCTs, arrays as
LISTs, conflicting types as JSON or MAP). :class:`SqlSchemaAccess` resolves a
dotted KQL field name against that schema (an :class:`SType` tree taken from the
engine's DESCRIBE) into every access path: ``a.b.c`` may be the column ``a``
(struct) → ``b`` → ``c``, the column ``"a.b"`` → ``c``, the column ``"a.b.c"``,
or go through arrays of objects, MAP keys and JSON paths. :mod:`credwatch.backends.sqlbase`
builds the predicates over those accesses.

Split out of ``sqlbase`` (issue #13: no module over 600 lines); the dialect
templates stay ``ClassVar`` data so DuckDB and Spark override them in one place.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from credwatch.kql.fields import field_type, multi_fields_of
from credwatch.timemath import clamp_datetime, datetime_to_ms, now_ms

#: Scalar kinds of engine columns.
SCALAR_KINDS = frozenset({"str", "int", "num", "bool", "date", "other"})


@dataclass(frozen=True)
class SType:
    """An engine column type reduced to what the compiler needs.

    ``kind`` is one of ``str int num bool date other`` (scalars), ``json``,
    ``struct`` (with ``fields``) or ``list`` (with ``elem``).
    """

    kind: str
    fields: tuple[tuple[str, SType], ...] = ()
    elem: SType | None = None


@dataclass(frozen=True)
class Access:
    """One SQL expression that reaches a field, and its type."""

    expr: str
    type: SType




class SqlSchemaAccess:
    """Rendering helpers and field resolution shared by the SQL targets."""


    name: ClassVar[str] = "sql"
    true: ClassVar[str] = "TRUE"
    false: ClassVar[str] = "FALSE"
    column_tpl: ClassVar[str] = '"{name}"'
    field_tpl: ClassVar[str] = "struct_extract({expr}, {name})"
    lambda_tpl: ClassVar[str] = "lambda {var}: {body}"
    any_tpl: ClassVar[str] = "len(list_filter({list}, {fn})) > 0"
    transform_tpl: ClassVar[str] = "list_transform({list}, {fn})"
    flatten_tpl: ClassVar[str] = "flatten({list})"
    text_tpl: ClassVar[str] = "CAST({expr} AS VARCHAR)"
    try_double_tpl: ClassVar[str] = "TRY_CAST({expr} AS DOUBLE)"
    finite_tpl: ClassVar[str] = "isfinite({expr})"
    like_tpl: ClassVar[str] = "{expr} LIKE {pattern} ESCAPE '\\'"
    full_match_tpl: ClassVar[str] = "regexp_full_match({expr}, {regex})"
    epoch_ms_tpl: ClassVar[str] = "epoch_ms(CAST(trunc(CAST({expr} AS DOUBLE)) AS BIGINT))"
    ms_trunc_tpl: ClassVar[str] = "date_trunc('millisecond', {expr})"
    #: Exact integers (ES long fields compare whole values, beyond double precision).
    int_type: ClassVar[str] = "HUGEINT"
    try_cast_tpl: ClassVar[str] = "TRY_CAST({expr} AS {type})"
    trunc_tpl: ClassVar[str] = "trunc({expr})"
    try_ts_tpl: ClassVar[str] = "TRY_CAST({expr} AS TIMESTAMPTZ)"
    ts_literal_tpl: ClassVar[str] = "TIMESTAMPTZ '{iso}'"
    tokens_tpl: ClassVar[str] = r"regexp_extract_all(lower({expr}), '[\p{{L}}\p{{N}}_]+')"
    overlap_tpl: ClassVar[str] = "list_has_any({list}, [{items}])"
    phrase_tpl: ClassVar[str] = "contains(' ' || array_to_string({list}, ' ') || ' ', {phrase})"
    ipv4_int_tpl: ClassVar[str] = (
        "(TRY_CAST(split_part({t}, '.', 1) AS BIGINT) * 16777216 + "
        "TRY_CAST(split_part({t}, '.', 2) AS BIGINT) * 65536 + "
        "TRY_CAST(split_part({t}, '.', 3) AS BIGINT) * 256 + "
        "TRY_CAST(split_part({t}, '.', 4) AS BIGINT))"
    )
    v4_unmap_tpl: ClassVar[str] = "regexp_replace({expr}, '^::[fF]{{4}}:', '')"
    #: How a JSON-typed value becomes a list of text values (None: no JSON kind).
    json_values_tpl: ClassVar[str | None] = (
        "(CASE WHEN json_type({expr}) = 'ARRAY' THEN list_transform(list_filter("
        "json_extract({expr}, '$..*'), lambda _jv: json_type(_jv) NOT IN ('ARRAY', 'OBJECT')), "
        "lambda _jv: json_extract_string(_jv, '$')) ELSE [json_extract_string({expr}, '$')] END)"
    )
    json_path_tpl: ClassVar[str | None] = "json_extract({expr}, {path})"
    #: Whether a JSON value holds any scalar leaf (exists on a mixed-type column, where an
    #: object's sub-fields count, as ES's exists on an object field does); None: no JSON.
    json_exists_tpl: ClassVar[str | None] = (
        "COALESCE(json_type({expr}) NOT IN ('ARRAY', 'OBJECT', 'NULL') OR len(list_filter("
        "json_extract({expr}, '$..*'), lambda _jv: json_type(_jv) NOT IN ('ARRAY', 'OBJECT', "
        "'NULL'))) > 0, FALSE)")
    #: Reading key ``{key}`` of a MAP column (DuckDB infers MAPs for ``{}``), None: no MAPs.
    map_get_tpl: ClassVar[str | None] = "map_extract({expr}, {key})"
    map_exists_tpl: ClassVar[str | None] = (
        "len(list_filter(map_values({expr}), lambda v: json_type(v) <> 'NULL')) > 0")
    #: Characters a string literal must backslash-escape (Spark) or None to double quotes.
    string_backslash: ClassVar[bool] = False

    def __init__(self, schema: Mapping[str, SType], field_types: Mapping[str, str] | None = None,
                 prefix: str = "", roots: Sequence[tuple[str, str, SType]] | None = None,
                 counter: itertools.count[int] | None = None, now: datetime | None = None) -> None:
        self.schema = dict(schema)
        #: ``now`` for date math (epoch ms): the SQL is for one evaluation, so it is fixed
        #: when the SQL is rendered; the caller's clock, else the evaluation clock.
        self.now_ms = datetime_to_ms(now) if now is not None else now_ms()
        self.field_types = dict(field_types or {})
        self.prefix = prefix
        self.roots: list[tuple[str, str, SType]] = list(roots) if roots is not None else [
            (name, self.column_tpl.format(name=name.replace(self._quote_char(), self._quote_char() * 2)), t)
            for name, t in self.schema.items()
        ]
        self._vars = counter or itertools.count()

    # -- rendering helpers -----------------------------------------------------------------
    def _quote_char(self) -> str:
        return self.column_tpl[0]

    def lit(self, text: str) -> str:
        """A SQL string literal."""
        if self.string_backslash:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return "'" + text.replace("'", "''") + "'"

    def _now(self) -> datetime:
        """This rendering's ``now``, handed to the sub-compilers of nested queries."""
        return clamp_datetime(self.now_ms)

    def _fresh(self) -> str:
        return f"x{next(self._vars)}"

    def _any(self, list_expr: str, pred: Callable[[str], str]) -> str:
        var = self._fresh()
        fn = self.lambda_tpl.format(var=var, body=pred(var))
        return self.any_tpl.format(list=list_expr, fn=fn)

    @staticmethod
    def _coalesce(pred: str) -> str:
        return f"COALESCE({pred}, FALSE)"

    def _or(self, parts: Sequence[str]) -> str:
        parts = [p for p in parts if p != self.false]
        if not parts:
            return self.false
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _type(self, name: str) -> str:
        return field_type(self.prefix + name, self.field_types)

    # -- schema access ---------------------------------------------------------------------
    def _resolve(self, entries: Sequence[tuple[str, str, SType]], parts: Sequence[str],
                 i: int) -> list[Access]:
        out: list[Access] = []
        for j in range(i + 1, len(parts) + 1):
            key = ".".join(parts[i:j])
            for name, expr, stype in entries:
                if name == key:
                    out.extend(self._descend(expr, stype, parts, j))
        return out

    def _struct_entries(self, expr: str, stype: SType) -> list[tuple[str, str, SType]]:
        return [(n, self.field_tpl.format(expr=expr, name=self.lit(n)), t) for n, t in stype.fields]

    def _descend(self, expr: str, stype: SType, parts: Sequence[str], j: int) -> list[Access]:
        if j == len(parts):
            return [Access(expr, stype)]
        if stype.kind == "struct":
            return self._resolve(self._struct_entries(expr, stype), parts, j)
        if stype.kind == "list" and stype.elem is not None:
            var = self._fresh()
            out: list[Access] = []
            for inner in self._descend(var, stype.elem, parts, j):
                mapped = self.transform_tpl.format(
                    list=expr, fn=self.lambda_tpl.format(var=var, body=inner.expr))
                if inner.type.kind == "list":
                    out.append(Access(self.flatten_tpl.format(list=mapped), inner.type))
                else:
                    out.append(Access(mapped, SType("list", elem=inner.type)))
            return out
        if stype.kind == "map" and self.map_get_tpl and stype.elem is not None:
            # MAP(VARCHAR, V): the key may be any dotted run of the remaining parts.
            out = []
            for k in range(j + 1, len(parts) + 1):
                got = self.map_get_tpl.format(expr=expr, key=self.lit(".".join(parts[j:k])))
                out.extend(self._descend(got, SType("list", elem=stype.elem), parts, k))
            return out
        if stype.kind == "json" and self.json_path_tpl:
            rest = parts[j:]
            out = []
            for split in _splits(rest):
                path = "$" + "".join('."' + k.replace('"', '\\"') + '"' for k in split)
                out.append(Access(self.json_path_tpl.format(expr=expr, path=self.lit(path)),
                                  SType("json")))
            return out
        return []

    def accesses(self, name: str) -> list[Access]:
        """Every expression that reaches field ``name`` in this schema."""
        return self._resolve(self.roots, name.split("."), 0)

    def leaves(self) -> list[tuple[str, Access]]:
        """Every (dotted field name, access) of a scalar-valued field of the schema."""
        out: list[tuple[str, Access]] = []
        for name, expr, stype in self.roots:
            out.extend((f"{name}.{rel}" if rel else name, acc)
                       for rel, acc in self._leaves_of(expr, stype))
        return out

    def leaves_with_multi_fields(self) -> list[tuple[str, Access]]:
        """:meth:`leaves` plus the multi-fields Elasticsearch indexes from each leaf."""
        out: list[tuple[str, Access]] = []
        for name, acc in self.leaves():
            out.append((name, acc))
            out.extend((sub[len(self.prefix):], acc) for sub in multi_fields_of(self.prefix + name))
        return out

    def _leaves_of(self, expr: str, stype: SType) -> list[tuple[str, Access]]:
        if stype.kind == "struct":
            out: list[tuple[str, Access]] = []
            for n, e, t in self._struct_entries(expr, stype):
                out.extend((f"{n}.{rel}" if rel else n, a) for rel, a in self._leaves_of(e, t))
            return out
        if stype.kind == "list" and stype.elem is not None and stype.elem.kind == "struct":
            var = self._fresh()
            out = []
            for rel, inner in self._leaves_of(var, stype.elem):
                mapped = self.transform_tpl.format(
                    list=expr, fn=self.lambda_tpl.format(var=var, body=inner.expr))
                if inner.type.kind == "list":
                    out.append((rel, Access(self.flatten_tpl.format(list=mapped), inner.type)))
                else:
                    out.append((rel, Access(mapped, SType("list", elem=inner.type))))
            return out
        return [("", Access(expr, stype))]


def _splits(parts: Sequence[str]) -> list[list[str]]:
    """Every way to group ``parts`` into dotted keys (``a.b`` → ``[a, b]``, ``[a.b]``)."""
    if not parts:
        return [[]]
    out: list[list[str]] = []
    for j in range(1, len(parts) + 1):
        head = ".".join(parts[:j])
        out.extend([head, *rest] for rest in _splits(parts[j:]))
    return out
