"""Hostile inputs through ``convert`` and ``scan --engine duckdb``: reported, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pq = pytest.importorskip("pyarrow.parquet")

from tests.cli.helpers import run_cli  # noqa: E402


def _deep(depth: int) -> dict[str, Any]:
    event: dict[str, Any] = {"x": "v"}
    for _ in range(depth):
        event = {"a": event}
    return event


HOSTILE = [
    _deep(300),  # deeper than orjson writes (254) and DuckDB reads (128)
    _deep(60),  # deeper than a column may be (32 levels): kept in _cw_event only
    {"": "e", ".": "dot", "a..b": "x", "b.": 1, "k\u0000z": "nul",
     "process": {"args": ["cat", "/etc/shadow"], "name": "cat"}},
    {"process": {"args": [1, {"x": 2}, [3]]}},
    {"process": {"args": "single"}, "n": 1, "f": 1.5, "mixed": [1, "a", True, None]},
]


def test_hostile_events_convert_and_scan(tmp_path: Path) -> None:
    src = tmp_path / "h.ndjson"
    src.write_text("".join(json.dumps(e) + "\n" for e in HOSTILE), encoding="utf-8")
    out = tmp_path / "h.parquet"
    res = run_cli("convert", str(src), "--to", "parquet", str(out))
    assert res.code == 0, res.err
    assert "too-deep" in res.err and "Traceback" not in res.err
    table = pq.read_table(out)
    assert table.num_rows == len(HOSTILE) - 1
    assert "a" not in table.schema.names  # 61 levels: over the 32 a column may have
    # One event with objects in process.args does not take the column away from the others.
    assert str(table.schema.field("process").type.field("args").type) == "list<element: string>"
    assert "not-a-column" in res.err and "process.args.x" in res.err
    query = "process.args:*shadow"
    on_parquet = run_cli("scan", "--no-store", "--engine", "duckdb", "--format", "ndjson",
                         "--query", query, str(out))
    assert on_parquet.code == 0, on_parquet.err
    assert len(on_parquet.alerts()) == 1
    # DuckDB cannot read a 300-deep line: that input fails (exit 3), reported as path: reason.
    on_ndjson = run_cli("scan", "--no-store", "--engine", "duckdb", "--query", query, str(src))
    assert on_ndjson.code == 3 and f"{src}: DuckDB could not read it" in on_ndjson.err
    assert "Traceback" not in on_ndjson.err + on_parquet.err


def test_quote_and_sql_in_paths_and_values(tmp_path: Path) -> None:
    """File names and values with quotes reach DuckDB as literals, not as SQL."""
    folder = tmp_path / "it's'; DROP TABLE x; --"
    folder.mkdir()
    src = folder / "e'v.ndjson"
    src.write_text(json.dumps({"process": {"args": ["cat", "/x/'; select 1; --/.kube/config"],
                                           "name": "cat"}}) + "\n", encoding="utf-8")
    res = run_cli("scan", "--no-store", "--engine", "duckdb", "--format", "ndjson",
                  "--query", "process.args:*/.kube/config", str(src))
    assert res.code == 0, res.err
    assert len(res.alerts()) == 1
    out = folder / "o'.parquet"
    assert run_cli("convert", str(src), "--to", "parquet", str(out)).code == 0
    res = run_cli("scan", "--no-store", "--engine", "duckdb", "--format", "ndjson",
                  "--query", "process.args:*/.kube/config", str(out))
    assert res.code == 0 and len(res.alerts()) == 1, res.err
