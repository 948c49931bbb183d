"""The ``[[syntax]]`` tables against ``credwatch.kql.parse``.

Accepted queries must parse, equal their ``same_as`` query's AST, and survive
the printer round trip ``parse(to_kql(parse(q))) == parse(q)``. Rejected
queries must raise ``KqlSyntaxError`` (never another exception), at the given
line and column when the table gives one, with a caret excerpt.
"""

from __future__ import annotations

import pytest

from credwatch.errors import KqlSyntaxError
from credwatch.kql import parse, to_kql

from .conformance import SyntaxCase, load_syntax_cases

SYNTAX = load_syntax_cases()
ACCEPTED = [pytest.param(c, id=c.id) for c in SYNTAX if c.ok]
REJECTED = [pytest.param(c, id=c.id) for c in SYNTAX if not c.ok]
SAME_AS = [pytest.param(c, id=c.id) for c in SYNTAX if c.same_as is not None]


@pytest.mark.parametrize("case", ACCEPTED)
def test_accepted(case: SyntaxCase) -> None:
    parse(case.query)


@pytest.mark.parametrize("case", SAME_AS)
def test_same_as(case: SyntaxCase) -> None:
    assert case.same_as is not None
    assert parse(case.query) == parse(case.same_as), case.why


@pytest.mark.parametrize("case", REJECTED)
def test_rejected(case: SyntaxCase) -> None:
    with pytest.raises(KqlSyntaxError) as info:
        parse(case.query)
    err = info.value
    if case.line is not None:
        assert err.line == case.line, (err.render(), case.why)
    if case.column is not None:
        assert err.column == case.column, (err.render(), case.why)
    # The excerpt is the offending line with a caret under the column.
    caret_line = err.excerpt.splitlines()[-1]
    assert caret_line.strip() == "^"
    assert len(caret_line) == err.column


@pytest.mark.parametrize("case", ACCEPTED)
def test_round_trip(case: SyntaxCase) -> None:
    ast = parse(case.query)
    printed = to_kql(ast)
    assert parse(printed) == ast, printed


def test_table_size() -> None:
    assert len(SYNTAX) >= 50
    assert len(REJECTED) >= 20
    assert len(SAME_AS) >= 20
