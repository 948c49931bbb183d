"""``run --engine duckdb|spark`` stores its read report with each execution; ``runs`` shows it.

A day-partitioned Parquet lake (``convert --partition-by day``) is run once on
DuckDB: the figures printed on stderr are the ones stored in the run history,
and a partition the window does not touch (holding a corrupt file, so reading
it would fail the run) counts as skipped. Run stores from before schema 4 stay
readable: their executions have no read report.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from credwatch.alerts.store import AlertStore
from credwatch.engine.readreport import COUNTS, ReadReport
from credwatch.engine.runs import SCHEMA_VERSION, RunRecord, RunStore
from tests.cli.helpers import Result, run_cli
from tests.engine.daygen import iso
from tests.engine.test_lake_run import TICK, _corrupt_untouched, _events, _lake

pytest.importorskip("pyarrow")

_PRINTED = {
    "files_read": r"(\d+) file\(s\) read", "files_skipped": r"file\(s\) read, (\d+) skipped",
    "partitions_read": r"(\d+) day partition\(s\) read",
    "partitions_skipped": r"day partition\(s\) read, (\d+) skipped",
    "row_groups_read": r"(\d+) of \d+ row group\(s\) read",
    "row_groups_total": r"\d+ of (\d+) row group\(s\) read",
    "rows_scanned": r"(\d+) row\(s\) scanned", "rows": r"(\d+) row\(s\) in the windows",
}


def _once(db: Path, *argv: str) -> Result:
    return run_cli("run", "--db", str(db), "--format", "ndjson", "--once", "--now", iso(TICK), *argv)


def _history(db: Path) -> list[dict[str, object]]:
    res = run_cli("runs", "--db", str(db), "--format", "json")
    assert res.code == 0, res.err
    docs: list[dict[str, object]] = json.loads(res.out)
    return docs


def test_duckdb_execution_stores_the_read_report_it_printed(tmp_path: Path) -> None:
    ndjson, lake = _lake(tmp_path, _events())
    days = sorted(p.name for p in lake.iterdir())
    corrupt = _corrupt_untouched(lake, {f"day={TICK:%Y-%m-%d}", "day=unknown"})
    db = tmp_path / "dk.db"
    res = _once(db, "--engine", "duckdb", str(lake))
    assert res.code == 0, res.err  # a corrupt partition opened would be a failed input: exit 3
    [line] = [x for x in res.err.splitlines() if "execution at" in x]
    printed = line.split("(duckdb: ", 1)[1]
    [run] = _history(db)
    read = run["read"]
    assert isinstance(read, dict) and read["engine"] == "duckdb"
    for name, pattern in _PRINTED.items():
        m = re.search(pattern, printed)
        assert m, (name, printed)
        assert read[name] == int(m.group(1)), name
    # The window touches its own day (and day=unknown): every other partition is skipped.
    assert read["partitions_skipped"] == corrupt and corrupt > 0
    assert read["partitions_read"] + read["partitions_skipped"] == len(days)
    assert read["files_skipped"] == 2 * corrupt  # each untouched day's file and its corrupt one
    # The table shows the same line.
    table = run_cli("runs", "--db", str(db))
    assert table.code == 0, table.err
    assert f"read (duckdb): {printed.rstrip(')')}" in table.out
    # An in-process execution has no read report.
    py = tmp_path / "py.db"
    assert _once(py, str(ndjson)).code == 0
    [plain] = _history(py)
    assert plain["read"] is None
    assert "read (" not in run_cli("runs", "--db", str(py)).out


def test_spark_execution_stores_rows_scanned_as_unknown(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    _ndjson, lake = _lake(tmp_path, _events())
    db = tmp_path / "sp.db"
    res = _once(db, "--engine", "spark", "--spark-master", "local[2]", str(lake))
    assert res.code == 0, res.err
    assert "rows scanned not reported" in res.err
    [run] = _history(db)
    read = run["read"]
    assert isinstance(read, dict) and read["engine"] == "spark"
    assert read["rows_scanned"] is None and read["row_groups_read"] is read["row_groups_total"] is None
    assert read["partitions_read"] == 2 and isinstance(read["rows"], int) and read["rows"] > 0


# rule_runs as schema 3 created it, before the read report was stored.
_V3_RULE_RUNS = """CREATE TABLE rule_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, execution_uuid TEXT NOT NULL UNIQUE,
    rule_uuid TEXT NOT NULL, rule_id TEXT NOT NULL, rule_name TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT NOT NULL, windows TEXT NOT NULL,
    status TEXT NOT NULL, message TEXT NOT NULL, warnings TEXT NOT NULL, errors TEXT NOT NULL,
    events_searched INTEGER NOT NULL, events_matched INTEGER NOT NULL,
    events_excluded INTEGER NOT NULL, alerts_created INTEGER NOT NULL,
    alerts_updated INTEGER NOT NULL, suppressed INTEGER NOT NULL, gap_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL)"""


def _record(uuid: str, when: datetime, read: ReadReport | None) -> RunRecord:
    return RunRecord(uuid, "rule-uuid", "rule-id", "rule", when, when, [], "succeeded", "ok",
                     events_searched=3, read=read)


def test_a_schema_3_store_stays_readable_and_gains_the_read_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with AlertStore(db) as store:
        store.conn.execute(_V3_RULE_RUNS)
        store.conn.execute("INSERT INTO credwatch_schema (component, version) VALUES ('runs', 3)")
        store.conn.execute(
            "INSERT INTO rule_runs (execution_uuid, rule_uuid, rule_id, rule_name, started_at,"
            " finished_at, windows, status, message, warnings, errors, events_searched,"
            " events_matched, events_excluded, alerts_created, alerts_updated, suppressed, gap_ms,"
            " duration_ms) VALUES ('old', 'rule-uuid', 'rule-id', 'rule', '2026-03-01T00:00:00.000Z',"
            " '2026-03-01T00:00:00.000Z', '[]', 'succeeded', 'ok', '[]', '[]', 7, 1, 0, 1, 0, 0, 0, 5)")
        store.conn.commit()
    with AlertStore(db) as store:
        runs = RunStore(store)
        [old] = runs.history()
        assert old.execution_uuid == "old" and old.events_searched == 7 and old.read is None
        assert old.to_json()["read"] is None
        spark = ReadReport.start("spark", reports_scans=False)
        spark.partitions_read, spark.partitions_skipped, spark.rows = 1, 4, 9
        duck = ReadReport("duckdb", 2, 3, 4, 5, 6, 7, 8, 9)
        later = datetime(2026, 3, 2, tzinfo=UTC)
        runs.commit(_record("spark", later, spark))
        runs.commit(_record("duck", later + timedelta(minutes=5), duck))
    with AlertStore(db) as store:
        by_id = {r.execution_uuid: r for r in RunStore(store).history()}
    assert by_id["old"].read is None
    assert by_id["duck"].read == duck and by_id["spark"].read == spark
    assert by_id["spark"].to_json()["read"] == {"engine": "spark", **{n: getattr(spark, n) for n in COUNTS}}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT version FROM credwatch_schema WHERE component='runs'"
                            ).fetchone()[0] == SCHEMA_VERSION == 4
    finally:
        conn.close()
