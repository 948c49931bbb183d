"""`credwatch watch`: follow, rotate, restart, one checkpoint per file; driven poll by poll.

The tests call :meth:`Watcher.step` themselves after each write, and close
audit events by advancing an injected clock: nothing waits for time to pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from credwatch.alerts.store import AlertStore
from credwatch.engine.checkpoint import CheckpointStore
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.watch import Watcher
from credwatch.errors import SourceError
from credwatch.rules.loader import default_rule
from credwatch.sources.diagnostics import Diagnostics
from tests.live.helpers import CAPTURE, SAMPLE, FakeClock, scan_uuids

ROOT = Path(__file__).resolve().parents[2]


def make_watcher(path: Path | str, db: Path, alerts: list[dict[str, Any]], clock: FakeClock,
                 problems: list[str] | None = None, **kw: Any) -> tuple[Watcher, AlertStore]:
    store = AlertStore(db)
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=Diagnostics())
    w = Watcher(str(path), scanner, store, [], start="beginning", idle_seconds=2.0, clock=clock,
                on_alert=lambda a: alerts.append(dict(a)),
                on_problem=(lambda e: problems.append(str(e))) if problems is not None else None,
                **kw)
    return w, store


def settle(w: Watcher, clock: FakeClock) -> None:
    """Let every pending audit event go quiet, and poll."""
    clock.now += 10
    w.step()


def chunks(data: bytes, n: int) -> Iterator[bytes]:
    """Split into n pieces at arbitrary byte positions (half lines included)."""
    step = max(1, len(data) // n)
    for i in range(0, len(data), step):
        yield data[i:i + step]


def thirds(data: bytes) -> tuple[bytes, bytes, bytes]:
    lines = data.splitlines(keepends=True)
    third = len(lines) // 3
    return (b"".join(lines[:third]), b"".join(lines[third:2 * third]),
            b"".join(lines[2 * third:]))


def test_follow_with_half_lines_rename_and_copytruncate_rotation(tmp_path: Path) -> None:
    part1, part2, part3 = thirds(CAPTURE.read_bytes())
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    alerts: list[dict[str, Any]] = []
    clock = FakeClock()
    w, store = make_watcher(log, tmp_path / "a.db", alerts, clock)
    with open(log, "ab") as fh:
        for piece in chunks(part1, 7):
            fh.write(piece)
            fh.flush()
            w.step()
    # rename rotation (auditd's own), then keep writing to a new file
    os.rename(log, tmp_path / "audit.log.1")
    with open(log, "wb") as fh:
        fh.write(part2[:len(part2) // 2])
    w.step()
    with open(log, "ab") as fh:
        fh.write(part2[len(part2) // 2:])
    # copytruncate rotation: copy, truncate in place, keep writing, all before the next poll
    shutil.copy(log, tmp_path / "audit.log.2")
    with open(log, "r+b") as fh:
        fh.truncate(0)
    with open(log, "ab") as fh:
        fh.write(part3)
    w.step()
    settle(w, clock)
    got = [str(a["kibana.alert.uuid"]) for a in alerts]
    assert len(got) == len(set(got)), "no duplicates"
    assert set(got) == scan_uuids(CAPTURE), "nothing lost"
    assert store.count() == len(got)
    store.close()


def test_restart_mid_stream_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    data = CAPTURE.read_bytes()
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    db = tmp_path / "a.db"
    emitted: list[str] = []
    pieces = list(chunks(data, 10))
    for round_ in range(3):
        alerts: list[dict[str, Any]] = []
        clock = FakeClock()
        w, store = make_watcher(log, db, alerts, clock)
        with open(log, "ab") as fh:
            for piece in pieces[round_ * 3: round_ * 3 + 3 + (1 if round_ == 2 else 0)]:
                fh.write(piece)
                fh.flush()
                w.step()
        # Stop while events are still in flight (the watcher is just dropped, as by a
        # crash), except after the last round.
        if round_ == 2:
            settle(w, clock)
        w.follower.close()
        store.close()
        emitted.extend(str(a["kibana.alert.uuid"]) for a in alerts)
    assert len(emitted) == len(set(emitted)), "a restart re-emitted an alert"
    assert set(emitted) == scan_uuids(CAPTURE), "a restart lost an alert"


def test_relative_and_absolute_paths_share_one_checkpoint(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    part1, part2, _ = thirds(CAPTURE.read_bytes())
    log = tmp_path / "audit.log"
    log.write_bytes(part1)
    db = tmp_path / "a.db"
    monkeypatch.chdir(tmp_path)
    first: list[dict[str, Any]] = []
    clock = FakeClock()
    w, store = make_watcher("./audit.log", db, first, clock)
    w.step()  # stopped with the event at the end of part1 still in flight
    w.follower.close()
    store.close()
    with open(log, "ab") as fh:
        fh.write(part2)
    second: list[dict[str, Any]] = []
    w, store = make_watcher(log.resolve(), db, second, clock)
    w.step()
    settle(w, clock)
    assert w.stats.duplicates == 0, "the absolute path re-read what ./audit.log had read"
    assert second, "the second part has alerts of its own"
    ids = [a["kibana.alert.uuid"] for a in first + second]
    assert len(ids) == len(set(ids))
    both = tmp_path / "both.log"
    both.write_bytes(part1 + part2)
    assert set(ids) == scan_uuids(both)
    rows = CheckpointStore(store.conn).all()
    assert len(rows) == 1 and rows[0].path == str(log.resolve())
    w.follower.close()
    store.close()


def test_a_checkpoint_of_an_older_credwatch_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    part1, part2, _ = thirds(CAPTURE.read_bytes())
    log = tmp_path / "audit.log"
    log.write_bytes(part1 + part2)
    db = tmp_path / "a.db"
    AlertStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE checkpoints (path TEXT PRIMARY KEY, inode INTEGER NOT NULL, "
                 "offset INTEGER NOT NULL, updated TEXT NOT NULL)")
    conn.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                 (str(log), os.stat(log).st_ino, len(part1), "2026-12-01T00:00:00+00:00"))
    conn.commit()
    conn.close()
    alerts: list[dict[str, Any]] = []
    clock = FakeClock()
    w, store = make_watcher(log, db, alerts, clock)
    lines = w.follower.poll()
    assert lines[0].start == len(part1)
    assert lines[0].lineno == part1.count(b"\n") + 1  # counted again
    w.follower.close()
    store.close()


def test_alert_is_emitted_within_a_second_of_the_write(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    seen = threading.Event()
    store = AlertStore(tmp_path / "a.db")
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=Diagnostics())
    w = Watcher(str(log), scanner, store, [], start="beginning", on_alert=lambda a: seen.set())
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), daemon=True)
    t.start()
    with open(log, "ab") as fh:
        fh.write(SAMPLE.read_bytes())
    written = time.monotonic()
    assert seen.wait(5)
    latency = time.monotonic() - written
    stop.set()
    t.join(5)
    store.close()
    # Default poll (0.15 s) + idle close (0.3 s): well under the one-second promise.
    assert latency < 1.0, f"first alert after {latency:.2f}s"


def test_watch_command_follows_ndjson(tmp_path: Path) -> None:
    src = ROOT / "src" / "credwatch" / "examples" / "ecs" / "auditbeat.ndjson"
    log = tmp_path / "events.ndjson"
    log.write_bytes(src.read_bytes())
    exe = shutil.which("credwatch", path=os.path.dirname(sys.executable))
    assert exe
    proc = subprocess.run([exe, "watch", str(log), "--from", "beginning", "--max-idle", "0.5",
                           "--db", str(tmp_path / "a.db")], capture_output=True, check=False,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = [orjson.loads(x) for x in proc.stdout.splitlines()]
    assert {a["kibana.alert.uuid"] for a in out} == scan_uuids(src)


def test_problems_reach_on_problem_as_source_errors(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(SAMPLE.read_bytes() + b"x" * 9000 + b"\n")
    got: list[SourceError] = []
    store = AlertStore(tmp_path / "a.db")
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=Diagnostics())
    w = Watcher(str(log), scanner, store, [], start="beginning", max_line_bytes=8192,
                on_problem=got.append)
    w.step()
    n = SAMPLE.read_bytes().count(b"\n") + 1
    assert [(e.path, e.line) for e in got] == [(str(log), n)]
    assert w.stats.failed == 0  # a skipped line is a note, not a failure
    w.follower.close()
    store.close()


# --- live, with the kernel's audit subsystem -----------------------------------------------

@pytest.mark.root
def test_live_auditd_cat_of_fake_aws_credentials_gives_exactly_one_alert(
        live_auditd: tuple[Path, str], tmp_path: Path) -> None:
    """A real auditd (private config, see tests/sources/test_auditd_live.py) and a real exec.

    Synchronised on what ``watch`` prints: a blocking read of its stdout (with a
    generous limit only as a failure guard), then SIGTERM and its exit.
    """
    import selectors
    import signal

    log, _key = live_auditd
    creds = tmp_path / "home" / ".aws" / "credentials"
    creds.parent.mkdir(parents=True)
    creds.write_text("[default]\naws_access_key_id = FAKE-NOT-A-SECRET\n")
    exe = shutil.which("credwatch", path=os.path.dirname(sys.executable))
    assert exe
    watch = subprocess.Popen([exe, "watch", str(log), "--from", "beginning",
                              "--db", str(tmp_path / "a.db"), "--format", "ndjson"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        subprocess.run(["cat", str(creds)], check=True, capture_output=True)
        assert watch.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(watch.stdout.fileno(), selectors.EVENT_READ)
        out = b""
        while str(creds).encode() not in out:
            assert sel.select(30), "no alert for the exec within 30 s"
            chunk = os.read(watch.stdout.fileno(), 1 << 16)
            assert chunk, "watch exited"
            out += chunk
        sel.close()
        watch.send_signal(signal.SIGTERM)
        rest, err = watch.communicate(timeout=30)
        alerts = [orjson.loads(x) for x in (out + rest).splitlines() if x.strip()]
        mine = [a for a in alerts if a["process"].get("args") == ["cat", str(creds)]]
        assert len(mine) == 1, err.decode()
        assert mine[0]["process"]["name"] == "cat"
        assert mine[0]["event.kind"] == "signal"
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


@pytest.mark.root
def test_live_auditd_rotation_while_watching_loses_nothing(
        live_auditd: tuple[Path, str], tmp_path: Path) -> None:
    """auditd rotates its own log (SIGUSR1, as `service auditd rotate`) between two execs."""
    import selectors
    import signal

    from tests.sources.test_auditd_live import _status

    log, _key = live_auditd
    files = []
    for name in ("one", "two"):
        creds = tmp_path / name / ".aws" / "credentials"
        creds.parent.mkdir(parents=True)
        creds.write_text("[default]\naws_access_key_id = FAKE-NOT-A-SECRET\n")
        files.append(creds)
    exe = shutil.which("credwatch", path=os.path.dirname(sys.executable))
    assert exe
    watch = subprocess.Popen([exe, "watch", str(log), "--from", "beginning",
                              "--db", str(tmp_path / "a.db"), "--format", "ndjson"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert watch.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(watch.stdout.fileno(), selectors.EVENT_READ)
    out = b""

    def wait_for(text: bytes) -> None:
        nonlocal out
        while text not in out:
            assert sel.select(30), f"no alert for {text!r} within 30 s"
            chunk = os.read(watch.stdout.fileno(), 1 << 16)  # type: ignore[union-attr]
            assert chunk, "watch exited"
            out += chunk

    try:
        subprocess.run(["cat", str(files[0])], check=True, capture_output=True)
        wait_for(str(files[0]).encode())
        os.kill(_status()["pid"], signal.SIGUSR1)  # auditd: rotate the log now
        subprocess.run(["cat", str(files[1])], check=True, capture_output=True)
        wait_for(str(files[1]).encode())
        sel.close()
        watch.send_signal(signal.SIGTERM)
        rest, err = watch.communicate(timeout=30)
        alerts = [orjson.loads(x) for x in (out + rest).splitlines() if x.strip()]
        for creds in files:
            mine = [a for a in alerts if a["process"].get("args") == ["cat", str(creds)]]
            assert len(mine) == 1, err.decode()
        assert log.with_name("audit.log.1").exists()  # auditd did rotate
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()


def test_a_real_auditd_rotation_replayed_gives_one_alert_per_file(tmp_path: Path) -> None:
    """auditd's own rotation (tests/fixtures/auditd/rotation): DAEMON_ROTATE, rename, new file."""
    real = ROOT / "tests" / "fixtures" / "auditd" / "rotation"
    old, new = (real / "audit.log.1").read_bytes(), (real / "audit.log").read_bytes()
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    alerts: list[dict[str, Any]] = []
    clock = FakeClock()
    w, store = make_watcher(log, tmp_path / "a.db", alerts, clock)
    with open(log, "ab") as fh:
        fh.write(old[:len(old) // 2])
        fh.flush()
        w.step()
        fh.write(old[len(old) // 2:])
    os.rename(log, tmp_path / "audit.log.1")
    log.write_bytes(new)
    w.step()
    settle(w, clock)
    assert [a["process"]["args"] for a in alerts] == [["cat", "/tmp/cwfake/.aws/credentials"]] * 2
    assert {a["kibana.alert.uuid"] for a in alerts} == scan_uuids(real / "audit.log.1",
                                                                  real / "audit.log")
    assert w.audit_diag.skipped_total == 0
    w.follower.close()
    store.close()
