"""The KQL conformance table through the Spark SQL target on a real local Spark.

Spark starts once per test session (``local[1]``). To keep the file fast, the
(case, event shape) pairs are packed into a few DataFrames whose events have
compatible shapes (Spark widens a field that is a scalar in one row and an
object or array in another into a string of raw JSON), and each pack is
evaluated with one ``select`` of many compiled expressions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pyspark = pytest.importorskip("pyspark")

from credwatch.backends.spark import (  # noqa: E402
    compile_spark,
    local_session,
    read_ndjson,
    schema_of,
    spark_filter,
)
from credwatch.errors import UnsupportedError  # noqa: E402
from credwatch.rules.loader import default_rule  # noqa: E402

from .conformance_run import (  # noqa: E402
    IPV6_CASES,
    TIME_NOW,
    Run,
    all_runs,
    packs,
    time_runs,
)

#: Cases whose event holds an array nested in an array *together with* scalars:
#: Spark's JSON reader cannot type ``[["a", ["b"]], "c"]`` and keeps the whole
#: array as one raw JSON string, so its elements are not separate values.
SPARK_KNOWN_DIFFERENT = {
    "shape-deep-arrays": "Spark reads a mixed-depth array as one string",
    "shape-deep-array-objects": "a.b is an array in one object and an object in another: "
                                "Spark types it as one raw JSON string",
}
_BATCH = 40


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    session = local_session("credwatch-tests")
    yield session


@pytest.fixture(scope="session")
def spark_results(spark: Any) -> dict[str, bool | Exception]:
    """Evaluate every conformance run; map its label to the answer or the error."""
    return _evaluate(spark, [r for r in all_runs() if r.case.id not in SPARK_KNOWN_DIFFERENT])


@pytest.fixture(scope="session")
def spark_time_results(spark: Any) -> dict[str, bool | Exception]:
    """Evaluate the `now` table with its fixed clock."""
    return _evaluate(spark, time_runs(), now=TIME_NOW)


def _evaluate(spark: Any, runs: list[Run], now: Any = None) -> dict[str, bool | Exception]:
    from pyspark.sql import functions as F

    results: dict[str, bool | Exception] = {}
    for pack in packs(runs):
        df = read_ndjson(spark, [json.dumps(r.event) for r in pack])
        schema = schema_of(df)
        df = df.withColumn("__cw_row", F.monotonically_increasing_id())
        compiled: list[tuple[int, str]] = []
        for i, run in enumerate(pack):
            try:
                compiled.append((i, compile_spark(run.case.query, schema, run.case.field_types,
                                                  now)))
            except UnsupportedError as exc:
                results[run.label] = exc
        for start in range(0, len(compiled), _BATCH):
            chunk = compiled[start:start + _BATCH]
            cols = [F.expr(sql).alias(f"m{i}") for i, sql in chunk]
            rows = sorted(df.select("__cw_row", *cols).collect(), key=lambda r: r["__cw_row"])
            for i, _ in chunk:
                results[pack[i].label] = bool(rows[i][f"m{i}"])
    return results


RUNS = [r for r in all_runs() if r.case.id not in SPARK_KNOWN_DIFFERENT]


@pytest.mark.parametrize("run", [pytest.param(r, id=r.label) for r in RUNS])
def test_conformance(run: Run, spark_results: dict[str, bool | Exception]) -> None:
    got = spark_results[run.label]
    if run.case.id in IPV6_CASES:
        assert isinstance(got, UnsupportedError) and "IPv4 only" in str(got)
        return
    assert got is run.case.expected, f"{run.case.why}\nquery: {run.case.query!r}"


@pytest.mark.parametrize("run", [pytest.param(r, id=r.label) for r in time_runs()])
def test_conformance_now(run: Run, spark_time_results: dict[str, bool | Exception]) -> None:
    """The `now`/rounding/months rows, with date math resolved at the table's clock."""
    assert spark_time_results[run.label] is run.case.expected, (
        f"{run.case.why}\nquery: {run.case.query!r}")


def test_known_differences_are_real(spark: Any) -> None:
    """The listed difference still exists (remove it from the list when Spark handles it)."""
    df = read_ndjson(spark, ['{"process": {"args": [["a", ["b"]], "c"]}}'])
    assert spark_filter(df, "process.args:b").count() == 0
    df = read_ndjson(spark, ['{"a": [{"b": [{"c": "x"}]}, {"b": {"c": "y"}}]}'])
    assert spark_filter(df, "a.b.c:y").count() == 0


def test_seed_rule_and_missing_columns(spark: Any, tmp_path: Any) -> None:
    events = [
        {"host": {"os": {"type": "linux"}}, "event": {"category": ["process"], "action": "exec"},
         "process": {"name": "cat", "args": ["cat", "/root/.aws/credentials"]}},
        {"host": {"os": {"type": "linux"}}, "event": {"category": ["process"], "action": "exec"},
         "process": {"name": "cat", "args": ["cat", "/root/.aws/config"]}},
        {"host": {"os": {"type": "linux"}}, "event": {"category": ["process"], "action": "exec"},
         "process": {"name": "CAT", "args": ["CAT", "/etc/shadow"]}},
    ]
    path = tmp_path / "e.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    df = read_ndjson(spark, path)
    assert spark_filter(df, default_rule().query).count() == 1
    assert spark_filter(df, "nope:x").count() == 0
    assert spark_filter(df, "not nope:x").count() == 3




def test_pack_count_is_small() -> None:
    """The packing keeps the number of Spark jobs low (the file must stay well under 60 s)."""
    runs = all_runs()
    assert len(packs(runs)) < len(runs) // 5
