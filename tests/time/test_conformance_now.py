"""The `now` conformance table on the Python evaluator.

The same rows run on DuckDB, Spark and the ES DSL (tests/backends/test_duckdb.py,
test_spark.py, test_esdsl.py). Every target evaluates with the table's fixed clock: the
Python evaluator through :func:`credwatch.timemath.evaluating_at`, the SQL
and DSL targets through their ``now`` argument.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from credwatch.backends.python import compile_query
from credwatch.timemath import evaluating_at
from tests.backends.conformance_run import TIME_NOW, Run, time_runs

RUNS = time_runs()


@pytest.mark.parametrize("run", [pytest.param(r, id=r.label) for r in RUNS])
def test_python_evaluator(run: Run) -> None:
    matcher = compile_query(run.case.query)
    with evaluating_at(TIME_NOW):
        got = matcher.matches(run.event)
    assert got is run.case.expected, f"{run.case.why}\nquery: {run.case.query!r}"


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


def test_now_at_any_instant_including_minus_one_ms() -> None:
    """The per-now cache has no sentinel instant: 1969-12-31T23:59:59.999Z is a `now` too."""
    from datetime import UTC, datetime

    matcher = compile_query("@timestamp:now/d")
    with evaluating_at(datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)):
        assert matcher.matches({"@timestamp": "1969-12-31T12:00:00Z"})
