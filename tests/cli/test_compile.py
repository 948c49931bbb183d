"""``credwatch compile``: every target, rule/query selection, errors, and the real console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from credwatch.backends.duckdb import connect, read_sql
from credwatch.backends.esdsl import compile_esdsl
from credwatch.rules.loader import default_rule

from .helpers import run_cli

EVENTS = [
    {"process": {"name": "cat", "args": ["cat", "/etc/shadow"]}},
    {"process": {"name": "ls", "args": ["ls"]}},
]


def test_esdsl_default_rule() -> None:
    res = run_cli("compile", "--target", "esdsl")
    assert res.code == 0, res.err
    assert json.loads(res.out) == compile_esdsl(default_rule().query)


def test_esdsl_compact_query() -> None:
    res = run_cli("compile", "-t", "esdsl", "--compact", "--query", "process.name:cat")
    assert res.out == ('{"bool": {"should": [{"term": {"process.name": {"value": "cat"}}}], '
                       '"minimum_should_match": 1}}\n')


def test_kql_canonical() -> None:
    res = run_cli("compile", "--target", "kql", "--query", "process.name : ( cat OR dog )")
    assert res.out == "process.name:(cat or dog)\n"


def test_prefilter_both_formats() -> None:
    res = run_cli("compile", "--target", "prefilter")
    assert '"/etc/shadow"' in res.out.splitlines() and "'\\u002f'" in res.out
    res = run_cli("compile", "--target", "prefilter", "--input-format", "audit")
    assert "'_len='" in res.out
    res = run_cli("compile", "--target", "prefilter", "--query", "not a:b")
    assert res.out.startswith("# no prefilter")


def test_duckdb_sql_runs_against_the_data(tmp_path: Path) -> None:
    data = tmp_path / "e.ndjson"
    data.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    res = run_cli("compile", "--target", "duckdb", "--data", str(data),
                  "--query", "process.args:/etc/shadow")
    assert res.code == 0, res.err
    assert res.out.startswith("SELECT *")
    rows = connect().execute(res.out).fetchall()
    assert len(rows) == 1


def test_duckdb_assumed_schema_runs_on_nested_ecs(tmp_path: Path) -> None:
    res = run_cli("compile", "--target", "duckdb", "--query",
                  "process.name:cat and process.args:/etc/shadow")
    assert res.out.startswith("-- schema assumed")
    data = tmp_path / "e.ndjson"
    data.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    con = connect()
    con.execute(f"CREATE VIEW events AS SELECT * FROM {read_sql(data)}")
    assert len(con.execute(res.out).fetchall()) == 1


def test_spark_expression_without_data() -> None:
    res = run_cli("compile", "--target", "spark", "--query", "process.args:/etc/*")
    assert res.code == 0
    assert "exists(`process`['args'], x0 -> x0 LIKE '/etc/%' ESCAPE '\\\\')" in res.out


def test_errors_are_reported_not_raised() -> None:
    res = run_cli("compile", "--query", "process.name:(")
    assert res.code == 2 and "KQL syntax error" in res.err and "Traceback" not in res.err
    res = run_cli("compile", "--target", "duckdb", "--query", 'source.ip:"::1"')
    assert res.code == 2 and "IPv4 only" in res.err
    res = run_cli("compile", "--rule", "no-such-rule")
    assert res.code == 2


def test_help_lists_targets() -> None:
    res = run_cli("compile", "--help")
    assert res.code == 0
    for target in ("esdsl", "duckdb", "spark", "kql", "prefilter"):
        assert target in res.out


def test_console_script() -> None:
    exe = Path(sys.executable).with_name("credwatch")
    proc = subprocess.run([str(exe), "compile", "--target", "kql", "--query", "a:b OR c:d"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "a:b or c:d\n"
