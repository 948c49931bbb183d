"""The lark side of the KQL parser: the LALR parser, its tree, and its errors.

Imported by :func:`credwatch.kql.parser.parse` only when a query has to be
parsed: a command running only the built-in rules gets their trees from
:mod:`credwatch.kql._prepared` and never loads lark (issue #15). Every lark
error becomes a :class:`~credwatch.errors.KqlSyntaxError` with line, column
and a caret.
"""

from __future__ import annotations

from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from credwatch.errors import KqlSyntaxError
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
from credwatch.kql.literals import decode_quoted, decode_unquoted, line_col
from credwatch.kql.tables import load_parser

_RANGE_OPS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    # Tables shipped as Python literals, never a cache file (see kql.tables).
    return load_parser()


def _literal(tok: Token) -> Value:
    pos = tok.start_pos if tok.start_pos is not None else -1
    if tok.type == "QUOTED":
        return decode_quoted(str(tok), pos)
    return decode_unquoted(str(tok), pos)


def _pos(tree: Tree[Token]) -> int:
    meta = tree.meta
    return meta.start_pos if not meta.empty else -1


def _build(tree: Tree[Token] | Token) -> Node:
    if isinstance(tree, Token):
        # A bare literal can only reach here through free_text, which is a rule.
        raise AssertionError(f"unexpected token {tree!r}")
    kind = tree.data
    if kind == "or_query":
        return Or(tuple(_build(c) for c in tree.children), pos=_pos(tree))
    if kind == "and_query":
        return And(tuple(_build(c) for c in tree.children), pos=_pos(tree))
    if kind == "not_expr":
        return Not(_build(tree.children[0]), pos=_pos(tree))
    if kind == "nested":
        field_tok, query = tree.children
        assert isinstance(field_tok, Token)
        return Nested(_literal(field_tok), _build(query), pos=_pos(tree))
    if kind == "range":
        field_tok, op_tok, value_tok = tree.children
        assert isinstance(field_tok, Token) and isinstance(op_tok, Token)
        assert isinstance(value_tok, Token)
        return Range(_literal(field_tok), _RANGE_OPS[str(op_tok).strip()], _literal(value_tok),
                     pos=_pos(tree))
    if kind == "field_value":
        field_tok, values = tree.children
        assert isinstance(field_tok, Token)
        return _build_values(_literal(field_tok), values)
    if kind == "free_text":
        tok = tree.children[0]
        assert isinstance(tok, Token)
        return _is(None, _literal(tok), tok.start_pos or 0)
    raise AssertionError(f"unknown parse node {kind}")


def _is(field: Value | None, value: Value, pos: int) -> Node:
    """Build ``is(field, value)`` with Kibana's special cases for ``*``."""
    if isinstance(value, Wildcard) and value.is_lone:
        if field is None or (isinstance(field, Wildcard) and field.is_lone):
            return MatchAll(pos=pos)
        return Exists(field, pos=pos)
    return Is(field, value, pos=pos)


def _build_values(field: Value, tree: Tree[Token] | Token) -> Node:
    if isinstance(tree, Token):
        return _is(field, _literal(tree), tree.start_pos or 0)
    kind = tree.data
    if kind == "or_values":
        return Or(tuple(_build_values(field, c) for c in tree.children), pos=_pos(tree))
    if kind == "and_values":
        return And(tuple(_build_values(field, c) for c in tree.children), pos=_pos(tree))
    if kind == "not_value":
        return Not(_build_values(field, tree.children[0]), pos=_pos(tree))
    raise AssertionError(f"unknown value node {kind}")


_TERMINAL_NAMES = {
    "_OR": "OR",
    "_AND": "AND",
    "_NOT": "NOT",
    "_LPAR": '"("',
    "_RPAR": '")"',
    "_LBRACE": '"{"',
    "_RBRACE": '"}"',
    "_COLON": '":"',
    "RANGE_OP": "range operator",
    "QUOTED": "quoted string",
    "UNQUOTED": "value",
    "_WS": "whitespace",
    "$END": "end of input",
}


def _expected(names: set[str] | frozenset[str] | None) -> str:
    if not names:
        return "a valid query"
    nice = sorted({_TERMINAL_NAMES.get(n, n) for n in names})
    return ", ".join(nice)


def parse_text(query: str) -> Node:
    """Parse ``query`` with the grammar (its nesting already checked). Raises :class:`KqlSyntaxError`."""
    try:
        tree = _parser().parse(query)
    except UnexpectedCharacters as exc:
        offset = exc.pos_in_stream or 0
        found = query[offset] if offset < len(query) else "end of input"
        line, col = line_col(query, offset)
        msg = f"Expected {_expected(exc.allowed)} but {found!r} found"
        raise KqlSyntaxError(msg, query, line, col, offset) from None
    except UnexpectedEOF as exc:
        line, col = line_col(query, len(query))
        msg = f"Expected {_expected(set(exc.expected))} but end of input found"
        raise KqlSyntaxError(msg, query, line, col, len(query)) from None
    except UnexpectedToken as exc:
        tok = exc.token
        offset = tok.start_pos if tok.start_pos is not None else len(query)
        if tok.type == "$END":
            offset = len(query)
        line, col = line_col(query, offset)
        found = "end of input" if tok.type == "$END" else repr(str(tok))
        msg = f"Expected {_expected(exc.accepts or exc.expected)} but {found} found"
        raise KqlSyntaxError(msg, query, line, col, offset) from None
    except LarkError as exc:  # pragma: no cover - any other lark failure
        line, col = line_col(query, 0)
        raise KqlSyntaxError(str(exc).splitlines()[0], query, line, col, 0) from None
    children = [c for c in tree.children if not isinstance(c, Token)]
    if not children:
        return MatchAll(pos=0)
    # Recursive, but check_nesting bounds the depth far below the recursion limit.
    return _build(children[0])
