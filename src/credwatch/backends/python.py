"""The in-process evaluator: compile a KQL AST once into closures over events.

Semantics are those of Kibana's detection engine on ECS indices (see
``docs``/semantics §3): case-sensitive keyword matching, any array element may
match, missing fields make comparisons false, ``f:*`` is an exists check,
values are typed by the field's mapping, and nested JSON, flat dotted keys and
mixtures give the same answer.

:func:`compile_query` returns a :class:`Matcher` with a fast ``matches`` path
and an ``explain`` path that reports which clauses matched on which values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from credwatch.backends.base import Visitor
from credwatch.backends.pymatch import (
    ValueTest,
    equals_test,
    keyword_text,
    range_test,
    wildcard_matcher,
    wildcard_test,
)
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
from credwatch.kql.fields import KEYWORD_LIKE, field_type, multi_field_parent, multi_fields_of
from credwatch.kql.parser import parse
from credwatch.kql.passes import ValueGroup, group_values
from credwatch.kql.printer import to_kql
from credwatch.normalize.flatten import get_objects, get_values, iter_leaves

Event = Mapping[str, Any]
Predicate = Callable[[Event], bool]


@dataclass(frozen=True, slots=True)
class Hit:
    """One clause that matched, and the event value that satisfied it."""

    clause: str  #: the KQL of the matching comparison, e.g. ``process.name:cat``
    field: str  #: the event field (dotted), e.g. ``process.args``
    value: Any  #: the event value that matched
    index: int | None  #: position in a multi-valued field, or None for a single value
    pattern: str  #: the query value that matched it (``*`` kept for wildcards)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for alert documents."""
        return {"clause": self.clause, "field": self.field, "value": self.value,
                "index": self.index, "pattern": self.pattern}


#: ``(id(object), field) -> (object, values with their array index)`` for one explain call.
ExplainMemo = dict[tuple[int, str], tuple[Any, list[tuple[str, Any, "int | None"]]]]


class Compiled:
    """A compiled sub-query: a fast predicate plus an explaining walk."""

    __slots__ = ("test",)

    def __init__(self, test: Predicate) -> None:
        self.test = test

    def hits(self, event: Event) -> list[Hit] | None:
        """Hits when this sub-query matches ``event``, or None when it does not."""
        raise NotImplementedError


class _Leaf(Compiled):
    __slots__ = ("clause", "finder")

    def __init__(self, test: Predicate, clause: str,
                 finder: Callable[[Event], list[tuple[str, Any, int | None]]]) -> None:
        super().__init__(test)
        self.clause = clause
        self.finder = finder

    def hits(self, event: Event) -> list[Hit] | None:
        found = self.finder(event)
        if not found:
            return None
        pattern = self.clause.split(":", 1)[-1]
        return [Hit(self.clause, f, v, i, pattern) for f, v, i in found]


class _Bool(Compiled):
    __slots__ = ("children", "kind")

    def __init__(self, test: Predicate, kind: str, children: Sequence[Compiled]) -> None:
        super().__init__(test)
        self.kind = kind
        self.children = tuple(children)

    def hits(self, event: Event) -> list[Hit] | None:
        if self.kind == "not":
            return [] if not self.children[0].test(event) else None
        out: list[Hit] = []
        matched = False
        for child in self.children:
            sub = child.hits(event)
            if sub is None:
                if self.kind == "and":
                    return None
                continue
            matched = True
            out.extend(sub)
        return out if matched or self.kind == "and" else None


class _NestedC(Compiled):
    __slots__ = ("inner", "path")

    def __init__(self, test: Predicate, path: str, inner: Compiled) -> None:
        super().__init__(test)
        self.path = path
        self.inner = inner

    def hits(self, event: Event) -> list[Hit] | None:
        for obj in get_objects(event, self.path):
            sub = self.inner.hits(obj)
            if sub is not None:
                return [Hit(h.clause, f"{self.path}.{h.field}", h.value, h.index, h.pattern)
                        for h in sub]
        return None


class Matcher:
    """A compiled query. ``matches`` is the hot path; ``explain`` is for alerts."""

    __slots__ = ("ast", "matches", "memo", "query", "root")

    def __init__(self, ast: Node, root: Compiled, query: str, memo: ExplainMemo | None = None) -> None:
        self.ast = ast
        self.root = root
        self.query = query
        self.matches: Predicate = root.test
        self.memo: ExplainMemo = {} if memo is None else memo

    def explain(self, event: Event) -> list[Hit]:
        """Return the clauses that matched ``event`` (empty if it does not match).

        Field values are resolved once per call and shared by the leaves (the
        memo keeps a reference to each object it keys by ``id``, so an id cannot
        be reused while it is cached); a Matcher must not explain from two
        threads at once.
        """
        try:
            return self.root.hits(event) or []
        finally:
            self.memo.clear()


