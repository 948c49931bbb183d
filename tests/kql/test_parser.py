"""Parser behaviour that Kibana's grammar pins down, including its quirks."""

from __future__ import annotations

import time

import pytest

from credwatch.errors import KqlSyntaxError
from credwatch.kql import parse, to_kql
from credwatch.kql.ast import And, Exists, Is, Literal, MatchAll, Nested, Not, Or, Range, Wildcard
from credwatch.kql.parser import MAX_NESTING


def lit(v: str | bool | None, quoted: bool = False) -> Literal:
    return Literal(v, quoted)


def test_precedence_not_binds_tighter_than_and() -> None:
    assert parse("not a:b and c:d") == And((Not(Is(lit("a"), lit("b"))), Is(lit("c"), lit("d"))))


def test_precedence_and_binds_tighter_than_or() -> None:
    ast = parse("a:1 or b:2 and c:3")
    assert ast == Or((Is(lit("a"), lit("1")), And((Is(lit("b"), lit("2")), Is(lit("c"), lit("3"))))))


def test_value_list_precedence_matches_query_precedence() -> None:
    assert parse("f:(a or b and not c)") == parse("f:a or (f:b and not f:c)")


@pytest.mark.parametrize("kw", ["or", "OR", "Or", "oR"])
def test_keywords_are_case_insensitive(kw: str) -> None:
    assert parse(f"a:b {kw} c:d") == parse("a:b or c:d")


def test_unquoted_value_keeps_inner_whitespace_and_trims_ends() -> None:
    assert parse("msg:  hello   world  ") == Is(lit("msg"), lit("hello   world"))


def test_unquoted_value_runs_over_newlines_missing_or_merges_patterns() -> None:
    ast = parse("process.args:(*a/b.xml\n  *c/d.json or x)")
    assert isinstance(ast, Or)
    first = ast.children[0]
    assert isinstance(first, Is) and first.value == Wildcard(("", "a/b.xml\n  ", "c/d.json"))


def test_keyword_needs_whitespace_on_both_sides() -> None:
    # `a:b and` at the end: " and" is not followed by whitespace, so it is value text.
    assert parse("a:b and") == Is(lit("a"), lit("b and"))


def test_not_inside_a_word_ends_the_value_as_kibana_does() -> None:
    # Kibana checks for `not<space>` at every character, even mid-word.
    with pytest.raises(KqlSyntaxError):
        parse("msg:cannot find")
    assert parse(r"msg:can\not find") == Is(lit("msg"), lit("can\not find"))


def test_true_false_null_literals_vs_quoted() -> None:
    assert parse("a:true") == Is(lit("a"), lit(True))
    assert parse("a:false") == Is(lit("a"), lit(False))
    assert parse("a:null") == Is(lit("a"), lit(None))
    assert parse('a:"true"') == Is(lit("a"), lit("true", quoted=True))


@pytest.mark.parametrize(
    ("query", "value"),
    [
        (r"a:x\ty", "x\ty"),
        (r"a:x\(y\)", "x(y)"),
        (r"a:x\:y", "x:y"),
        (r"a:x\\y", "x\\y"),
        (r"a:x\"y", 'x"y'),
        (r"a:\u0041b", "Ab"),
        (r"a:x \or y", "x or y"),
        (r"a:x \and y", "x and y"),
        (r"a:x\*y", "x*y"),
    ],
)
def test_unquoted_escapes(query: str, value: str) -> None:
    assert parse(query) == Is(lit("a"), lit(value))


@pytest.mark.parametrize(
    ("query", "value"),
    [(r'a:"x\"y"', 'x"y'), (r'a:"x\\y"', "x\\y"), (r'a:"x\ty"', "x\ty"), (r'a:"\u0041"', "A"),
     (r'a:"x\qy"', "x\\qy"), ('a:"a*b"', "a*b"), ('a:"a or b"', "a or b")],
)
def test_quoted_values_are_literal(query: str, value: str) -> None:
    assert parse(query) == Is(lit("a"), lit(value, quoted=True))


