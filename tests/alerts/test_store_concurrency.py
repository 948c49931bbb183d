"""One alert store, many writers: real `scan` and `run --once` processes at the same time.

Every alert must be stored exactly once and counted as new by exactly one
process; no process may die (the second `run` of the same execution used to
end in an IntegrityError, exit 70).
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import orjson

import credwatch
from credwatch.alerts.store import AlertStore
from credwatch.engine.runs import RunRecord, RunStore
from tests.engine.daygen import DAY, iso, make_event, write_ndjson

EXAMPLES = Path(credwatch.__file__).parent / "examples"
CREDWATCH = str(Path(sys.executable).parent / "credwatch")
SCANS, RUNS = 5, 3
NEW_IN_STORE = re.compile(r"(\d+) new in store, (\d+) already stored")


def _events(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A file every process reads, and one file of its own per `run` process."""
    rng = random.Random(12)
    at = DAY.replace(hour=10)
    shared = write_ndjson(tmp_path / "shared.ndjson",
                          [make_event(seq, at, positive=True, rng=rng, ingested=at)
                           for seq in range(1, 9)])
    own = [write_ndjson(tmp_path / f"own{k}.ndjson",
                        [make_event(100 * k + seq, at, positive=True, rng=rng, ingested=at)
                         for seq in range(3)])
           for k in range(1, RUNS + 1)]
    return shared, own


def test_eight_processes_store_every_alert_exactly_once(tmp_path: Path) -> None:
    db = str(tmp_path / "alerts.db")  # a new store: all eight create its schema at once
    shared, own = _events(tmp_path)
    now = iso(DAY.replace(hour=10) + timedelta(minutes=1))
    cmds = [[CREDWATCH, "scan", "--db", db, "--format", "ndjson", str(EXAMPLES), str(shared)]
            for _ in range(SCANS)]
    cmds += [[CREDWATCH, "run", "--once", "--now", now, "--db", db, "--format", "ndjson",
              str(shared), str(mine)] for mine in own]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for cmd in cmds]
    outputs = [p.communicate(timeout=300) for p in procs]
    results = [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]

    for (code, _, err), cmd in zip(results, cmds, strict=True):
        text = err.decode()
        assert code == 0, (cmd[1], code, text)
        assert "Traceback" not in text and "internal error" not in text, text
    counted_new = 0
    created_by_runs: list[str] = []
    for _, _, err in results[:SCANS]:
        match = NEW_IN_STORE.search(err.decode())
        assert match, err
        counted_new += int(match.group(1))
    for _, out, _ in results[SCANS:]:
        created_by_runs += [orjson.loads(line)["kibana.alert.uuid"] for line in out.splitlines()]
    emitted = {orjson.loads(line)["kibana.alert.uuid"]
               for _, out, _ in results for line in out.splitlines()}

    with AlertStore(db) as store:
        stored = store.uuids()
        assert store.count() == len(stored)
        runs = store.conn.execute("SELECT execution_uuid, COUNT(*) FROM rule_runs "
                                  "GROUP BY execution_uuid").fetchall()
        schema = store.conn.execute("SELECT component, version FROM credwatch_schema "
                                    "ORDER BY component").fetchall()
    # Everything any process emitted is stored, and nothing else.
    assert stored == emitted
    # A `run` prints only the alerts it created: no alert is created by two of them...
    assert len(created_by_runs) == len(set(created_by_runs))
    # ...and each stored alert was counted new by exactly one process.
    assert counted_new + len(created_by_runs) == len(stored)
    # Each run process created at least its own file's alerts (hence its exit 0).
    assert len(created_by_runs) >= 3 * RUNS
    assert runs and all(n == 1 for _, n in runs)
    assert ("alerts", 1) in schema and "runs" in dict(schema)


def test_a_second_commit_of_the_same_execution_is_merged(tmp_path: Path) -> None:
    """The loser of that race commits an execution id already stored: no error, one row."""
    at = DAY.replace(hour=10)
    alert = {"kibana.alert.uuid": "a" * 64, "kibana.alert.rule.rule_id": "r",
             "kibana.alert.rule.name": "R", "@timestamp": iso(at)}
    record = RunRecord(execution_uuid="e1", rule_uuid="ru", rule_id="r", rule_name="R",
                       started_at=at, finished_at=at, windows=[], status="succeeded",
                       message="first")
    with AlertStore(tmp_path / "a.db") as store:
        runs = RunStore(store)
        assert runs.commit(record, created=[alert]) == [True]
        again = RunRecord(**{**record.__dict__, "message": "second"})
        assert runs.commit(again, created=[alert]) == [False]
        assert [r.message for r in runs.history()] == ["first"]
        assert store.count() == 1
