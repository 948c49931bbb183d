"""``run --engine duckdb|spark``: each tick's window pushed into the engine, partitions pruned.

A lake of day partitions (``convert --partition-by day``) spanning many days is
run tick by tick on each engine and on the in-process engine over the same events
as NDJSON: the alerts are the same documents. Untouched partitions also hold a
corrupt Parquet file: reading one would fail the run (exit 3), so a clean run
proves they were not opened, and the engine's report says how many were skipped.
"""

from __future__ import annotations

import json
import random
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from credwatch.engine.convert import ENVELOPE_FIELDS
from credwatch.engine.eventtime import TimeFields
from credwatch.engine.lake_plan import LakeFile, PartitionSummary, keeps
from credwatch.engine.readpos import Span
from credwatch.rules.loader import default_rule
from tests.cli.helpers import Result, run_cli
from tests.engine.daygen import DAY, generate_day, iso, make_event, write_ndjson

pytest.importorskip("pyarrow")

DAYS = 6
TICK = DAY + timedelta(days=3, hours=10, minutes=4)
GARBAGE = b"PAR1 this is not a Parquet file at all, reading it fails PAR1"


def _lake(tmp: Path, events: list[dict[str, Any]]) -> tuple[Path, Path]:
    ndjson = write_ndjson(tmp / "events.ndjson", events)
    lake = tmp / "lake"
    res = run_cli("convert", str(ndjson), "--to", "parquet", "--partition-by", "day", str(lake))
    assert res.code == 0, res.err
    return ndjson, lake


def _events() -> list[dict[str, Any]]:
    events = generate_day(seed=11, events=3000, start=DAY, hours=24.0 * DAYS)
    # No @timestamp at all: `day=unknown`, timed by event.ingested alone.
    undated = make_event(90_001, TICK - timedelta(minutes=2), positive=True,
                         rng=random.Random(1), ingested=TICK - timedelta(minutes=2))
    del undated["@timestamp"]
    # @timestamp in another zone: partitioned by its UTC day.
    zoned = make_event(90_002, TICK, positive=True, rng=random.Random(2), ingested=None)
    zoned["@timestamp"] = (TICK - timedelta(minutes=3)).astimezone().isoformat()
    return [*events, undated, zoned]


def _corrupt_untouched(lake: Path, keep: set[str]) -> int:
    n = 0
    for folder in sorted(lake.iterdir()):
        if folder.name not in keep:
            (folder / "part-00001.parquet").write_bytes(GARBAGE)
            n += 1
    return n


def _run(db: Path, *argv: str) -> Result:
    return run_cli("run", "--db", str(db), "--format", "ndjson", "--now", iso(TICK),
                   "--until", iso(TICK + timedelta(minutes=20)), *argv)


def _alerts(res: Result) -> dict[str, dict[str, Any]]:
    return {a["kibana.alert.uuid"]: a for a in res.alerts()}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _lake(tmp_path_factory.mktemp("lake"), _events())


