"""The KQL conformance table, run through the DuckDB SQL target on real DuckDB.

Each case's event (in all three shapes) is written to an NDJSON file, read with
``read_ndjson`` as credwatch reads it, and filtered with the compiled WHERE.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from credwatch.backends.duckdb import (
    compile_duckdb,
    connect,
    duckdb_scan,
    read_sql,
    schema_of,
    show_sql,
)
from credwatch.errors import UnsupportedError
from credwatch.rules.loader import default_rule

from .conformance_run import IPV6_CASES, TIME_NOW, Run, all_runs, packs, time_runs

RUNS = all_runs()


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return connect()


def _write(path: Path, events: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


@pytest.mark.parametrize("run", [pytest.param(r, id=r.label) for r in RUNS])
def test_conformance(run: Run, tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = _write(tmp_path / "e.ndjson", [run.event])
    if run.case.id in IPV6_CASES:
        with pytest.raises(UnsupportedError, match="IPv4 only"):
            duckdb_scan(path, run.case.query, run.case.field_types, con)
        return
    got = duckdb_scan(path, run.case.query, run.case.field_types, con) == [0]
    assert got is run.case.expected, f"{run.case.why}\nquery: {run.case.query!r}"


@pytest.mark.parametrize("run", [pytest.param(r, id=r.label) for r in time_runs()])
def test_conformance_now(run: Run, tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """The `now`/rounding/months rows, with date math resolved at the table's clock."""
    path = _write(tmp_path / "e.ndjson", [run.event])
    got = duckdb_scan(path, run.case.query, run.case.field_types, con, now=TIME_NOW) == [0]
    assert got is run.case.expected, f"{run.case.why}\nquery: {run.case.query!r}"


def test_missing_column_and_not(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """A column that does not exist is FALSE, its negation TRUE; NULL never leaks."""
    path = _write(tmp_path / "e.ndjson", [{"a": "x"}, {"a": None}, {"b": "y"}])
    assert duckdb_scan(path, "nope:x", con=con) == []
    assert duckdb_scan(path, "not nope:x", con=con) == [0, 1, 2]
    assert duckdb_scan(path, "not a:x", con=con) == [1, 2]
    assert duckdb_scan(path, "a:*", con=con) == [0]
    assert duckdb_scan(path, "not a:*", con=con) == [1, 2]


def test_like_escaping(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """% and _ in a value are literal characters, not SQL wildcards; matching is case-sensitive."""
    path = _write(tmp_path / "e.ndjson", [{"a": "50%_off"}, {"a": "50xyoff"}, {"a": "50%_OFF"}])
    assert duckdb_scan(path, "a:50%_*", con=con) == [0, 2]
    assert duckdb_scan(path, "a:*_off", con=con) == [0]
    assert duckdb_scan(path, "a:50%_off", con=con) == [0]


def test_scalars_and_arrays_mixed_across_rows(tmp_path: Path,
                                              con: duckdb.DuckDBPyConnection) -> None:
    """One field that is a string in one record and an array in another (a JSON column)."""
    path = _write(tmp_path / "e.ndjson", [
        {"process": {"args": "/etc/shadow"}},
        {"process": {"args": ["cat", "/etc/shadow"]}},
        {"process.args": ["ls"]},
        {"process": {"args": [1, "x"]}},
    ])
    assert duckdb_scan(path, "process.args:/etc/shadow", con=con) == [0, 1]
    assert duckdb_scan(path, "process.args:(cat and /etc/shadow)", con=con) == [1]
    assert duckdb_scan(path, "process.args:1", con=con) == [3]
    assert duckdb_scan(path, "process.args:ls", con=con) == [2]


def test_seed_rule_over_generated_events(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """The seed rule in SQL finds exactly what the Python evaluator finds."""
    from credwatch.backends.python import compile_query

    events: list[dict[str, object]] = [
        {"host": {"os": {"type": "linux"}}, "event": {"category": ["process"], "action": "exec"},
         "process": {"name": "cat", "args": ["cat", "/root/.aws/credentials"]}},
        {"host": {"os": {"type": "linux"}}, "event": {"category": ["process"], "action": "exec"},
         "process": {"name": "cat", "args": ["cat", "/root/.aws/config"]}},
        {"host.os.type": "linux", "event.category": "process", "event.action": "executed",
         "process.executable": "/tmp/x", "process.args": ["/tmp/x", "/etc/shadow"]},
        {"host": {"os": {"type": "linux"}}, "event": {"category": ["process"], "action": "exec"},
         "process": {"name": "CAT", "args": ["CAT", "/etc/shadow"]}},
    ]
    path = _write(tmp_path / "e.ndjson", events)
    query = default_rule().query
    matcher = compile_query(query)
    expected = [i for i, e in enumerate(events) if matcher.matches(e)]
    assert expected == [0, 2]
    assert duckdb_scan(path, query, con=con) == expected


def test_show_sql_is_runnable(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    path = _write(tmp_path / "e.ndjson", [{"process": {"name": "cat"}}])
    schema = schema_of(con.sql(f"SELECT * FROM {read_sql(path)}"))
    sql = show_sql("process.name:cat", schema, source=read_sql(path))
    assert sql.startswith("SELECT *")
    assert len(con.execute(sql).fetchall()) == 1
    assert compile_duckdb("process.name:cat", {}) == "FALSE"


def test_conformance_in_shared_tables(tmp_path: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Every case again, with its event as one row among hundreds of unrelated rows.

    Other rows add columns that are NULL in this one (missing objects, flat
    keys, other types); the answer for this row must not change.
    """
    wrong: list[str] = []
    for n, pack in enumerate(packs([r for r in RUNS if r.case.id not in IPV6_CASES])):
        path = _write(tmp_path / f"p{n}.ndjson", [r.event for r in pack])
        source = read_sql(path)
        schema = schema_of(con.sql(f"SELECT * FROM {source}"))
        con.execute(f"CREATE OR REPLACE TEMP TABLE t AS SELECT row_number() OVER () - 1 "
                    f"AS __cw_row, * FROM {source}")
        for i, run in enumerate(pack):
            where = compile_duckdb(run.case.query, schema, run.case.field_types)
            hit = con.execute(f"SELECT count(*) FROM t WHERE __cw_row = {i} AND {where}"
                              ).fetchone()
            if bool(hit and hit[0]) is not run.case.expected:
                wrong.append(run.label)
    assert wrong == []
