"""kill -9 a real ``credwatch run`` at random points; the store must equal a clean run's.

A replayed day (``--now``/``--until``) with two rules, the seed rule and a
copy with alert suppression over a duration (so suppressed alerts are
updated across executions and the bucket history lives in the state), is run
once cleanly. Then the same replay is started against a fresh store and
SIGKILLed at random moments at least 20 times, restarting it each time, and
finally left to finish. Alerts (every document), run history and scheduler
state must be identical: zero duplicates, zero missed alerts.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from credwatch.alerts.store import AlertStore
from credwatch.rules.loader import default_rule
from credwatch.rules.model import AlertSuppression, SuppressionDuration
from credwatch.rules.toml_format import dumps_toml
from tests.engine.daygen import DAY, generate_day, iso, write_ndjson

CREDWATCH = Path(sys.executable).parent / "credwatch"
KILLS = 20


def _suppressed_rule(path: Path) -> Path:
    rule = dataclasses.replace(
        default_rule(), rule_id="0d5c3a4e-credwatch-test-suppressed",
        name="Credential path access (suppressed by host and user)",
        alert_suppression=AlertSuppression(group_by=("host.name", "user.name"),
                                           duration=SuppressionDuration(value=30, unit="m")))
    path.write_text(dumps_toml(rule), encoding="utf-8")
    return path


def _cmd(src: Path, rule_file: Path, db: Path, out: Path) -> list[str]:
    return [str(CREDWATCH), "run", "--now", iso(DAY), "--until", iso(DAY + timedelta(days=1)),
            "--db", str(db), "--format", "ndjson", "--output", str(out), "--quiet",
            "--rule", default_rule().rule_id, "--rule", str(rule_file), str(src)]


def _executions(db: Path) -> int:
    """Committed executions so far (0 before the store exists)."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM rule_runs").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _snapshot(db: Path) -> dict[str, Any]:
    with AlertStore(db) as store:
        alerts = {a["kibana.alert.uuid"]: a for a in store.select()[0]}
        raw_count = store.count()
    conn = sqlite3.connect(db)
    try:
        runs = conn.execute(
            "SELECT execution_uuid, rule_uuid, started_at, windows, status, message, "
            "events_searched, events_matched, alerts_created, alerts_updated, suppressed "
            "FROM rule_runs ORDER BY rule_uuid, started_at").fetchall()
        state = conn.execute("SELECT * FROM rule_schedule_state ORDER BY rule_uuid").fetchall()
        instances = conn.execute(
            "SELECT * FROM suppression_instances ORDER BY alert_uuid").fetchall()
    finally:
        conn.close()
    return {"alerts": alerts, "count": raw_count, "runs": runs, "state": state,
            "instances": instances}


def test_sigkill_at_random_points_then_restart_gives_the_clean_result(tmp_path: Path) -> None:
    day = generate_day(seed=23, events=2500, positive_ratio=0.2)
    src = write_ndjson(tmp_path / "day.ndjson", day)
    rule_file = _suppressed_rule(tmp_path / "suppressed.toml")
    env = {**os.environ, "HOME": str(tmp_path)}

    subprocess.run(_cmd(src, rule_file, tmp_path / "clean.db", tmp_path / "clean.out"), env=env,
                   check=True, timeout=120, capture_output=True)
    clean = _snapshot(tmp_path / "clean.db")
    positives = {e["labels"]["seq"] for e in day if e["labels"]["truth"] == "positive"}
    seed_alerts = [a for a in clean["alerts"].values()
                   if a["kibana.alert.rule.rule_id"] == default_rule().rule_id]
    assert sorted(a["labels"]["seq"] for a in seed_alerts) == sorted(positives)
    assert len(clean["runs"]) == 2 * 289

    rng = random.Random(20260301)
    crash_db = tmp_path / "crash.db"
    kills = attempts = 0
    progress: list[int] = []
    while kills < KILLS:
        attempts += 1
        assert attempts < 200, "the replay kept finishing before it could be killed"
        before = _executions(crash_db)
        # a random point: after 0-40 more committed executions, plus up to 4 ms, so kills
        # land in start-up, between executions and inside transactions
        target = before + rng.randint(0, 40)
        proc = subprocess.Popen(_cmd(src, rule_file, crash_db, tmp_path / "crash.out"), env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and _executions(crash_db) < target \
                and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.004))
        if proc.poll() is not None:
            assert proc.returncode in (0, 1)
            break  # it finished: nothing left to interrupt
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        progress.append(_executions(crash_db))
    # the kills were spread over the replay, not all during start-up
    assert len(set(progress)) > KILLS // 2, progress
    assert kills >= KILLS
    subprocess.run(_cmd(src, rule_file, crash_db, tmp_path / "crash.out"), env=env,
                   check=False, timeout=120, capture_output=True)
    crashed = _snapshot(crash_db)

    assert crashed["count"] == clean["count"] == len(clean["alerts"])
    assert set(crashed["alerts"]) == set(clean["alerts"])  # none missed, none extra
    assert crashed["alerts"] == clean["alerts"]  # identical documents (suppression counts too)
    assert crashed["runs"] == clean["runs"]  # every execution exactly once
    assert crashed["state"] == clean["state"]
    assert crashed["instances"] == clean["instances"]
