"""Print an AST back to canonical KQL.

The output re-parses to an equal tree (``parse(to_kql(ast)) == ast``). Runs of
comparisons on one field are regrouped into value lists, so the seed rule
prints as ``process.name:(busybox or cat or ...)`` rather than as 40 repeated
field names.
"""

from __future__ import annotations

import re
from typing import assert_never

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
from credwatch.kql.passes import value_list_field

_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_SPECIAL = set('\\():<>"*{}')
_WS_OUT = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}
# A keyword inside an unquoted value would end the value. `or`/`and` are
# escaped as \or / \and. `\not` cannot be used, because Kibana reads `\n`
# first, so the leading letter of `not` is written as a \u escape instead.
# A value's end is followed by whitespace in context (` or `), so a keyword at
# the very end must be escaped too.
_KEYWORD_IN_VALUE = re.compile(r"(?<=\s)(?i:or|and)(?=\s|$)|(?i:not)(?=\s|$)")


def _escape_unquoted(text: str) -> str:
    out: list[str] = []
    last = 0
    for m in _KEYWORD_IN_VALUE.finditer(text):
        out.append(_escape_chars(text[last : m.start()]))
        word = m.group(0)
        if word.lower() == "not":
            out.append(f"\\u{ord(word[0]):04x}{word[1:]}")
        else:
            out.append("\\" + word)
        last = m.end()
    out.append(_escape_chars(text[last:]))
    return "".join(out)


def _escape_chars(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch in _SPECIAL:
            out.append("\\" + ch)
        elif ch in _WS_OUT:
            out.append(_WS_OUT[ch])
        elif ch.isspace() and ch != " ":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _quote(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    for raw, esc in _WS_OUT.items():
        body = body.replace(raw, esc)
    return f'"{body}"'


def print_value(value: Value) -> str:
    """Print one literal or wildcard value as KQL source."""
    if isinstance(value, Wildcard):
        parts = [_escape_unquoted(p) for p in value.parts]
        return "*".join(parts)
    if value.quoted:
        return _quote(value.text)
    if isinstance(value.value, str):
        if value.value in ("true", "false", "null"):
            # Only reachable when built by hand; as written unquoted it would
            # become a keyword literal, so spell the first letter as an escape.
            return f"\\u{ord(value.value[0]):04x}{value.value[1:]}"
        if value.value == "":
            return "\\u0020"
        return _escape_unquoted(value.value)
    return value.text


def _values(node: Node) -> str:
    """Print the value part of a value-list subtree (field already known)."""
    if isinstance(node, Is):
        return print_value(node.value)
    if isinstance(node, Exists):
        return "*"
    if isinstance(node, Not):
        inner = node.child
        text = _values(inner)
        return f"not ({text})" if isinstance(inner, (And, Or, Not)) else f"not {text}"
    if isinstance(node, Or):
        return " or ".join(
            f"({_values(c)})" if isinstance(c, Or) else _values(c) for c in node.children
        )
    assert isinstance(node, And)
    return " and ".join(
        f"({_values(c)})" if isinstance(c, (And, Or)) else _values(c) for c in node.children
    )


def to_kql(node: Node) -> str:
    """Print ``node`` as canonical KQL."""
    match node:
        case Or() | And():
            field = value_list_field(node)
            if field is not None:
                return f"{print_value(field)}:({_values(node)})"
            if isinstance(node, Or):
                return " or ".join(
                    f"({to_kql(c)})" if isinstance(c, Or) and value_list_field(c) is None
                    else to_kql(c) for c in node.children)
            return " and ".join(f"({to_kql(c)})" if _needs_parens_in_and(c) else to_kql(c)
                                for c in node.children)
        case Not():
            inner = node.child
            wrap = isinstance(inner, Not) or (isinstance(inner, (And, Or))
                                              and value_list_field(inner) is None)
            return f"not ({to_kql(inner)})" if wrap else f"not {to_kql(inner)}"
        case Is():
            if node.field is None:
                return print_value(node.value)
            return f"{print_value(node.field)}:{print_value(node.value)}"
        case Exists():
            return f"{print_value(node.field)}:*"
        case MatchAll():
            return "*"
        case Range():
            return f"{print_value(node.field)} {_OPS[node.op]} {print_value(node.value)}"
        case Nested():
            return f"{print_value(node.field)}:{{ {to_kql(node.query)} }}"
        case _:
            assert_never(node)


def _needs_parens_in_and(child: Node) -> bool:
    # A grouped value list prints as one expression, so it needs no parentheses;
    # an ungrouped And must keep its own to preserve the tree shape.
    return isinstance(child, (And, Or)) and value_list_field(child) is None


def pretty(node: Node, indent: str = "  ") -> str:
    """Print ``node`` over several lines, one top-level clause per line."""
    if isinstance(node, And) and value_list_field(node) is None:
        return " and\n".join(
            f"({to_kql(c)})" if _needs_parens_in_and(c) else to_kql(c) for c in node.children
        )
    return to_kql(node)


__all__ = ["Literal", "pretty", "print_value", "to_kql"]
