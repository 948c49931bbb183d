"""Shared KQL → SQL generation for the DuckDB and Spark targets.

Both engines read NDJSON into nested columns: objects become STRUCTs, arrays
LISTs/ARRAYs, and conflicting types fall back to JSON (DuckDB) or strings
(Spark). :class:`SqlBackend` compiles a KQL AST against such a schema
(:class:`SType` tree, taken from the engine's DESCRIBE) into one boolean SQL
expression with the reference semantics of :mod:`credwatch.backends.python`:

* a field is every *access path* to it: ``a.b.c`` may be the column ``a``
  (struct) → ``b`` → ``c``, the column ``"a.b"`` → ``c``, the column
  ``"a.b.c"``, or go through arrays of objects; all paths are ORed;
* a comparison holds when *any* scalar value satisfies it (``exists`` over
  lists, ``transform`` + ``flatten`` through arrays of objects);
* every leaf is wrapped in ``COALESCE(…, FALSE)``, so a missing column or
  NULL value is false and ``NOT`` is true: SQL's three-valued logic never
  leaks (``NOT NULL`` would be NULL);
* values are typed by the *Elasticsearch* field type (``field_type``): keyword
  compares the indexed text case-sensitively (``LIKE`` anchored, with ``%``,
  ``_`` and ``\\`` escaped), numbers/dates/IPv4 parse the value, text fields
  are tokenised.

Dialect differences are data: the ``ClassVar`` templates below. A node or
value a dialect cannot express raises :class:`UnsupportedError`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Sequence
from datetime import datetime

from credwatch.backends.base import Visitor
from credwatch.backends.pymatch import (
    INTEGRAL_TYPES,
    analyze,
    query_date,
    to_number,
    wildcard_matcher,
)
from credwatch.backends.sqlschema import SCALAR_KINDS, Access, SqlSchemaAccess, SType
from credwatch.errors import KqlCompileError, UnsupportedError
from credwatch.kql.ast import (
    And,
    Exists,
    Is,
    Literal,
    MatchAll,
    Nested,
    Node,
    Not,
    Or,
    Range,
    Value,
    Wildcard,
)
from credwatch.kql.fields import (
    KEYWORD_LIKE,
    NUMERIC_TYPES,
    TEXT_TYPES,
    multi_field_parent,
)
from credwatch.kql.passes import ValueGroup, group_values
from credwatch.timemath import (
    DATETIME_MAX_MS,
    DATETIME_MIN_MS,
    DateMath,
    datetime_to_ms,
    format_ms,
)

ScalarPred = Callable[[str, str], str]  # (scalar expr, kind) -> SQL boolean
_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_RE = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"


class SqlBackend(SqlSchemaAccess, Visitor[str]):
    """Compile KQL into a SQL boolean expression over a nested-JSON table."""

    # -- predicates over values ------------------------------------------------------------
    def over_values(self, access: Access, pred: ScalarPred) -> str:
        """``pred`` holds for any scalar value reachable through ``access``."""
        t = access.type
        if t.kind in SCALAR_KINDS:
            return self._coalesce(pred(access.expr, t.kind))
        if t.kind == "json" and self.json_values_tpl:
            values = self.json_values_tpl.format(expr=access.expr)
            return self._coalesce(self._any(values, lambda v: pred(v, "str")))
        if t.kind == "list" and t.elem is not None:
            elem = t.elem
            if elem.kind in SCALAR_KINDS:
                return self._coalesce(self._any(access.expr, lambda v: pred(v, elem.kind)))
            if elem.kind == "list":
                return self.over_values(Access(self.flatten_tpl.format(list=access.expr), elem), pred)
            if elem.kind == "json" and self.json_values_tpl:
                tpl = self.json_values_tpl
                return self._coalesce(self._any(
                    access.expr, lambda v: self._any(tpl.format(expr=v), lambda w: pred(w, "str"))))
        return self.false  # an object where a scalar is wanted: ES indexes no value there

    def text_of(self, expr: str, kind: str) -> str:
        """The keyword text Elasticsearch indexes for a scalar of ``kind``."""
        return expr if kind == "str" else self.text_tpl.format(expr=expr)

    def number_of(self, expr: str, kind: str) -> str:
        if kind == "bool":
            return "NULL"
        return self.try_double_tpl.format(
            expr=expr if kind in ("num", "int") else self.text_of(expr, kind))

    def int_of(self, expr: str, kind: str) -> str:
        """The value as an integral field indexes it: exact integers, fractions truncated."""
        if kind == "int":
            return self.try_cast_tpl.format(expr=expr, type=self.int_type)
        n = self.number_of(expr, kind)
        trunc = self.try_cast_tpl.format(expr=self.trunc_tpl.format(expr=n), type=self.int_type)
        if kind != "str":
            return f"(CASE WHEN {self.finite_tpl.format(expr=n)} THEN {trunc} END)"
        t = f"trim({expr})"
        exact = self.try_cast_tpl.format(expr=t, type=self.int_type)
        is_int = self.full_match_tpl.format(expr=t, regex=self.lit("[+-]?[0-9]+"))
        return (f"(CASE WHEN {is_int} THEN {exact} "
                f"WHEN {self.finite_tpl.format(expr=n)} THEN {trunc} END)")

    def date_of(self, expr: str, kind: str) -> str:
        """The value as a ``date`` field stores it (epoch ms for numbers, ms precision)."""
        if kind in ("num", "int"):
            return self._epoch(expr, self.number_of(expr, kind))
        if kind == "date":
            return self.ms_trunc_tpl.format(expr=self.try_ts_tpl.format(expr=expr))
        t = f"trim({self.text_of(expr, kind)})"
        epoch = self.full_match_tpl.format(expr=t, regex=self.lit("[0-9]{1,3}|[0-9]{5,}"))
        parsed = self.ms_trunc_tpl.format(expr=self.try_ts_tpl.format(expr=t))
        return (f"(CASE WHEN {epoch} THEN {self._epoch(t, self.try_double_tpl.format(expr=t))} "
                f"ELSE {parsed} END)")

    def _epoch(self, expr: str, number: str) -> str:
        # The engines' timestamps hold years 1..9999 and fail the whole query on a larger
        # epoch (ES stores it): outside that range the value is NULL, i.e. matches nothing.
        return (f"(CASE WHEN {number} BETWEEN {DATETIME_MIN_MS} AND {DATETIME_MAX_MS} "
                f"THEN {self.epoch_ms_tpl.format(expr=expr)} END)")

    def _date_bounds(self, field: str, text: str, lo_up: bool, hi_up: bool) -> tuple[int, int]:
        """A query date resolved at this rendering's ``now`` (ES rounding per direction)."""
        expr: DateMath = query_date(field, text)
        return expr.resolve_ms(self.now_ms, lo_up), expr.resolve_ms(self.now_ms, hi_up)

    def ts_literal_ms(self, ms: int) -> str:
        """A timestamp literal for epoch ``ms`` (clamped into years 1..9999)."""
        # format_ms, not strftime: glibc's %Y writes year 1 as "1", which Spark rejects.
        iso = format_ms(min(max(ms, DATETIME_MIN_MS), DATETIME_MAX_MS))[:-1].replace("T", " ")
        return self.ts_literal_tpl.format(iso=iso + "+00:00" if "TIMESTAMPTZ" in self.ts_literal_tpl
                                          else iso)

    def ts_literal(self, when: datetime) -> str:
        """A timestamp literal for ``when`` (milliseconds kept)."""
        return self.ts_literal_ms(datetime_to_ms(when))

    def like_pattern(self, parts: Sequence[str]) -> str:
        escaped = [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for p in parts]
        return self.lit("%".join(escaped))

    def _ipv4(self, field: str, text: str) -> ipaddress.IPv4Address | ipaddress.IPv4Network:
        try:
            net: ipaddress.IPv4Address | ipaddress.IPv4Network | ipaddress.IPv6Address | \
                ipaddress.IPv6Network = (ipaddress.ip_network(text, strict=False) if "/" in text
                                         else ipaddress.ip_address(text))
        except ValueError:
            raise KqlCompileError(f"field '{field}' is an ip field, and '{text}' is not an IP or CIDR") from None
        if not isinstance(net, (ipaddress.IPv4Address, ipaddress.IPv4Network)):
            raise UnsupportedError(f"the {self.name} backend supports IPv4 only, not '{text}'")
        return net

    def _ip_test(self, expr: str, kind: str, test: Callable[[str], str]) -> str:
        """``test`` on the value as an IPv4 integer; false when it is not an IPv4 address."""
        # Elasticsearch stores IPv4 as IPv4-mapped IPv6, so ::ffff:a.b.c.d is a.b.c.d.
        t = self.v4_unmap_tpl.format(expr=f"trim({self.text_of(expr, kind)})")
        ok = self.full_match_tpl.format(expr=t, regex=self.lit(IPV4_RE))
        return f"({ok} AND {test(self.ipv4_int_tpl.format(t=t))})"

    # -- typed value tests (mirror pymatch) ------------------------------------------------
    # Complexity: one flat branch per Elasticsearch field type (keyword, text, long, double,
    # date, ip, boolean) and literal kind; splitting it would scatter the term-query table.
    def equals_pred(self, field: str, ftype: str, value: Literal) -> ScalarPred | None:  # noqa: C901
        """A scalar predicate for ``field:value`` (None: never true)."""
        raw = value.value
        if raw is None:
            return None
        text = value.text
        if ftype in KEYWORD_LIKE:
            lit = self.lit(text)
            return lambda e, k: f"{self.text_of(e, k)} = {lit}"
        if ftype in NUMERIC_TYPES:
            num = to_number(text)
            if num is None:
                raise KqlCompileError(f"field '{field}' is of type {ftype}, and '{text}' is not a number")
            if ftype in INTEGRAL_TYPES:
                if not num.is_integer():
                    return None  # a LONG term query for 5.5 matches nothing
                whole = _exact_int(text, num)
                return lambda e, k: f"{self.int_of(e, k)} = {whole}"
            return lambda e, k: f"{self.number_of(e, k)} = {num!r}"
        if ftype == "boolean":
            if text not in ("true", "false", ""):
                raise KqlCompileError(f"field '{field}' is boolean, and '{text}' is not true/false")
            # Elasticsearch indexes "" in a boolean field as false.
            wanted = "'true'" if text == "true" else "'false', ''"
            return lambda e, k: f"{self.text_of(e, k)} IN ({wanted})"
        if ftype == "ip":
            target = self._ipv4(field, text)
            if isinstance(target, ipaddress.IPv4Network):
                lo, hi = int(target.network_address), int(target.broadcast_address)
                return lambda e, k: self._ip_test(e, k, lambda n: f"{n} BETWEEN {lo} AND {hi}")
            want = int(target)
            return lambda e, k: self._ip_test(e, k, lambda n: f"{n} = {want}")
        if ftype in ("date", "date_nanos"):
            lo, hi = self._date_bounds(field, text, False, True)
            if hi < DATETIME_MIN_MS or lo > DATETIME_MAX_MS:
                return None  # no date the engine can hold is in the interval
            first, last = self.ts_literal_ms(lo), self.ts_literal_ms(hi)
            return lambda e, k: f"{self.date_of(e, k)} BETWEEN {first} AND {last}"
        if ftype in TEXT_TYPES:
            tokens = analyze(text)
            if not tokens:
                return None
            if value.quoted:
                phrase = self.lit(" " + " ".join(tokens) + " ")
                return lambda e, k: self.phrase_tpl.format(
                    list=self.tokens_tpl.format(expr=self.text_of(e, k)), phrase=phrase)
            items = ", ".join(self.lit(t) for t in dict.fromkeys(tokens))
            return lambda e, k: self.overlap_tpl.format(
                list=self.tokens_tpl.format(expr=self.text_of(e, k)), items=items)
        raise KqlCompileError(f"field '{field}' has unsupported type '{ftype}'")

    def wildcard_pred(self, field: str, ftype: str, parts: Sequence[str]) -> ScalarPred:
        """A scalar predicate for ``field:pat*tern``."""
        if ftype in KEYWORD_LIKE:
            pattern = self.like_pattern(parts)
            return lambda e, k: self.like_tpl.format(expr=self.text_of(e, k), pattern=pattern)
        if ftype in TEXT_TYPES:
            pattern = self.like_pattern([p.lower() for p in parts])
            return lambda e, k: self._any(self.tokens_tpl.format(expr=self.text_of(e, k)),
                                          lambda v: self.like_tpl.format(expr=v, pattern=pattern))
        raise KqlCompileError(f"field '{field}' is of type {ftype}; wildcard queries need "
                              "keyword or text fields")

    def range_pred(self, field: str, ftype: str, op: str, value: Literal) -> ScalarPred:
        """A scalar predicate for ``field <op> value``."""
        sym = _OPS[op]
        raw = value.value
        if raw is None or isinstance(raw, bool):
            raise KqlCompileError(f"range on '{field}' needs a number, date or string, not {raw!r}")
        if ftype in NUMERIC_TYPES:
            num = to_number(raw)
            if num is None:
                raise KqlCompileError(f"field '{field}' is of type {ftype}, and '{raw}' is not a number")

            if ftype in INTEGRAL_TYPES and num.is_integer():
                whole = _exact_int(raw, num)
                return lambda e, k: f"{self.int_of(e, k)} {sym} {whole}"

            def numeric(e: str, k: str) -> str:
                n = (f"CAST({self.int_of(e, k)} AS DOUBLE)" if ftype in INTEGRAL_TYPES
                     else self.number_of(e, k))
                return f"({self.finite_tpl.format(expr=n)} AND {n} {sym} {num!r})"
            return numeric
        if ftype in ("date", "date_nanos"):
            return self._date_range(field, op, raw)
        if ftype == "ip":
            bound = self._ipv4(field, raw)
            if isinstance(bound, ipaddress.IPv4Network):
                raise KqlCompileError(f"field '{field}': a range bound must be an IP, not '{raw}'")
            b = int(bound)
            return lambda e, k: self._ip_test(e, k, lambda n: f"{n} {sym} {b}")
        if ftype in KEYWORD_LIKE:
            lit = self.lit(raw)
            return lambda e, k: f"{self.text_of(e, k)} {sym} {lit}"
        if ftype in TEXT_TYPES:
            low = self.lit(raw.lower())
            return lambda e, k: self._any(self.tokens_tpl.format(expr=self.text_of(e, k)),
                                          lambda v: f"{v} {sym} {low}")
        raise KqlCompileError(f"field '{field}' has unsupported type '{ftype}' for a range")

    def _date_range(self, field: str, op: str, raw: str) -> ScalarPred:
        # Elasticsearch rounds a partial date or /unit down for gte/lt and up for gt/lte.
        up = op in ("gt", "lte")
        bound = self._date_bounds(field, raw, up, up)[0]
        upward = op in ("gt", "gte")
        if bound < DATETIME_MIN_MS or bound > DATETIME_MAX_MS:
            # Beyond what the engine's timestamps hold: every date is on one side of it.
            if upward == (bound < DATETIME_MIN_MS):
                return lambda e, k: f"{self.date_of(e, k)} IS NOT NULL"
            return lambda e, k: self.false
        ts, sym = self.ts_literal_ms(bound), _OPS[op]
        return lambda e, k: f"{self.date_of(e, k)} {sym} {ts}"

    # -- field fan-out ---------------------------------------------------------------------
    def _on_fields(self, field: Value | None, make: Callable[[str], ScalarPred | None],
                   lenient: bool) -> str:
        if isinstance(field, Literal):
            name = field.text
            pred = make(name)
            if pred is None:
                return self.false
            # A multi-field (process.name.text) is indexed from its parent's value.
            parent = multi_field_parent(self.prefix + name, self.field_types)
            source = parent[len(self.prefix):] if parent is not None else name
            return self._or([self.over_values(a, pred) for a in self.accesses(source)])
        fits: Callable[[str], bool] = (
            (lambda n: True) if field is None else wildcard_matcher(field.parts))
        out: list[str] = []
        for name, acc in self.leaves_with_multi_fields():
            if not fits(name):
                continue
            try:
                pred = make(name)
            except KqlCompileError:
                if not lenient:
                    raise
                continue  # multi_match / expanded fields are lenient
            if pred is not None:
                out.append(self.over_values(acc, pred))
        return self._or(out)

    # -- node kinds ------------------------------------------------------------------------
    def visit_matchall(self, node: MatchAll) -> str:
        return self.true

    def visit_is(self, node: Is) -> str:
        value = node.value
        lenient = not isinstance(node.field, Literal)

        def make(name: str) -> ScalarPred | None:
            ftype = self._type(name)
            if isinstance(value, Wildcard):
                return self.wildcard_pred(name, ftype, value.parts)
            return self.equals_pred(name, ftype, value)

        return self._on_fields(node.field, make, lenient)

    def visit_range(self, node: Range) -> str:
        value = node.value
        if isinstance(value, Wildcard):
            raise UnsupportedError(f"range value '{value.text}' cannot be a wildcard pattern")
        return self._on_fields(node.field, lambda n: self.range_pred(n, self._type(n), node.op,
                                                                     value), False)

    def _exists(self, access: Access) -> str:
        t = access.type
        if t.kind == "map":
            return (self._coalesce(self.map_exists_tpl.format(expr=access.expr))
                    if self.map_exists_tpl else self.false)
        if t.kind == "struct":
            sub = type(self)(self.schema, self.field_types, self.prefix,
                             self._struct_entries(access.expr, t), self._vars, self._now())
            return self._or([sub._exists(a) for _, a in sub.leaves()])
        if t.kind == "list" and t.elem is not None and t.elem.kind == "struct":
            elem = t.elem
            return self._coalesce(self._any(access.expr, lambda v: self._exists(Access(v, elem))))
        if t.kind == "json" and self.json_exists_tpl:
            return self.json_exists_tpl.format(expr=access.expr)
        return self.over_values(access, lambda e, k: f"{e} IS NOT NULL")

    def visit_exists(self, node: Exists) -> str:
        field = node.field
        if isinstance(field, Wildcard):
            fits = wildcard_matcher(field.parts)
            return self._or([self._exists(a) for n, a in self.leaves() if fits(n)])
        name = field.text
        under = name + "."  # {"process.name": ..} makes the object `process` exist too
        return self._or([self._exists(a) for a in self.accesses(name)]
                        + [self._exists(a) for n, a in self.leaves() if n.startswith(under)])

    def visit_nested(self, node: Nested) -> str:
        if isinstance(node.field, Wildcard):
            raise UnsupportedError("a nested query needs a concrete path, not a wildcard")
        path = node.field.text
        out: list[str] = []
        for acc in self.accesses(path):
            t = acc.type
            if t.kind == "struct":
                # A NULL struct is a missing object: the inner query must not run on it.
                inner = self._inner(node.query, path, acc.expr, stype=t)
                out.append(f"({acc.expr} IS NOT NULL AND {inner})")
            elif t.kind == "list" and t.elem is not None and t.elem.kind == "struct":
                out.append(self._coalesce(self._any(
                    acc.expr, functools.partial(self._inner, node.query, path, stype=t.elem))))
            elif t.kind == "json":
                raise UnsupportedError(f"the {self.name} backend cannot run a nested query on "
                                       f"'{path}', whose values have mixed types (JSON)")
        # {"items.name": "a"} is the object {"items": {"name": "a"}} once indexed.
        under = path + "."
        synthetic = [(n[len(under):], e, t) for n, e, t in self.roots if n.startswith(under)]
        if synthetic:
            # The object exists only in rows that hold one of its dotted keys.
            present = self._or([self._exists(Access(e, t)) for _, e, t in synthetic])
            out.append(f"({present} AND {self._inner_roots(node.query, path, synthetic)})")
        return self._or(out)

    def _inner(self, query: Node, path: str, expr: str, *, stype: SType) -> str:
        return self._inner_roots(query, path, self._struct_entries(expr, stype))

    def _inner_roots(self, query: Node, path: str, roots: Sequence[tuple[str, str, SType]]) -> str:
        sub = type(self)(self.schema, self.field_types, f"{self.prefix}{path}.", roots, self._vars,
                         self._now())
        return sub.visit(query)

    def visit_not(self, node: Not) -> str:
        return f"(NOT {self.visit(node.child)})"

    def visit_and(self, node: And) -> str:
        parts = [self.visit(c) for c in node.children]
        if self.false in parts:
            return self.false
        return "(" + " AND ".join(parts) + ")"

    def visit_or(self, node: Or) -> str:
        return self._or([self._grouped(group) for group in self._groups(node.children)])

    def _groups(self, children: Sequence[Node]) -> list[list[Node]]:
        """Gather ``f:a or f:b or f:c*`` on one keyword field, so the field is read once."""
        return [list(g.nodes) if isinstance(g, ValueGroup) else [g]
                for g in group_values(children, lambda name: self._type(name) in KEYWORD_LIKE)]

    def _grouped(self, group: list[Node]) -> str:
        if len(group) == 1:
            return self.visit(group[0])
        first = group[0]
        assert isinstance(first, Is) and isinstance(first.field, Literal)
        literals = [n.value.text for n in group if isinstance(n, Is) and isinstance(n.value, Literal)]
        patterns = [self.like_pattern(n.value.parts) for n in group
                    if isinstance(n, Is) and isinstance(n.value, Wildcard)]

        def pred(e: str, k: str) -> str:
            t = self.text_of(e, k)
            tests = []
            if literals:
                tests.append(f"{t} IN ({', '.join(self.lit(x) for x in dict.fromkeys(literals))})")
            tests.extend(self.like_tpl.format(expr=t, pattern=p) for p in dict.fromkeys(patterns))
            return "(" + " OR ".join(tests) + ")"

        return self._or([self.over_values(a, pred) for a in self.accesses(first.field.text)])


def _exact_int(text: str, num: float) -> int:
    """The query number as an exact integer (``9007199254740993`` keeps its last digit)."""
    try:
        return int(text.strip())
    except ValueError:
        return int(num)
