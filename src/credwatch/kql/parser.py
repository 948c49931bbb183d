"""Parse KQL text into the :mod:`credwatch.kql.ast` tree.

The grammar lives in ``grammar.lark``; this module decodes literal tokens
(escapes, wildcards, ``true``/``false``/``null``) the way Kibana's grammar
does and expands value lists onto their field. Every lark error is turned into
a :class:`~credwatch.errors.KqlSyntaxError` with line, column and a caret.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from credwatch.errors import KqlSyntaxError
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
from credwatch.kql.tables import load_parser

_RANGE_OPS = {"<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}

#: Deepest nesting of ``( )`` and ``{ }`` a query may have. Each level adds at
#: most four tree levels (or, and, not, nested), and every pass over the tree
#: (printer, linter, backends, the evaluator itself) recurses per tree level,
#: so this keeps all of them far from Python's recursion limit. Real rules nest
#: a handful of levels; Kibana's own parser fails on deep input too.
MAX_NESTING = 50

# Characters that change the nesting or quoting state during the depth scan.
_NESTING_CHARS = re.compile(r'[\\"(){}]')

# One escape or one plain character, in Kibana's order of alternatives:
# \t \r \n first (so `\not` is a newline followed by "ot"), then \<special>,
# then \uXXXX, then \or \and \not.
_UNQUOTED_PIECE = re.compile(
    r"\\(?P<ws>[trn])|\\(?P<special>[\\():<>\"*{}])|\\u(?P<uni>[0-9a-fA-F]{4})"
    r"|\\(?P<kw>(?i:or|and|not))|(?P<star>\*)|(?P<char>.)",
    re.DOTALL,
)
_QUOTED_PIECE = re.compile(
    r"\\(?P<ws>[trn])|\\u(?P<uni>[0-9a-fA-F]{4})|\\(?P<special>[\\\"])|(?P<char>.)", re.DOTALL
)
_WS_ESCAPES = {"t": "\t", "r": "\r", "n": "\n"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    # Tables shipped as Python literals, never a cache file (see kql.tables).
    return load_parser()


def decode_quoted(raw: str, pos: int = -1) -> Literal:
    """Decode a ``"..."`` token (with its quotes) into a quoted literal."""
    out: list[str] = []
    for m in _QUOTED_PIECE.finditer(raw[1:-1]):
        if m.group("ws"):
            out.append(_WS_ESCAPES[m.group("ws")])
        elif m.group("uni"):
            out.append(chr(int(m.group("uni"), 16)))
        elif m.group("special"):
            out.append(m.group("special"))
        else:
            out.append(m.group("char"))
    return Literal("".join(out), quoted=True, pos=pos)


# JavaScript's String.prototype.trim: WhiteSpace (incl. U+FEFF and the Zs
# category) and LineTerminators. Python's str.strip also strips U+001C..U+001F
# and U+0085, which JavaScript keeps, so the set is spelled out.
JS_WHITESPACE = ("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")


def _js_trim(text: str) -> str:
    return text.strip(JS_WHITESPACE)


def decode_unquoted(raw: str, pos: int = -1) -> Value:
    """Decode an unquoted token into a literal or a wildcard pattern.

    Stars are kept as separators so that an escaped ``\\*`` stays a plain
    character. The text is trimmed after decoding, as Kibana trims the joined
    characters (so an escaped trailing ``\\n`` is trimmed too).
    """
    segments: list[list[str]] = [[]]
    for m in _UNQUOTED_PIECE.finditer(raw):
        if m.group("ws"):
            segments[-1].append(_WS_ESCAPES[m.group("ws")])
        elif m.group("special"):
            segments[-1].append(m.group("special"))
        elif m.group("uni"):
            segments[-1].append(chr(int(m.group("uni"), 16)))
        elif m.group("kw"):
            segments[-1].append(m.group("kw"))
        elif m.group("star"):
            segments.append([])
        else:
            segments[-1].append(m.group("char"))
    parts = ["".join(s) for s in segments]
    if len(parts) == 1:
        text = _js_trim(parts[0])
        if text == "null":
            return Literal(None, pos=pos)
        if text == "true":
            return Literal(True, pos=pos)
        if text == "false":
            return Literal(False, pos=pos)
        return Literal(text, pos=pos)
    # Trim the whole sequence: only the outer ends of the first and last parts.
    parts[0] = parts[0].lstrip(JS_WHITESPACE)
    parts[-1] = parts[-1].rstrip(JS_WHITESPACE)
    return Wildcard(tuple(parts), pos=pos)


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


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def check_nesting(query: str, limit: int = MAX_NESTING) -> None:
    """Raise :class:`KqlSyntaxError` at the first ``(`` or ``{`` nested deeper than ``limit``.

    A linear scan that runs before the grammar: it skips quoted strings and
    backslash escapes (so ``\\(`` and ``"("`` do not count) and only counts, leaving
    unbalanced brackets for the parser to report.
    """
    if query.count("(") + query.count("{") <= limit:
        return
    depth = 0
    in_quotes = False
    skip = -1  # index of a character escaped by a backslash
    for m in _NESTING_CHARS.finditer(query):
        pos = m.start()
        if pos == skip:
            continue
        ch = m.group()
        if ch == "\\":
            skip = pos + 1
        elif ch == '"':
            in_quotes = not in_quotes
        elif in_quotes:
            continue
        elif ch in "({":
            depth += 1
            if depth > limit:
                line, col = _line_col(query, pos)
                raise KqlSyntaxError(
                    f"query is nested too deeply (more than {limit} levels of parentheses "
                    "and braces)", query, line, col, pos)
        elif depth:
            depth -= 1


def parse(query: str) -> Node:
    """Parse a KQL query into an AST. Raises :class:`KqlSyntaxError` on bad input.

    The empty query matches everything (:class:`MatchAll`), as in Kibana. A
    query nested deeper than :data:`MAX_NESTING` is refused before parsing.
    """
    check_nesting(query)
    try:
        tree = _parser().parse(query)
    except UnexpectedCharacters as exc:
        offset = exc.pos_in_stream or 0
        found = query[offset] if offset < len(query) else "end of input"
        line, col = _line_col(query, offset)
        msg = f"Expected {_expected(exc.allowed)} but {found!r} found"
        raise KqlSyntaxError(msg, query, line, col, offset) from None
    except UnexpectedEOF as exc:
        line, col = _line_col(query, len(query))
        msg = f"Expected {_expected(set(exc.expected))} but end of input found"
        raise KqlSyntaxError(msg, query, line, col, len(query)) from None
    except UnexpectedToken as exc:
        tok = exc.token
        offset = tok.start_pos if tok.start_pos is not None else len(query)
        if tok.type == "$END":
            offset = len(query)
        line, col = _line_col(query, offset)
        found = "end of input" if tok.type == "$END" else repr(str(tok))
        msg = f"Expected {_expected(exc.accepts or exc.expected)} but {found} found"
        raise KqlSyntaxError(msg, query, line, col, offset) from None
    except LarkError as exc:  # pragma: no cover - any other lark failure
        line, col = _line_col(query, 0)
        raise KqlSyntaxError(str(exc).splitlines()[0], query, line, col, 0) from None
    children = [c for c in tree.children if not isinstance(c, Token)]
    if not children:
        return MatchAll(pos=0)
    # Recursive, but check_nesting bounds the depth far below the recursion limit.
    return _build(children[0])
