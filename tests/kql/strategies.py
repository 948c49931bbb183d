"""Hypothesis strategies for KQL ASTs and ECS-like events.

Generated ASTs are restricted to trees the parser can produce (for example an
unquoted literal never has outer whitespace, because Kibana trims it).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

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
    Wildcard,
)

_CHARS = st.sampled_from([*list("abcXYZ019./-_ "), "\\", "(", ")", ":", "<", ">", '"', "{", "}", "\t", "\n", "\xa0", "é", "?", "*"])
_WORDS = st.sampled_from(["or", "and", "not", "OR", "Not", "cat", "/etc/shadow", " or ", " and ",
                          "not ", "true", "null"])
_RAW = st.lists(st.one_of(_CHARS, _WORDS), min_size=1, max_size=8).map("".join)


def _unquoted_text(s: str) -> bool:
    return s == s.strip() and s.strip() != "" and s not in ("true", "false", "null")


unquoted_literal = _RAW.filter(_unquoted_text).map(lambda s: Literal(s))
quoted_literal = _RAW.map(lambda s: Literal(s, quoted=True))
keyword_literal = st.sampled_from([Literal(True), Literal(False), Literal(None)])


@st.composite
def wildcards(draw: st.DrawFn) -> Wildcard:
    parts = draw(st.lists(st.one_of(st.just(""), _RAW), min_size=2, max_size=4))
    parts[0] = parts[0].lstrip()
    parts[-1] = parts[-1].rstrip()
    if all(p == "" for p in parts):
        parts[0] = "x"
    return Wildcard(tuple(parts))


values = st.one_of(unquoted_literal, quoted_literal, keyword_literal, wildcards())
fields = st.one_of(
    st.sampled_from(["process.name", "process.args", "host.os.type", "a", "b.c"]).map(Literal),
    unquoted_literal,
    quoted_literal,
)


def leaves(field_st: st.SearchStrategy[Any] = fields) -> st.SearchStrategy[Node]:
    return st.one_of(
        st.builds(Is, field_st, values),
        st.builds(Is, st.none(), values),
        st.builds(Exists, field_st),
        st.just(MatchAll()),
        st.builds(Range, field_st, st.sampled_from(["lt", "lte", "gt", "gte"]),
                  st.one_of(unquoted_literal, quoted_literal)),
    )


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    many = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(
        many.map(And),
        many.map(Or),
        children.map(Not),
        st.builds(Nested, st.sampled_from(["process.parent", "x"]).map(Literal), children),
    )


asts: st.SearchStrategy[Node] = st.recursive(leaves(), _extend, max_leaves=12)

_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=False),
    st.sampled_from(["cat", "CAT", "/etc/shadow", "linux", "process", "", "10.0.0.1", "5",
                     "2026-01-01T00:00:00Z", "x y", "a*b", "?"]),
)
_KEYS = st.sampled_from(["process", "name", "args", "host", "os", "type", "a", "b", "c",
                         "process.name", "b.c", "parent", "x"])
events = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=20,
).map(lambda v: v if isinstance(v, dict) else {"a": v})
