"""KQL → Elasticsearch query DSL, shaped as Kibana's ``toElasticsearchQuery`` builds it.

The detection engine loads the index's field types before it translates a
rule (``get_query_filter_load_fields.ts``), so every comparison is typed. This
backend reproduces those shapes (``kbn-es-query`` ``src/kuery/functions``):

* ``f:v`` → ``bool.should[...]`` with ``minimum_should_match: 1``, holding per
  matching field a ``term`` (keyword), ``wildcard`` (keyword with ``*``),
  ``query_string`` (a pattern on any other type), a ``range`` with equal
  ``gte``/``lte`` (date) or ``match``/``match_phrase`` (everything else);
* ``f:*`` → the same ``bool.should`` around ``exists``; ``*:*`` → ``match_all``;
* free text → ``multi_match`` (``lenient``, ``best_fields`` or ``phrase``) or
  ``query_string`` for a pattern;
* ``and`` → ``bool.filter``; ``or`` → ``bool.should`` + ``minimum_should_match``;
  ``not`` → ``bool.must_not`` (an object, not a list); ``f:{q}`` → ``nested``
  with ``score_mode: none`` and the path prefixed to inner field names.

Kibana never sets ``case_insensitive`` for detection rules, so it is absent.
The result is a plain ``dict``; :func:`to_json` renders it.

Date math: without ``now`` a date value is sent as written (``now-1d/d``),
which is what Kibana does, and Elasticsearch resolves it at search time. With
``now`` (a fixed clock, or to compare targets), values that use date math
(``now…`` or ``date||…``) are resolved by :mod:`credwatch.timemath`, with ES's
rounding for each bound, into ISO-8601 UTC instants (epoch milliseconds
outside years 1..9999), so the DSL agrees with every other target. Plain dates
(``2024-05-01``) are always sent as written: ES rounds them the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from credwatch.backends.base import Visitor
from credwatch.backends.pymatch import query_date, wildcard_matcher
from credwatch.errors import UnsupportedError
from credwatch.kql.ast import (
    And,
    Exists,
    Is,
    MatchAll,
    Nested,
    Node,
    Not,
    Or,
    Range,
    Value,
    Wildcard,
)
from credwatch.kql.fields import field_type
from credwatch.kql.parser import parse
from credwatch.timemath import datetime_to_ms, format_ms, year_of

Query = dict[str, Any]

#: Characters ``query_string`` (and Kibana's wildcard rendering) escapes with ``\``.
_QS_RESERVED = re.compile(r'([+\-=&|><!(){}\[\]^"~*?:\\/])')
_EPOCH = re.compile(r"^\d+$")


def query_string_escape(text: str) -> str:
    """Escape the query_string reserved characters of one literal run of a pattern."""
    return _QS_RESERVED.sub(r"\\\1", text)


def wildcard_value(value: Wildcard) -> str:
    """Render a KQL pattern the way Kibana sends it to ``wildcard`` and ``query_string``."""
    return "*".join(query_string_escape(p) for p in value.parts)


class EsDslBackend(Visitor[Query]):
    """Translate an AST into one Elasticsearch query object.

    ``field_types`` overrides the built-in ECS type table; ``index_fields``
    (name → type) is the index's field list, used to expand wildcard field
    names as Kibana's ``getFields`` does. Without it a wildcard field name is
    sent as-is, which is also what Kibana does when no field matches.
    ``date_format_tz`` is the ``time_zone`` Kibana adds to date ranges (the
    detection engine passes ``Zulu``); ``None`` leaves it out. ``now``, when
    given, resolves date math in date values (see the module docstring).
    """

    name: ClassVar[str] = "esdsl"
    #: The clause ``and`` uses (Kibana's ``filtersInMustClause`` switches it to ``must``).
    and_clause: ClassVar[str] = "filter"
    #: Types that Kibana treats as keyword: exactly one ES type, ``keyword``.
    keyword_types: ClassVar[frozenset[str]] = frozenset({"keyword"})
    date_types: ClassVar[frozenset[str]] = frozenset({"date", "date_nanos"})

    def __init__(self, field_types: Mapping[str, str] | None = None,
                 index_fields: Mapping[str, str] | None = None,
                 date_format_tz: str | None = "Zulu", nested_path: str | None = None,
                 now: datetime | None = None) -> None:
        self.field_types = dict(field_types or {})
        self.now = now
        self.index_fields = dict(index_fields) if index_fields is not None else None
        self.date_format_tz = date_format_tz
        self.nested_path = nested_path

    # -- fields ---------------------------------------------------------------------------
    def _full_name(self, field: Value) -> str:
        name = field.text
        return f"{self.nested_path}.{name}" if self.nested_path else name

    def _fields(self, field: Value) -> list[tuple[str, str | None]]:
        """The concrete (name, type) pairs a field node stands for."""
        full = self._full_name(field)
        if isinstance(field, Wildcard):
            parts = list(field.parts)
            if self.nested_path:
                parts[0] = f"{self.nested_path}.{parts[0]}"
            fits = wildcard_matcher(parts)
            if self.index_fields is not None:
                found: list[tuple[str, str | None]] = [(n, t) for n, t in sorted(self.index_fields.items()) if fits(n)]
                if found:
                    return found
            # No field list: Kibana sends the name through with no type.
            return [("*".join(parts), None)]
        if self.index_fields is not None and full in self.index_fields:
            return [(full, self.index_fields[full])]
        return [(full, field_type(full, self.field_types))]

    @staticmethod
    def _should(queries: list[Query]) -> Query:
        return {"bool": {"should": queries, "minimum_should_match": 1}}

    def _date_value(self, name: str, value: Any, round_up: bool) -> Any:
        """``value`` as sent for a date field: date math resolved when ``now`` is set."""
        if self.now is None or not isinstance(value, str):
            return value
        text = value.strip()
        if not text.startswith("now") and "||" not in text:
            return value
        ms = query_date(name, value).resolve_ms(datetime_to_ms(self.now), round_up)
        return format_ms(ms) if 1 <= year_of(ms) <= 9999 else ms

    def _range_extra(self, value: Any) -> dict[str, Any]:
        epoch = not isinstance(value, str) or bool(_EPOCH.match(value))
        return {"time_zone": self.date_format_tz} if self.date_format_tz and not epoch else {}

    # -- node kinds -----------------------------------------------------------------------
    def visit_matchall(self, node: MatchAll) -> Query:
        return {"match_all": {}}

    def visit_exists(self, node: Exists) -> Query:
        return self._should([{"exists": {"field": name}} for name, _ in self._fields(node.field)])

    def visit_is(self, node: Is) -> Query:
        value = node.value
        if node.field is None:
            if isinstance(value, Wildcard):
                return {"query_string": {"query": wildcard_value(value)}}
            kind = "phrase" if value.quoted else "best_fields"
            return {"multi_match": {"type": kind, "query": value.value, "lenient": True}}
        queries: list[Query] = []
        for name, ftype in self._fields(node.field):
            if isinstance(value, Wildcard):
                pattern = wildcard_value(value)
                if ftype in self.keyword_types:
                    queries.append({"wildcard": {name: {"value": pattern}}})
                else:
                    queries.append({"query_string": {"fields": [name], "query": pattern}})
            elif ftype in self.date_types:
                bound = value.value
                low, high = self._date_value(name, bound, False), self._date_value(name, bound, True)
                queries.append({"range": {name: {"gte": low, "lte": high,
                                                 **self._range_extra(low)}}})
            elif ftype in self.keyword_types:
                queries.append({"term": {name: {"value": value.value}}})
            else:
                kind = "match_phrase" if value.quoted else "match"
                queries.append({kind: {name: value.value}})
        return self._should(queries)

    def visit_range(self, node: Range) -> Query:
        if isinstance(node.value, Wildcard):
            raise UnsupportedError(f"range value '{node.value.text}' cannot be a wildcard pattern")
        bound = node.value.value
        queries: list[Query] = []
        for name, ftype in self._fields(node.field):
            params: dict[str, Any] = {node.op: bound}
            if ftype in self.date_types:
                params[node.op] = self._date_value(name, bound, node.op in ("gt", "lte"))
                params.update(self._range_extra(params[node.op]))
            queries.append({"range": {name: params}})
        return self._should(queries)

    def visit_nested(self, node: Nested) -> Query:
        if isinstance(node.field, Wildcard):
            raise UnsupportedError("a nested query needs a concrete path, not a wildcard")
        path = self._full_name(node.field)
        inner = type(self)(self.field_types, self.index_fields, self.date_format_tz, path, self.now)
        return {"nested": {"path": path, "query": inner.visit(node.query), "score_mode": "none"}}

    def visit_and(self, node: And) -> Query:
        return {"bool": {self.and_clause: [self.visit(c) for c in node.children]}}

    def visit_or(self, node: Or) -> Query:
        return self._should([self.visit(c) for c in node.children])

    def visit_not(self, node: Not) -> Query:
        return {"bool": {"must_not": self.visit(node.child)}}


def compile_esdsl(query: str | Node, field_types: Mapping[str, str] | None = None,
                  index_fields: Mapping[str, str] | None = None,
                  date_format_tz: str | None = "Zulu", now: datetime | None = None) -> Query:
    """Translate KQL (text or AST) into the query object Kibana would send.

    With ``now``, date math in date values is resolved to instants (see the module docstring).
    """
    ast = parse(query) if isinstance(query, str) else query
    return EsDslBackend(field_types, index_fields, date_format_tz, now=now).visit(ast)


def to_json(query: Query, indent: int | None = 2) -> str:
    """Render a query object as JSON (non-ASCII kept readable)."""
    return json.dumps(query, indent=indent, ensure_ascii=False)


def search_body(query: str | Node, field_types: Mapping[str, str] | None = None,
                size: int = 100) -> dict[str, Any]:
    """A ``_search`` body that runs the rule's query (a detection engineer's copy-paste)."""
    return {"size": size, "query": compile_esdsl(query, field_types)}


__all__ = ["EsDslBackend", "compile_esdsl", "query_string_escape", "search_body",
           "to_json", "wildcard_value"]
