"""Property tests: the parser, printer and evaluator on generated input."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from credwatch.backends.python import compile_query
from credwatch.errors import KqlCompileError, KqlSyntaxError
from credwatch.kql import parse, to_kql
from credwatch.kql.ast import Node

from .strategies import asts, events

_KQLISH = st.lists(
    st.sampled_from([*'ab:()"*\\{}<>= \tnortu.\n/', " or ", " and ", "not ", "\u00a0", "\\u00"])
).map("".join)


@given(st.one_of(st.text(), _KQLISH))
def test_parser_raises_only_kql_syntax_error(text: str) -> None:
    try:
        parse(text)
    except KqlSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1
        assert "^" in exc.excerpt


@given(asts)
def test_printer_round_trip(ast: Node) -> None:
    printed = to_kql(ast)
    assert parse(printed) == ast, printed


@given(asts, events)
def test_evaluator_never_raises_on_events(ast: Node, event: dict[str, Any]) -> None:
    try:
        matcher = compile_query(ast)
    except KqlCompileError:
        # A type clash (e.g. a non-numeric range on a long field) is refused at
        # compile time, loudly; it never reaches an event.
        return
    assert isinstance(matcher.matches(event), bool)
    hits = matcher.explain(event)
    assert isinstance(hits, list)
