"""``scan --engine python`` reads Parquet (pyarrow, in batches): the alerts of the originals."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.helpers import Result, run_cli

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"


def scan(*argv: str) -> Result:
    return run_cli("scan", "--no-store", "--format", "ndjson", *argv)


def test_converted_examples_scanned_in_process_give_the_original_alerts(tmp_path: Path) -> None:
    """All the bundled examples (raw audit.log included) → Parquet → python = python on the originals."""
    out = tmp_path / "ex.parquet"
    assert run_cli("convert", str(EXAMPLES), "--to", "parquet", str(out)).code == 0
    original, on_parquet = scan(str(EXAMPLES)), scan(str(out))
    assert original.code == on_parquet.code == 0, on_parquet.err
    assert len(original.alerts()) == 98
    assert on_parquet.alerts() == original.alerts()  # same documents, uuids and origins


def test_day_partitioned_lake_in_process(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    assert run_cli("convert", str(EXAMPLES / "ecs"), "--to", "parquet", "--partition-by", "day",
                   str(lake)).code == 0
    py, on_lake = scan(str(EXAMPLES / "ecs")), scan(str(lake))
    assert on_lake.code == 0, on_lake.err
    assert {a["kibana.alert.uuid"] for a in on_lake.alerts()} == {a["kibana.alert.uuid"] for a in py.alerts()}


def _event(args: list[str]) -> dict[str, Any]:
    return {"@timestamp": "2026-12-01T10:00:00.000Z", "host": {"os": {"type": "linux"}},
            "event": {"category": ["process"], "action": "exec"},
            "process": {"name": args[0], "args": args, "executable": f"/usr/bin/{args[0]}"}}


def test_foreign_parquet_becomes_its_columns(tmp_path: Path) -> None:
    """Parquet not written by credwatch: nested columns are the event; a timestamp column is ISO text."""
    rows = [_event(["cat", "/etc/shadow"]), _event(["cat", "/etc/motd"])]
    typed = [dict(r, seen=dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)) for r in rows]
    path = tmp_path / "theirs.parquet"
    pq.write_table(pa.Table.from_pylist(typed), path)
    res = scan(str(path))
    assert res.code == 0, res.err
    (alert,) = res.alerts()
    assert alert["process"]["args"] == ["cat", "/etc/shadow"]
    assert alert["seen"] == "2026-12-01T10:00:00+00:00"


def test_corrupt_parquet_is_one_failed_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    good = tmp_path / "good.ndjson"
    good.write_text(json.dumps(_event(["cat", "/etc/shadow"])) + "\n", encoding="utf-8")
    res = scan(str(bad), str(good))
    assert res.code == 3 and len(res.alerts()) == 1
    assert f"{bad}: not a readable Parquet file" in res.err and "Traceback" not in res.err


def test_run_in_process_refuses_parquet_naming_the_engines(tmp_path: Path) -> None:
    """`run`'s in-process reader works on lines: a Parquet input is an error, not lines of garbage."""
    lake = tmp_path / "lake"
    assert run_cli("convert", str(EXAMPLES / "ecs"), "--to", "parquet", "--partition-by", "day",
                   str(lake)).code == 0
    res = run_cli("run", "--once", "--db", str(tmp_path / "a.db"), str(lake))
    assert res.code == 2 and "Traceback" not in res.err
    assert "does not read Parquet; use --engine duckdb or --engine spark" in res.err
    assert "invalid-utf8" not in res.err