def test_wildcards_and_escaped_star() -> None:
    assert parse("a:x*y*") == Is(lit("a"), Wildcard(("x", "y", "")))
    assert parse(r"a:x\**") == Is(lit("a"), Wildcard(("x*", "")))
    assert parse("a:x?y") == Is(lit("a"), lit("x?y"))


def test_exists_match_all_nested_range() -> None:
    assert parse("a:*") == Exists(lit("a"))
    assert parse("") == MatchAll()
    assert parse("   ") == MatchAll()
    assert parse("*") == MatchAll()
    assert parse("*:*") == MatchAll()
    assert parse("p:{ name:cat and pid > 3 }") == Nested(
        lit("p"), And((Is(lit("name"), lit("cat")), Range(lit("pid"), "gt", lit("3"))))
    )
    assert parse("x<=5") == Range(lit("x"), "lte", lit("5"))


def test_free_text_and_wildcard_fields() -> None:
    assert parse("shadow") == Is(None, lit("shadow"))
    assert parse("process.*:cat") == Is(Wildcard(("process.", "")), lit("cat"))


@pytest.mark.parametrize(
    ("query", "line", "column"),
    [("a:(b", 1, 5), ("a:b and\n  (c:d", 2, 7), ("a:b or (c:d", 1, 12), ("a:b)", 1, 4),
     ("a:\\x", 1, 3), ('a:"unterminated', 1, 3), ("not not a:b", 1, 5)],
)
def test_syntax_errors_have_position_and_caret(query: str, line: int, column: int) -> None:
    with pytest.raises(KqlSyntaxError) as info:
        parse(query)
    err = info.value
    assert (err.line, err.column) == (line, column), err.render()
    excerpt_line, caret = err.excerpt.splitlines()
    assert caret.index("^") == column - 1
    assert excerpt_line == query.splitlines()[line - 1]


def test_printer_groups_value_lists_and_round_trips() -> None:
    q = 'process.name:(cat or head) and not process.args:("/etc/shadow" or */.ssh/id_rsa)'
    assert to_kql(parse(q)) == q
    assert parse(to_kql(parse(q))) == parse(q)


@pytest.mark.parametrize(("prefix", "opener"), [
    ("", "("), ("f:", "("), ("a:b or ", "x:{ "), ("not ", "(not "),
])
def test_deep_nesting_is_a_syntax_error_at_the_first_bracket_too_deep(prefix: str,
                                                                     opener: str) -> None:
    deep = prefix + opener * 100_000 + "a:b"
    start = time.perf_counter()
    with pytest.raises(KqlSyntaxError, match="nested too deeply") as info:
        parse(deep)
    assert time.perf_counter() - start < 1
    err = info.value
    # The first bracket past the bound, on line 1.
    bracket = max(opener.find("("), opener.find("{"))
    assert err.offset == len(prefix) + MAX_NESTING * len(opener) + bracket
    assert deep[err.offset] in "({" and (err.line, err.column) == (1, err.offset + 1)


def test_nesting_at_the_bound_parses_and_quoted_or_escaped_brackets_do_not_count() -> None:
    at_bound = "(" * MAX_NESTING + "a:b" + ")" * MAX_NESTING
    assert parse(at_bound) == Is(lit("a"), lit("b"))
    with pytest.raises(KqlSyntaxError, match="nested too deeply"):
        parse("(" + at_bound + ")")
    brackets = "((((" * MAX_NESTING
    assert parse(f'a:"{brackets}"') == Is(lit("a"), Literal(brackets, quoted=True))
    escaped = "\\(" * (MAX_NESTING + 1)
    assert parse(f"a:{escaped}") == Is(lit("a"), lit("(" * (MAX_NESTING + 1)))


def test_double_or_makes_a_field_named_or_as_kibana_does() -> None:
    # After " or ", Kibana's UnquotedLiteral happily starts with "or": the field is "or c".
    assert parse("a:b or or c:d") == Or((Is(lit("a"), lit("b")), Is(lit("or c"), lit("d"))))
