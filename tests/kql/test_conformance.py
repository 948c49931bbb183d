"""The KQL conformance table against the in-process Python evaluator.

Every case in ``tests/fixtures/kql/*.toml`` states what Kibana's detection
engine (KQL -> Elasticsearch query on ECS-mapped indices) returns for one
document. Each case runs on the event as written, fully flat-dotted and fully
nested; all three must give the expected answer. The printed form of the
query (``to_kql``) must give the same answers too.
"""

from __future__ import annotations

from typing import Any

import pytest

from credwatch.backends.python import compile_query
from credwatch.kql import parse, to_kql

from .conformance import Case, event_forms, flat_form, load_cases, nested_form

CASES = load_cases()
FORMS = ("as-written", "flat", "nested")


def _params() -> list[Any]:
    return [pytest.param(case, form, id=f"{case.id}[{form}]") for case in CASES for form in FORMS]


@pytest.mark.parametrize(("case", "form"), _params())
def test_case(case: Case, form: str) -> None:
    event = event_forms(case.event)[form]
    matcher = compile_query(case.query, case.field_types)
    assert matcher.matches(event) is case.expected, (
        f"{case.id} ({case.source}): {case.why}\nquery: {case.query!r}\nevent: {event!r}"
    )


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_printed_query_agrees(case: Case) -> None:
    """to_kql(parse(q)) is the same query: same AST and the same answer as q.

    Compared with the original query's answer rather than ``expected`` so a
    printer bug and an evaluator bug are reported separately.
    """
    ast = parse(case.query)
    printed = to_kql(ast)
    assert parse(printed) == ast, printed
    original = compile_query(case.query, case.field_types).matches(case.event)
    assert compile_query(printed, case.field_types).matches(case.event) is original, printed


# ------------------------------------------------------- the table itself


def test_table_size_and_balance() -> None:
    """The acceptance bar: at least 150 cases, with both answers well represented."""
    assert len(CASES) >= 150
    positives = sum(c.expected for c in CASES)
    assert positives >= 50
    assert len(CASES) - positives >= 50


def test_seed_query_cases_cover_both_answers() -> None:
    seed = [c for c in CASES if c.query_ref == "seed"]
    assert {c.expected for c in seed} == {True, False}
    assert len({c.query for c in seed}) == 1


def test_flat_form_shapes() -> None:
    event = {"process": {"name": "cat", "parent": [{"name": "a", "x": {"y": 1}}]},
             "process.args": ["b"], "host": {}}
    assert flat_form(event) == {
        "process.name": "cat",
        "process.parent": [{"name": "a", "x.y": 1}],
        "process.args": ["b"],
    }


def test_flat_form_merges_two_spellings() -> None:
    event = {"process": {"args": ["a"]}, "process.args": ["b", None]}
    assert flat_form(event) == {"process.args": ["a", "b", None]}


def test_nested_form_shapes() -> None:
    event = {"process.parent": [{"sub.name": "a"}], "process": {"name": "cat"},
             "process.name": "dog", "@timestamp": 1}
    assert nested_form(event) == {
        "process": {"parent": [{"sub": {"name": "a"}}], "name": ["cat", "dog"]},
        "@timestamp": 1,
    }


def test_forms_do_not_alias_the_original() -> None:
    event = {"process": {"args": ["a"]}}
    for form in event_forms(event).values():
        if "process" in form:
            form["process"]["args"].append("x")
        else:
            form["process.args"].append("x")
    assert event == {"process": {"args": ["a"]}}
