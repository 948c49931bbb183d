"""Fuzz: KQL parse, lint and print on text from KQL's own alphabet.

Only KqlSyntaxError / KqlCompileError may come out; what parses must print
back to an equal tree, and lint must never raise.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from credwatch.backends.esdsl import compile_esdsl
from credwatch.backends.prefilter import derive_literals
from credwatch.backends.python import compile_query
from credwatch.errors import KqlCompileError, KqlSyntaxError
from credwatch.kql.lint import lint
from credwatch.kql.parser import parse
from credwatch.kql.printer import to_kql
from tests.fuzz import corpus, fuzz

_PIECES = [*'()"\\:*<>=!{} \n', "a", "b", "x.y", " or ", " and ", "not ", "\\u0041", "?",
           "((((((((((", "}}}}", "true", "null"]
_QUERIES = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)


def _check(query: str) -> None:
    lint(query)  # never raises: a bad query is a KQL000 finding
    try:
        ast = parse(query)
    except KqlSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1 and 0 <= exc.offset <= len(query)
        return
    assert parse(to_kql(ast)) == ast
    try:
        compile_query(ast).matches({"a": "x", "x": {"y": ["a", "b"]}})
        compile_esdsl(ast)
        derive_literals(ast)
    except KqlCompileError:
        pass


@fuzz
@given(_QUERIES)
def test_parse_lint_print_round_trip(query: str) -> None:
    _check(query)


def test_corpus() -> None:
    for data in corpus("kql"):
        _check(data.decode("utf-8", "replace"))
