"""Golden shapes of the Elasticsearch DSL target, one per node kind.

The expected objects are written out by hand from Kibana's kbn-es-query
``functions/{is,and,or,not,range,nested,exists}.ts`` with field types loaded
(as the detection engine does) and ``dateFormatTZ: Zulu``; a change in shape
fails here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from credwatch.backends.esdsl import (
    EsDslBackend,
    compile_esdsl,
    query_string_escape,
    search_body,
    to_json,
)
from credwatch.errors import UnsupportedError
from credwatch.kql import parse
from credwatch.rules.loader import default_rule
from credwatch.timemath import parse_date_bounds_ms, parse_instant

from .conformance_run import TIME_CASES, TIME_NOW


def should(*queries: Any) -> dict[str, Any]:
    return {"bool": {"should": list(queries), "minimum_should_match": 1}}


GOLDEN: list[tuple[str, dict[str, Any]]] = [
    # keyword: term with a value object and no case_insensitive
    ("process.name:cat", should({"term": {"process.name": {"value": "cat"}}})),
    # keyword pattern: wildcard with query_string escaping of reserved characters
    ("process.executable:/tmp/*",
     should({"wildcard": {"process.executable": {"value": "\\/tmp\\/*"}}})),
    ("process.args:a?b*", should({"wildcard": {"process.args": {"value": "a\\?b*"}}})),
    # a quoted star is a literal character of a term
    ('process.args:"a*b"', should({"term": {"process.args": {"value": "a*b"}}})),
    # booleans and null keep their JSON types
    ("custom.flag:true", should({"term": {"custom.flag": {"value": True}}})),
    # long field: match, not term
    ("process.pid:5", should({"match": {"process.pid": "5"}})),
    # wildcard-typed field (command_line): match / match_phrase and query_string
    ('process.command_line:"cat x"', should({"match_phrase": {"process.command_line": "cat x"}})),
    ("process.command_line:*shadow*",
     should({"query_string": {"fields": ["process.command_line"], "query": "*shadow*"}})),
    # text field
    ("message:error", should({"match": {"message": "error"}})),
    # date: a range with equal bounds and the Zulu time zone; epoch has no time zone
    ("@timestamp:2024-05-01",
     should({"range": {"@timestamp": {"gte": "2024-05-01", "lte": "2024-05-01",
                                      "time_zone": "Zulu"}}})),
    ("@timestamp:1714521600000",
     should({"range": {"@timestamp": {"gte": "1714521600000", "lte": "1714521600000"}}})),
    # ranges
    ("process.pid >= 5", should({"range": {"process.pid": {"gte": "5"}}})),
    ('@timestamp < "2024-05-01T00:00:00Z"',
     should({"range": {"@timestamp": {"lt": "2024-05-01T00:00:00Z", "time_zone": "Zulu"}}})),
    # exists (KQL f:* is the `is` function with a lone wildcard)
    ("process.name:*", should({"exists": {"field": "process.name"}})),
    ("*:*", {"match_all": {}}),
    ("", {"match_all": {}}),
    # free text
    ("cat", {"multi_match": {"type": "best_fields", "query": "cat", "lenient": True}}),
    ('"cat dog"', {"multi_match": {"type": "phrase", "query": "cat dog", "lenient": True}}),
    ("shad*", {"query_string": {"query": "shad*"}}),
    # boolean structure
    ("a:1 and b:2", {"bool": {"filter": [should({"term": {"a": {"value": "1"}}}),
                                         should({"term": {"b": {"value": "2"}}})]}}),
    ("a:1 or b:2", should(should({"term": {"a": {"value": "1"}}}),
                          should({"term": {"b": {"value": "2"}}}))),
    ("not a:1", {"bool": {"must_not": should({"term": {"a": {"value": "1"}}})}}),
    # nested: the path prefixes inner field names; score_mode none
    ("items:{ name:a and value:1 }",
     {"nested": {"path": "items", "score_mode": "none", "query": {"bool": {"filter": [
         should({"term": {"items.name": {"value": "a"}}}),
         should({"term": {"items.value": {"value": "1"}}})]}}}}),
    ("a:{ b:{ c:x } }",
     {"nested": {"path": "a", "score_mode": "none", "query": {"nested": {
         "path": "a.b", "score_mode": "none",
         "query": should({"term": {"a.b.c": {"value": "x"}}})}}}}),
]


@pytest.mark.parametrize(("kql", "expected"), GOLDEN, ids=[q or "<empty>" for q, _ in GOLDEN])
def test_golden(kql: str, expected: dict[str, Any]) -> None:
    assert compile_esdsl(kql) == expected


def test_wildcard_field_names_expand_against_index_fields() -> None:
    fields = {"custom.a": "keyword", "custom.n": "long", "other": "keyword"}
    assert compile_esdsl("custom.*:cat", index_fields=fields) == should(
        {"term": {"custom.a": {"value": "cat"}}}, {"match": {"custom.n": "cat"}})
    # Without a field list Kibana sends the pattern through as the field name.
    assert compile_esdsl("custom.*:cat") == should({"match": {"custom.*": "cat"}})


def test_field_type_overrides_and_time_zone() -> None:
    assert compile_esdsl("x:5", field_types={"x": "long"}) == should({"match": {"x": "5"}})
    got = compile_esdsl("@timestamp > now-5m", date_format_tz=None)
    assert got == should({"range": {"@timestamp": {"gt": "now-5m"}}})


def test_filters_in_must_clause_is_data() -> None:
    class MustBackend(EsDslBackend):
        and_clause = "must"

    assert MustBackend().visit(parse("a:1 and b:1"))["bool"].keys() == {"must"}


def test_unsupported_nodes_raise() -> None:
    with pytest.raises(UnsupportedError, match="concrete path"):
        compile_esdsl("i*:{ a:b }")


def test_query_string_escape() -> None:
    assert query_string_escape('a+b-c=d&e|f>g<h!i(j)k{l}m[n]o^p"q~r*s?t:u\\v/w') == (
        'a\\+b\\-c\\=d\\&e\\|f\\>g\\<h\\!i\\(j\\)k\\{l\\}m\\[n\\]o\\^p\\"q\\~r\\*s\\?t\\:u\\\\v\\/w')


def test_seed_rule_compiles_to_the_expected_skeleton() -> None:
    query = compile_esdsl(default_rule().query)
    clauses = query["bool"]["filter"]
    assert len(clauses) == 5
    assert clauses[0] == should({"term": {"host.os.type": {"value": "linux"}}})
    assert clauses[2] == should(should({"term": {"event.action": {"value": "exec"}}}),
                                should({"term": {"event.action": {"value": "executed"}}}))
    paths = clauses[4]["bool"]["should"]
    assert len(paths) == 27
    assert paths[0] == should({"term": {"process.args": {
        "value": "/var/run/secrets/kubernetes.io/serviceaccount/token"}}})
    assert should({"wildcard": {"process.args": {"value": "*\\/.aws\\/cli\\/cache\\/*.json"}}}) \
        in paths
    text = to_json(query)
    assert "case_insensitive" not in text
    assert json.loads(text) == query
    assert search_body(default_rule().query)["query"] == query


# ------------------------------------------------ the `now` table, resolved at its clock

def _es_bound(value: Any, op: str) -> int:
    """How ES reads a bound with no date math: epoch ms, or a date rounded for ``op``."""
    if isinstance(value, int):
        return value
    assert isinstance(value, str)
    assert "now" not in value and "||" not in value, f"date math left unresolved: {value!r}"
    bounds = parse_date_bounds_ms(value)
    assert bounds is not None, value
    return bounds[1] if op in ("gt", "lte") else bounds[0]


_ES_RANGE = {"gt": lambda d, b: d > b, "gte": lambda d, b: d >= b,
             "lt": lambda d, b: d < b, "lte": lambda d, b: d <= b}


def _es_answer(query: dict[str, Any], event: dict[str, Any]) -> bool:
    """Answer a compiled single-field date query the way Elasticsearch's range query does."""
    (clause,) = query["bool"]["should"]
    ((field, params),) = clause["range"].items()
    value = parse_instant(event.get(field))
    if value is None:
        return False
    return all(_ES_RANGE[op](value, _es_bound(v, op)) for op, v in params.items() if op in _ES_RANGE)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in TIME_CASES])
def test_conformance_now(case: Any) -> None:
    """The `now` rows: with the table's clock the DSL holds instants ES answers as expected."""
    query = compile_esdsl(case.query, now=TIME_NOW)
    assert _es_answer(query, case.event) is case.expected, f"{case.why}\n{query}"


def test_esdsl_without_now_sends_date_math_as_written() -> None:
    """Kibana sends date math through and ES resolves it at search time."""
    query = compile_esdsl("@timestamp >= now-1M/M", date_format_tz=None)
    assert query["bool"]["should"][0] == {"range": {"@timestamp": {"gte": "now-1M/M"}}}
    resolved = compile_esdsl("@timestamp:now/d", date_format_tz=None, now=TIME_NOW)
    assert resolved["bool"]["should"][0] == {"range": {"@timestamp": {
        "gte": "2026-01-31T00:00:00.000Z", "lte": "2026-01-31T23:59:59.999Z"}}}