def iter_fields(event: Event) -> Iterator[tuple[str, Any]]:
    """Every (field, value) Elasticsearch indexes: leaves plus their multi-fields."""
    for name, value in iter_leaves(event):
        yield name, value
        for sub in multi_fields_of(name):
            yield sub, value


def _values_with_index(event: Event, name: str) -> list[tuple[str, Any, int | None]]:
    vals = get_values(event, name)
    if len(vals) == 1:
        return [(name, vals[0], None)]
    return [(name, v, i) for i, v in enumerate(vals)]


class PythonEvaluator(Visitor[Compiled]):
    """Compile AST nodes into :class:`Compiled` closures."""

    name: ClassVar[str] = "python"

    def __init__(self, field_types: Mapping[str, str] | None = None, prefix: str = "",
                 memo: ExplainMemo | None = None) -> None:
        self.field_types = dict(field_types or {})
        self.prefix = prefix
        #: Field values already resolved during one ``explain`` (see :class:`Matcher`).
        self.memo: ExplainMemo = {} if memo is None else memo

    # -- helpers ---------------------------------------------------------------------------
    def _type(self, name: str) -> str:
        return field_type(self.prefix + name, self.field_types)

    def _value_test(self, name: str, value: Value, lenient: bool = False) -> ValueTest:
        ftype = self._type(name)
        try:
            if isinstance(value, Wildcard):
                return wildcard_test(name, ftype, value.parts)
            return equals_test(name, ftype, value.value, value.quoted)
        except KqlCompileError:
            if lenient:
                return lambda v: False
            raise

    def _leaf_for_fields(self, clause: str, field: Value | None,
                         make_test: Callable[[str], ValueTest]) -> Compiled:
        """Build a leaf over a concrete field, a wildcard field, or all fields."""
        if isinstance(field, Literal) and field.value is not None and not isinstance(field.value, bool):
            name = field.value
            return self._single_field_leaf(clause, name, make_test(name))
        if isinstance(field, Literal):
            name = field.text
            return self._single_field_leaf(clause, name, make_test(name))
        # A wildcard field name, or free text (field None): every field that fits.
        fits: Callable[[str], bool] = (
            (lambda n: True) if field is None else wildcard_matcher(field.parts)
        )
        cache: dict[str, ValueTest] = {}

        def test_for(name: str) -> ValueTest:
            t = cache.get(name)
            if t is None:
                try:
                    t = make_test(name)
                except KqlCompileError:
                    # Expanded and free-text fields are lenient (multi_match lenient:true).
                    t = lambda v: False  # noqa: E731
                cache[name] = t
            return t

        def find(event: Event) -> list[tuple[str, Any, int | None]]:
            return [(n, v, None) for n, v in iter_fields(event) if fits(n) and test_for(n)(v)]

        def test(event: Event) -> bool:
            return any(fits(n) and test_for(n)(v) for n, v in iter_fields(event))

        return _Leaf(test, clause, find)

    def _single_field_leaf(self, clause: str, name: str, vtest: ValueTest) -> Compiled:
        # A multi-field (process.name.text) is read from its parent's value.
        source = multi_field_parent(self.prefix + name, self.field_types)
        if source is not None:
            name = source[len(self.prefix):]

        def test(event: Event) -> bool:
            return any(vtest(v) for v in get_values(event, name))

        memo = self.memo

        def find(event: Event) -> list[tuple[str, Any, int | None]]:
            # `f:(a or b or ...)` compiles to one leaf per value; resolve the field once.
            key = (id(event), name)
            cached = memo.get(key)
            if cached is None:
                cached = memo[key] = (event, _values_with_index(event, name))
            return [(f, v, i) for f, v, i in cached[1] if vtest(v)]

        return _Leaf(test, clause, find)

    # -- node kinds ------------------------------------------------------------------------
    def visit_matchall(self, node: MatchAll) -> Compiled:
        return _Bool(lambda e: True, "and", ())

    def visit_is(self, node: Is) -> Compiled:
        clause = to_kql(node)
        value = node.value
        lenient = node.field is None or isinstance(node.field, Wildcard)
        return self._leaf_for_fields(clause, node.field,
                                     lambda name: self._value_test(name, value, lenient))

    def visit_exists(self, node: Exists) -> Compiled:
        clause = to_kql(node)
        field = node.field
        if isinstance(field, Wildcard):
            fits = wildcard_matcher(field.parts)

            def find_w(event: Event) -> list[tuple[str, Any, int | None]]:
                for n, v in iter_leaves(event):
                    if fits(n):
                        return [(n, v, None)]
                return []

            return _Leaf(lambda e: bool(find_w(e)), clause, find_w)
        name = field.text
        parts = name.split(".")

        def find(event: Event) -> list[tuple[str, Any, int | None]]:
            vals = get_values(event, name)
            if vals:
                return [(name, vals[0], 0 if len(vals) > 1 else None)]
            # `exists` on an object field matches when any sub-field has a value,
            # whether stored nested or as flat dotted keys (get_objects builds those).
            for obj in get_objects(event, parts):
                for sub, val in iter_leaves(obj):
                    return [(f"{name}.{sub}", val, None)]
            return []

        def test(event: Event) -> bool:
            return bool(get_values(event, name)) or bool(find(event))

        return _Leaf(test, clause, find)

    def visit_range(self, node: Range) -> Compiled:
        if isinstance(node.value, Wildcard):
            raise UnsupportedError(f"range value '{node.value.text}' cannot be a wildcard pattern")
        clause = to_kql(node)
        value = node.value.value
        op = node.op
        return self._leaf_for_fields(
            clause, node.field, lambda name: range_test(name, self._type(name), op, value)
        )

    def visit_nested(self, node: Nested) -> Compiled:
        if isinstance(node.field, Wildcard):
            raise UnsupportedError("a nested query needs a concrete path, not a wildcard")
        path = node.field.text
        inner = PythonEvaluator(self.field_types, self.prefix + path + ".", self.memo).visit(node.query)
        inner_test = inner.test
        parts = path.split(".")

        def test(event: Event) -> bool:
            return any(inner_test(obj) for obj in get_objects(event, parts))

        return _NestedC(test, path, inner)

    def visit_not(self, node: Not) -> Compiled:
        child = self.visit(node.child)
        ctest = child.test
        return _Bool(lambda e: not ctest(e), "not", (child,))

    def visit_and(self, node: And) -> Compiled:
        children = [self.visit(c) for c in node.children]
        tests = tuple(c.test for c in children)
        return _Bool(lambda e: all(t(e) for t in tests), "and", children)

    def visit_or(self, node: Or) -> Compiled:
        children = [self.visit(c) for c in node.children]
        tests = self._grouped_or_tests(node.children, children)
        return _Bool(lambda e: any(t(e) for t in tests), "or", children)

    def _grouped_or_tests(self, nodes: Sequence[Node], compiled: Sequence[Compiled]
                          ) -> tuple[Predicate, ...]:
        """Fold ``f:(a or b or c*)`` on a keyword field into one field read.

        Value lists are the bulk of the seed rule (40 tool names, 27 paths);
        reading the field once and testing a set plus a few patterns is much
        cheaper than 40 separate lookups. Other children keep their own test.
        """
        own = {id(node): comp.test for node, comp in zip(nodes, compiled, strict=True)}
        tests: list[Predicate] = []
        for item in group_values(nodes, lambda name: self._type(name) in KEYWORD_LIKE):
            if isinstance(item, ValueGroup):
                tests.append(_set_test(item.field, frozenset(item.literals),
                                       tuple(wildcard_matcher(p) for p in item.patterns)))
            else:
                tests.append(own[id(item)])
        return tuple(tests)


def _set_test(name: str, literals: frozenset[str],
              patterns: tuple[Callable[[str], bool], ...]) -> Predicate:
    # The dotted name (not its parts): get_values caches its walk plan per name.
    def test(event: Event) -> bool:
        for v in get_values(event, name):
            s = v if isinstance(v, str) else keyword_text(v)
            if s in literals:
                return True
            for p in patterns:
                if p(s):
                    return True
        return False

    return test


def compile_query(query: str | Node, field_types: Mapping[str, str] | None = None) -> Matcher:
    """Parse (if needed) and compile ``query`` into a :class:`Matcher`.

    ``field_types`` overrides the built-in ECS type table per field name.
    Raises :class:`~credwatch.errors.KqlSyntaxError` or
    :class:`~credwatch.errors.KqlCompileError`.
    """
    ast = parse(query) if isinstance(query, str) else query
    text = query if isinstance(query, str) else to_kql(query)
    evaluator = PythonEvaluator(field_types)
    root = evaluator.visit(ast)
    return Matcher(ast, root, text, evaluator.memo)
