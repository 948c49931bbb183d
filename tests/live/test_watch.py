"""`credwatch watch`: follow, rotate, restart, and a live end-to-end test with a real auditd."""

from __future__ import annotations

import os
import shutil
import signal
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
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.watch import Watcher
from credwatch.rules.loader import default_rule
from credwatch.sources.ecs import Diagnostics

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "tests" / "fixtures" / "auditd" / "enriched_workload.log"
SAMPLE = ROOT / "src" / "credwatch" / "examples" / "auditd" / "audit.log"


def make_watcher(path: Path, db: Path, alerts: list[dict[str, Any]],
                 idle: float = 2.0) -> tuple[Watcher, AlertStore]:
    # auditd writes an event's records together; these tests pause for up to
    # 0.5 s mid-event (at rotations), so events close on idle only after 2 s.
    store = AlertStore(db)
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=Diagnostics())
    w = Watcher(str(path), scanner, store, [], start="beginning", poll_interval=0.05,
                idle_seconds=idle, on_alert=alerts.append)
    return w, store


def scan_uuids(*paths: Path) -> set[str]:
    """Alert ids a one-shot scan of the same bytes produces (the reference)."""
    from credwatch.engine.scan import Scanner
    from credwatch.sources.ecs import read_records

    diag = Diagnostics()
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=diag)
    out = set()
    for p in paths:
        for alert in scanner.scan(read_records([str(p)], diag)):
            out.add(str(alert["kibana.alert.uuid"]))
    return out


def run_in_thread(w: Watcher, max_idle: float | None = None) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,), kwargs={"max_idle": max_idle}, daemon=True)
    t.start()
    return t, stop


def chunks(data: bytes, n: int) -> Iterator[bytes]:
    """Split into n pieces at arbitrary byte positions (half lines included)."""
    step = max(1, len(data) // n)
    for i in range(0, len(data), step):
        yield data[i:i + step]


def test_follow_with_half_lines_rename_and_copytruncate_rotation(tmp_path: Path) -> None:
    data = CAPTURE.read_bytes()
    lines = data.splitlines(keepends=True)
    third = len(lines) // 3
    part1, part2, part3 = (b"".join(lines[:third]), b"".join(lines[third:2 * third]),
                           b"".join(lines[2 * third:]))
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    alerts: list[dict[str, Any]] = []
    w, store = make_watcher(log, tmp_path / "a.db", alerts)
    t, stop = run_in_thread(w)
    with open(log, "ab") as fh:
        for piece in chunks(part1, 7):
            fh.write(piece)
            fh.flush()
            time.sleep(0.03)
    time.sleep(0.5)
    # rename rotation (auditd's own), then keep writing to a new file
    os.rename(log, tmp_path / "audit.log.1")
    with open(log, "wb") as fh:
        fh.write(part2)
    time.sleep(0.5)
    # copytruncate rotation: copy, truncate in place, keep writing
    shutil.copy(log, tmp_path / "audit.log.2")
    with open(log, "r+b") as fh:
        fh.truncate(0)
    time.sleep(0.3)
    with open(log, "ab") as fh:
        fh.write(part3)
    time.sleep(2.8)
    stop.set()
    t.join(5)
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
        w, store = make_watcher(log, db, alerts)
        t, stop = run_in_thread(w)
        with open(log, "ab") as fh:
            for piece in pieces[round_ * 3: round_ * 3 + 3 + (1 if round_ == 2 else 0)]:
                fh.write(piece)
                fh.flush()
                time.sleep(0.05)
        # Stop while events are still in flight, except after the last round.
        time.sleep(0.2 if round_ < 2 else 2.8)
        stop.set()
        t.join(5)
        store.close()
        emitted.extend(str(a["kibana.alert.uuid"]) for a in alerts)
    assert len(emitted) == len(set(emitted)), "a restart re-emitted an alert"
    assert set(emitted) == scan_uuids(CAPTURE), "a restart lost an alert"


def test_alert_is_emitted_within_a_second_of_the_write(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    seen = threading.Event()
    alerts: list[dict[str, Any]] = []
    store = AlertStore(tmp_path / "a.db")
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=Diagnostics())
    w = Watcher(str(log), scanner, store, [], start="beginning",
                on_alert=lambda a: (alerts.append(dict(a)), seen.set()))
    t, stop = run_in_thread(w)
    time.sleep(0.3)
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


# --- live, with the kernel's audit subsystem -----------------------------------------------

def _auditd_available() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not (shutil.which("auditctl") and os.path.exists("/sbin/auditd")):
        return "auditd/auditctl not installed"
    probe = subprocess.run(["auditctl", "-s"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"kernel audit unavailable: {probe.stderr.decode().strip()}"
    return None


@pytest.mark.root
def test_live_auditd_cat_of_fake_aws_credentials_gives_exactly_one_alert(tmp_path: Path) -> None:
    reason = _auditd_available()
    if reason:
        pytest.skip(reason)
    log = Path("/var/log/audit/audit.log")
    creds = Path("/root/.aws/credentials")
    backup = creds.read_bytes() if creds.exists() else None
    started: subprocess.Popen[bytes] | None = None
    already = subprocess.run(["pgrep", "-x", "auditd"], capture_output=True, check=False).returncode == 0
    rules_before = subprocess.run(["auditctl", "-l"], capture_output=True, check=False).stdout
    enabled_before = b"enabled 1" in subprocess.run(["auditctl", "-s"], capture_output=True,
                                                    check=False).stdout
    watch: subprocess.Popen[bytes] | None = None
    try:
        if not already:
            started = subprocess.Popen(["/sbin/auditd", "-n"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            for _ in range(50):
                if log.exists():
                    break
                time.sleep(0.1)
        subprocess.run(["auditctl", "-e", "1"], check=True, capture_output=True)
        subprocess.run(["auditctl", "-a", "always,exit", "-F", "arch=b64", "-S", "execve",
                        "-k", "credwatch-test"], check=True, capture_output=True)
        creds.parent.mkdir(parents=True, exist_ok=True)
        creds.write_text("[default]\naws_access_key_id = FAKE-NOT-A-SECRET\n")
        exe = shutil.which("credwatch", path=os.path.dirname(sys.executable))
        assert exe
        watch = subprocess.Popen([exe, "watch", str(log), "--db", str(tmp_path / "a.db"),
                                  "--format", "ndjson"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        time.sleep(1.5)
        subprocess.run(["cat", str(creds)], check=True, capture_output=True)
        time.sleep(2.0)
        watch.send_signal(signal.SIGTERM)
        out, err = watch.communicate(timeout=20)
        alerts = [orjson.loads(x) for x in out.splitlines()]
        mine = [a for a in alerts if a["process"].get("args") == ["cat", str(creds)]]
        assert len(mine) == 1, err.decode()
        assert mine[0]["process"]["name"] == "cat"
        assert mine[0]["event.kind"] == "signal"
    finally:
        if watch and watch.poll() is None:
            watch.kill()
        subprocess.run(["auditctl", "-D"], capture_output=True, check=False)
        for line in rules_before.decode().splitlines():
            if line.startswith("-"):
                subprocess.run(["auditctl", *line.split()], capture_output=True, check=False)
        if started is not None:
            started.terminate()
            started.wait(10)
        if not enabled_before:
            subprocess.run(["auditctl", "-e", "0"], capture_output=True, check=False)
        if backup is None:
            creds.unlink(missing_ok=True)
        else:
            creds.write_bytes(backup)
