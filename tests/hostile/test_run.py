"""``credwatch run`` against concurrent writers and inputs that cannot be read (issue #12)."""

from __future__ import annotations

import gzip
import random
import socket
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from credwatch.cli.env import ExitStatus
from tests.engine.daygen import DAY, iso, make_event, write_ndjson

CREDWATCH = Path(sys.executable).parent / "credwatch"


def _events(n: int, seed: int, positive: float = 0.05) -> list[dict[str, Any]]:
    """``n`` events from 00:50 to 01:00 on DAY."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        at = DAY + timedelta(minutes=50) + timedelta(milliseconds=i * 600_000 // n)
        out.append(make_event(i, at, positive=rng.random() < positive, rng=rng, ingested=at))
    return out


def test_two_concurrent_runs_on_one_store_record_each_alert_and_execution_once(
        tmp_path: Path) -> None:
    events = _events(20_000, seed=1, positive=0.003)  # under max_signals: every one alerts
    random.Random(3).shuffle(events)  # read in full: both processes are busy at the same time
    src = write_ndjson(tmp_path / "events.ndjson", events)
    db = tmp_path / "shared.db"
    for minute in (55, 60, 65):
        cmd = [str(CREDWATCH), "run", "--once", "--now", iso(DAY + timedelta(minutes=minute)),
               "--db", str(db), "--format", "ndjson", str(src)]
        logs = [(tmp_path / f"{minute}-{i}.out", tmp_path / f"{minute}-{i}.err") for i in range(2)]
        procs = []
        for out, err in logs:  # files, not pipes: neither process may block on its output
            with out.open("wb") as fo, err.open("wb") as fe:
                procs.append(subprocess.Popen(cmd, stdout=fo, stderr=fe))
        for proc, (_out, err) in zip(procs, logs, strict=True):
            code = proc.wait(timeout=300)
            text = err.read_text()
            assert code in (ExitStatus.OK, ExitStatus.NO_ALERTS), text
            assert "Traceback" not in text and "internal error" not in text
    conn = sqlite3.connect(db)
    try:
        alerts = conn.execute("SELECT COUNT(*), COUNT(DISTINCT uuid) FROM alerts").fetchone()
        runs = conn.execute("SELECT COUNT(*), COUNT(DISTINCT execution_uuid), "
                            "COUNT(DISTINCT started_at) FROM rule_runs").fetchone()
    finally:
        conn.close()
    positives = sum(1 for e in events if e["labels"]["truth"] == "positive")
    assert alerts[0] == alerts[1] and alerts[0] == positives
    # Each execution time recorded once or twice (a second process that came after the
    # first had committed runs again, with its own id), never as a failed duplicate.
    assert runs[1] == runs[0] and runs[2] == 3


def test_an_unreadable_input_exits_3_with_path_and_reason_and_the_rest_is_evaluated(
        tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    good = write_ndjson(folder / "good.ndjson", _events(200, seed=2))
    whole = gzip.compress(b"".join(
        __import__("json").dumps(e).encode() + b"\n" for e in _events(2000, seed=5)))
    partial = folder / "rotated.ndjson.gz"
    partial.write_bytes(whole[: len(whole) // 2])
    sock_path = folder / "control.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    try:
        proc = subprocess.run(
            [str(CREDWATCH), "run", "--once", "--now", iso(DAY + timedelta(hours=1)),
             "--db", str(tmp_path / "a.db"), "--format", "ndjson", str(folder)],
            capture_output=True, text=True, timeout=300, check=False)
    finally:
        server.close()
    assert proc.returncode == ExitStatus.PARTIAL, proc.stderr
    assert f"credwatch: {partial}: " in proc.stderr
    assert f"credwatch: {sock_path}: " in proc.stderr
    assert "Traceback" not in proc.stderr
    alerts = [line for line in proc.stdout.splitlines() if line.strip()]
    assert alerts and all(str(good) in line for line in alerts)
    # The next execution reads the finished file again.
    sock_path.unlink()
    partial.write_bytes(whole)
    proc = subprocess.run(
        [str(CREDWATCH), "run", "--once", "--now", iso(DAY + timedelta(hours=1, minutes=1)),
         "--db", str(tmp_path / "a.db"), "--format", "ndjson", str(folder)],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode in (ExitStatus.OK, ExitStatus.NO_ALERTS), proc.stderr
    assert any(str(partial) in line for line in proc.stdout.splitlines())


def test_the_same_execution_committed_by_two_processes_is_recorded_once(tmp_path: Path) -> None:
    """Two processes that planned the same execution (same id) both commit: no IntegrityError."""
    from datetime import UTC, datetime

    from credwatch.alerts.store import AlertStore
    from credwatch.engine.runs import RunRecord, RunStore

    at = datetime(2026, 3, 1, 10, tzinfo=UTC)
    record = RunRecord(execution_uuid="e-1", rule_uuid="r", rule_id="r", rule_name="rule",
                       started_at=at, finished_at=at, windows=[], status="succeeded",
                       message="ok", alerts_created=1)
    alert = {"kibana.alert.uuid": "a" * 64, "@timestamp": iso(at),
             "kibana.alert.rule.uuid": "r", "kibana.alert.rule.name": "rule"}
    with AlertStore(tmp_path / "s.db") as one, AlertStore(tmp_path / "s.db") as two:
        assert RunStore(one).commit(record, created=[alert]) == [True]
        assert RunStore(two).commit(record, created=[alert]) == [False]
        assert len(RunStore(one).history()) == 1 and one.count() == 1
