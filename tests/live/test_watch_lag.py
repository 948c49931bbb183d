"""watch says when it falls behind: lag in bytes and seconds, in its reports and its status row.

A backlog is written before the watch starts and the watch reads at most a few
KiB per poll (its processing limit), so it is behind for many polls. The test
drives it poll by poll: the lag is read from the watcher, from its reports and
from the ``watch_status`` row another connection reads from the store; how old
the backlog is comes from the file's mtime, set by the test (nothing waits).
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any

from credwatch.alerts.store import AlertStore
from credwatch.cli.env import Env
from credwatch.cli.main import program
from credwatch.engine.runs import RunStore
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.watch import Watcher
from credwatch.rules.loader import default_rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.follow import MAX_POLL_BYTES, Follower
from tests.live.helpers import CAPTURE, FakeClock, scan_uuids

BUDGET = 16 << 10
EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples" / "ecs"


def _watcher(log: Path, db: Path, clock: FakeClock, problems: list[str],
             alerts: list[dict[str, Any]], wall: float) -> Watcher:
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=Diagnostics())
    return Watcher(str(log), scanner, AlertStore(db), [], start="beginning", idle_seconds=2.0,
                   clock=clock, wall=lambda: wall, max_poll_bytes=BUDGET, status_every=0.0,
                   lag_warn_seconds=1.0, lag_report_every=30.0,
                   on_problem=lambda e: problems.append(str(e)),
                   on_alert=lambda a: alerts.append(dict(a)))


def test_a_backlog_is_reported_as_lag_until_it_is_read(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    data = CAPTURE.read_bytes()
    log.write_bytes(data)
    written = time.time() - 120  # the backlog was written two minutes before "now"
    os.utime(log, (written, written))
    clock, problems, alerts = FakeClock(), list[str](), list[dict[str, Any]]()
    db = tmp_path / "a.db"
    w = _watcher(log, db, clock, problems, alerts, wall=written + 120)
    reader = RunStore(AlertStore(db))  # another connection, as `credwatch runs` would read it

    w.step()
    assert 0 < w.lag.bytes == len(data) - w.lag.offset and w.lag.offset <= BUDGET
    assert w.lag.seconds >= 119.0  # at least as old as the file's last write
    status = reader.watch_statuses(str(log))[0]
    assert status.running and status.lag_bytes == w.lag.bytes > 0
    assert status.lag_seconds >= 119.0 and status.file_size == len(data)
    behind = [p for p in problems if "falling behind" in p]
    assert len(behind) == 1 and f"{log}: falling behind: {w.lag.bytes} bytes not read yet" in behind[0]

    steps = 1
    while w.lag.bytes:
        clock.now += 1  # one second per poll: within 30 s only one more report
        w.step()
        steps += 1
        assert steps < 10 * len(data) // BUDGET
    assert steps >= len(data) // BUDGET  # the limit held: the backlog took many polls
    assert sum("falling behind" in p for p in problems) == 1 + (steps - 2) // 30
    assert problems[-1].endswith("caught up: every byte written has been read")
    status = reader.watch_statuses(str(log))[0]
    assert status.lag_bytes == 0 and status.lag_seconds == 0.0
    assert status.read_offset == status.file_size == len(data)
    assert status.max_lag_seconds >= 119.0 and status.lines == data.count(b"\n")

    clock.now += 10
    w.step()  # the last events go quiet
    assert {a["kibana.alert.uuid"] for a in alerts} == scan_uuids(CAPTURE)
    w.follower.close()
    w.store.close()


def test_lag_is_zero_while_the_watch_keeps_up(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    clock, problems, alerts = FakeClock(), list[str](), list[dict[str, Any]]()
    w = _watcher(log, tmp_path / "a.db", clock, problems, alerts, wall=time.time())
    for piece in CAPTURE.read_bytes().splitlines(keepends=True)[:200]:
        with open(log, "ab") as fh:
            fh.write(piece)
        w.step()
        assert w.lag.bytes == 0 and w.lag.seconds == 0.0
    assert not problems
    w.follower.close()
    w.store.close()


def test_a_rotation_during_a_backlog_loses_nothing(tmp_path: Path) -> None:
    """The budget stops reading mid-file: the renamed file is still read to its end first."""
    log = tmp_path / "audit.log"
    first = b"".join(b"old %06d\n" % i for i in range(5000))
    second = b"".join(b"new %06d\n" % i for i in range(100))
    log.write_bytes(first)
    follower = Follower(log, start="beginning", max_poll_bytes=4096)
    got = follower.poll()
    assert 0 < len(got) <= 4096 // 11 + 1 and follower.more
    os.rename(log, tmp_path / "audit.log.1")
    log.write_bytes(second)
    polls = 1
    while batch := follower.poll():
        got += batch
        polls += 1
    assert [fl.line for fl in got] == first.splitlines(keepends=True) + second.splitlines(keepends=True)
    assert polls >= len(first) // 4096
    follower.close()


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(b""), stdout=out, stderr=err, environ={"HOME": "/nonexistent"},
              stdout_isatty=False, stderr_isatty=False)
    code = program(list(argv), env)
    return code, out.getvalue(), err.getvalue()


def test_watch_says_it_fell_behind_and_runs_watch_shows_the_status(tmp_path: Path) -> None:
    """End to end: an old backlog larger than one poll's read; stderr and `runs --watch` say so."""
    log = tmp_path / "events.ndjson"
    sample = (EXAMPLES / "defend.ndjson").read_bytes()
    copies = (MAX_POLL_BYTES * 3 // 2) // len(sample) + 1
    log.write_bytes(sample * copies)
    old = time.time() - 600
    os.utime(log, (old, old))
    db = str(tmp_path / "a.db")
    code, out, err = _cli("watch", str(log), "--input-format", "ndjson", "--from", "beginning",
                          "--max-idle", "0", "--format", "ndjson", "--db", db)
    assert code == 0 and out  # the sample's alerts
    behind = [ln for ln in err.splitlines() if "falling behind" in ln]
    assert len(behind) == 1 and behind[0].startswith(f"credwatch: {log}: falling behind: ")
    assert "caught up" in err
    code, out, _ = _cli("runs", "--watch", "--format", "json", "--db", db)
    (status,) = json.loads(out)
    assert code == 0 and status["path"] == str(log) and not status["running"]
    assert status["lag_bytes"] == 0 and status["read_offset"] == status["file_size"] == len(sample) * copies
    assert status["max_lag_seconds"] >= 599 and status["lines"] == sample.count(b"\n") * copies
    code, out, _ = _cli("runs", "--watch", "--db", db)
    assert code == 0 and out.startswith(f"{log}: stopped (pid ") and "lag 0 bytes, 0.0 s" in out


def test_an_idle_watch_writes_its_status_only_as_a_heartbeat(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(CAPTURE.read_bytes()[:4000].rsplit(b"\n", 1)[0] + b"\n")
    clock, wall = FakeClock(), [1.8e9]
    db = tmp_path / "a.db"
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=Diagnostics())
    w = Watcher(str(log), scanner, AlertStore(db), [], start="beginning", clock=clock,
                wall=lambda: wall[0], status_every=1.0)
    reader = RunStore(AlertStore(db))

    def updated() -> float:
        return reader.watch_statuses(str(log))[0].updated_at.timestamp()

    w.step()
    first = updated()
    for _ in range(25):  # 50 s without new data: nothing to write
        clock.now += 2
        wall[0] += 2
        w.step()
    assert updated() == first
    with open(log, "ab") as fh:  # something changes: written at the next step
        fh.write(CAPTURE.read_bytes().splitlines(keepends=True)[100])
    clock.now += 2
    wall[0] += 2
    w.step()
    changed = updated()
    assert changed > first
    for _ in range(31):  # 62 s idle: one heartbeat
        clock.now += 2
        wall[0] += 2
        w.step()
    assert updated() > changed
    w.follower.close()
    w.store.close()