def test_duckdb_tick_reads_only_the_partitions_its_window_touches(lake: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    ndjson, folder = lake
    days = {p.name for p in folder.iterdir()}
    assert f"day={TICK:%Y-%m-%d}" in days and "day=unknown" in days and len(days) >= DAYS
    corrupt = _corrupt_untouched(folder, {f"day={TICK:%Y-%m-%d}", "day=unknown"})
    py = _run(tmp_path / "py.db", str(ndjson))
    dk = _run(tmp_path / "dk.db", "--engine", "duckdb", str(folder))
    assert py.code == 0, py.err
    assert dk.code == 0, dk.err  # a corrupt file read would be a failed input: exit 3
    assert _alerts(dk) == _alerts(py) and len(py.alerts()) >= 3
    # Each tick read its day, and day=unknown when its window holds that event, no more.
    ticks = [x for x in dk.err.splitlines() if "execution at" in x]
    assert len(ticks) == 5
    counts = [re.search(r"(\d+) day partition\(s\) read, (\d+) skipped", x) for x in ticks]
    read = [int(m.group(1)) for m in counts if m]
    assert read[0] == 2 and set(read) == {1, 2}
    assert all(m and int(m.group(1)) + int(m.group(2)) == corrupt + 2 for m in counts)
    rows = sum(int(m.group(1)) for x in ticks if (m := re.search(r"(\d+) row\(s\) in the windows", x)))
    assert 0 < rows < 200  # the windows' rows, not the lake's 3000
    # Rows DuckDB looked at: the row groups of the partitions read (~500 a day), not 3,000.
    scanned = [int(m.group(1)) for x in ticks if (m := re.search(r"(\d+) row\(s\) scanned", x))]
    assert len(scanned) == 5 and all(0 < n < 1000 for n in scanned)


def test_duckdb_run_by_timestamp_prunes_by_folder_name(lake: tuple[Path, Path], tmp_path: Path) -> None:
    """Without convert's summary, a rule timed by @timestamp alone prunes by the folder's date."""
    ndjson, folder = lake
    bare = tmp_path / "bare"
    for src in folder.iterdir():
        (bare / src.name).mkdir(parents=True)
        for f in src.glob("part-00000.parquet"):
            (bare / src.name / f.name).write_bytes(f.read_bytes())
    near = {f"day={(TICK + timedelta(days=d)):%Y-%m-%d}" for d in (-1, 0, 1)}
    corrupt = _corrupt_untouched(bare, near)
    query = default_rule().query  # as --query: no timestamp_override, timed by @timestamp
    py = _run(tmp_path / "py.db", "--query", query, str(ndjson))
    dk = _run(tmp_path / "dk.db", "--query", query, "--engine", "duckdb", str(bare))
    assert py.code == dk.code == 0, dk.err
    assert _alerts(dk) == _alerts(py)
    assert f"3 day partition(s) read, {corrupt} skipped" in dk.err  # day=unknown included


def test_duckdb_run_over_ndjson_gives_the_in_process_alerts(lake: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    ndjson, _folder = lake
    py = _run(tmp_path / "py.db", str(ndjson))
    dk = _run(tmp_path / "dk.db", "--engine", "duckdb", str(ndjson))
    assert dk.code == py.code == 0, dk.err
    assert _alerts(dk) == _alerts(py)
    assert "3002 row(s) scanned" in dk.err  # NDJSON: DuckDB parses every line


def test_spark_tick_reads_only_the_partitions_its_window_touches(lake: tuple[Path, Path],
                                                                 tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    ndjson, folder = lake
    copy = tmp_path / "lake"
    for src in folder.iterdir():
        (copy / src.name).mkdir(parents=True)
        for f in src.iterdir():
            (copy / src.name / f.name).write_bytes(f.read_bytes())
    corrupt = _corrupt_untouched(copy, {f"day={TICK:%Y-%m-%d}", "day=unknown"})
    py = _run(tmp_path / "py.db", str(ndjson))
    sp = _run(tmp_path / "sp.db", "--engine", "spark", "--spark-master", "local[2]", str(copy))
    assert sp.code == py.code == 0, sp.err
    assert _alerts(sp) == _alerts(py)
    assert f"2 day partition(s) read, {corrupt} skipped" in sp.err  # the first tick
    # NDJSON through Spark (every scalar as its JSON text, exact line numbers): the same alerts.
    nd = _run(tmp_path / "nd.db", "--engine", "spark", "--spark-master", "local[2]", str(ndjson))
    assert nd.code == 0, nd.err
    assert _alerts(nd) == _alerts(py)


def test_engine_refuses_standard_input(tmp_path: Path) -> None:
    res = run_cli("run", "--db", str(tmp_path / "x.db"), "--once", "--engine", "duckdb", "-")
    assert res.code == 2 and "standard input" in res.err and "Traceback" not in res.err


def test_convert_partitions_by_utc_day_and_writes_a_summary(tmp_path: Path) -> None:
    late = {"@timestamp": "2026-03-01T23:30:00-05:00", "event": {"ingested": "2026-03-02T04:31:00Z"}}
    res = run_cli("convert", str(write_ndjson(tmp_path / "e.ndjson", [late])), "--to", "parquet",
                  "--partition-by", "day", str(tmp_path / "out"))
    assert res.code == 0, res.err
    folder = tmp_path / "out" / "day=2026-03-02"  # 04:30 UTC, not the text's 2026-03-01
    summary = json.loads((folder / ".credwatch-span.json").read_text())
    assert summary["rows"] == 1 and summary["t1"] - summary["t0"] == 60_000


def test_day_unknown_is_never_read_for_a_timestamp_rule() -> None:
    """No @timestamp, no window: skipped even when its summary has event.ingested times."""
    summary = PartitionSummary(0, 2**40, frozenset(ENVELOPE_FIELDS))
    unknown = LakeFile("lake/day=unknown/part-00000.parquet", "unknown", summary)
    span = Span(2**30, 2**31)
    assert not keeps(unknown, TimeFields(), span)
    assert keeps(unknown, TimeFields("event.ingested", "@timestamp"), span)
    assert not keeps(LakeFile(unknown.path, "unknown", PartitionSummary(None, None, summary.fields)),
                     TimeFields("event.ingested", "@timestamp"), span)
