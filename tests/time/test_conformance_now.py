"""The `now` conformance table on the Python evaluator and the ES DSL target.

The same rows run on DuckDB and Spark (tests/backends/test_duckdb.py,
test_spark.py). Every target evaluates with the table's fixed clock: the
Python evaluator through :func:`credwatch.timemath.evaluating_at`, the SQL
and DSL targets through their ``now`` argument.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from credwatch.backends.esdsl import compile_esdsl
from credwatch.backends.python import compile_query
from credwatch.timemath import evaluating_at, parse_date_bounds_ms, parse_instant
from tests.backends.conformance_run import TIME_CASES, TIME_NOW, Run, time_runs

RUNS = time_runs()


@pytest.mark.parametrize("run", [pytest.param(r, id=r.label) for r in RUNS])
def test_python_evaluator(run: Run) -> None:
    matcher = compile_query(run.case.query)
    with evaluating_at(TIME_NOW):
        got = matcher.matches(run.event)
    assert got is run.case.expected, f"{run.case.why}\nquery: {run.case.query!r}"


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
def test_esdsl_resolved_with_now(case: Any) -> None:
    query = compile_esdsl(case.query, now=TIME_NOW)
    assert _es_answer(query, case.event) is case.expected, f"{case.why}\n{query}"


def test_esdsl_without_now_sends_date_math_as_written() -> None:
    """Kibana sends date math through and ES resolves it at search time."""
    query = compile_esdsl("@timestamp >= now-1M/M", date_format_tz=None)
    assert query["bool"]["should"][0] == {"range": {"@timestamp": {"gte": "now-1M/M"}}}
    resolved = compile_esdsl("@timestamp:now/d", date_format_tz=None, now=TIME_NOW)
    assert resolved["bool"]["should"][0] == {"range": {"@timestamp": {
        "gte": "2026-01-31T00:00:00.000Z", "lte": "2026-01-31T23:59:59.999Z"}}}


def test_compiled_matcher_reads_now_at_evaluation() -> None:
    """One compiled query, two clocks: `now` is not frozen when the query is compiled."""
    matcher = compile_query("@timestamp >= now-10m")
    event = {"@timestamp": "2026-01-31T10:10:00.000Z"}
    with evaluating_at(TIME_NOW):  # now-10m = 10:07:42.5: the event is inside
        assert matcher.matches(event)
    with evaluating_at(TIME_NOW + timedelta(minutes=10)):  # now-10m = 10:17:42.5: outside
        assert not matcher.matches(event)
    with evaluating_at(TIME_NOW):  # the per-now cache follows the clock back
        assert matcher.matches(event)
