"""kill -9 a real ``credwatch watch`` again and again, with copytruncate rotations in between.

A real audit capture, repeated with shifted timestamps so every copy gives
alerts of its own, is appended to a log in rounds. Each round starts
``credwatch watch``, writes the next part, reads a random number of alerts from
its stdout (the signal that it is mid-stream) and SIGKILLs it. Every other
round logrotate's copytruncate runs: while the watcher runs, or while it is
down. A last run finishes the log. The store must hold exactly the alerts a
one-shot scan of the same bytes gives, and no alert may be printed twice.

Synchronisation is by the alerts the process prints (a blocking read on its
stdout, with a generous limit only as a failure guard) and by its exit; no
test step waits for time to pass.
"""

from __future__ import annotations

import os
import random
import re
import selectors
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import orjson

from credwatch.alerts.store import AlertStore
from tests.live.helpers import CAPTURE, scan_uuids

CREDWATCH = Path(sys.executable).parent / "credwatch"
COPIES = 6
ROUNDS = 12
GUARD_SECONDS = 60.0
_STAMP = re.compile(rb"audit\((\d+)\.(\d+):(\d+)\)")


def _shifted(data: bytes, k: int) -> bytes:
    def shift(m: re.Match[bytes]) -> bytes:
        sec, frac, serial = int(m[1]) + k * 10_000, m[2], int(m[3]) + k * 100_000
        return b"audit(%d.%s:%d)" % (sec, frac, serial)
    return _STAMP.sub(shift, data)


class Lines:
    """Alert lines read from a process's stdout as they come."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)
        self.buf = b""
        self.lines: list[bytes] = []

    def read(self, n: int) -> None:
        """Block until ``n`` complete lines arrived (or fail after the guard time)."""
        while len(self.lines) < n:
            assert self.sel.select(GUARD_SECONDS), "watch printed nothing for a minute"
            chunk = os.read(self.fd, 1 << 16)
            assert chunk, "watch exited early"
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            self.lines += done

    def drain(self) -> None:
        """Every complete line left once the process has ended.

        A line cut by SIGKILL is dropped: that output line is lost, the alert is in
        the store (it is committed before it is printed).
        """
        while chunk := os.read(self.fd, 1 << 16):
            self.buf += chunk
        *done, _torn = self.buf.split(b"\n")
        self.lines += done
        self.buf = b""
        self.sel.close()


def _copytruncate(log: Path) -> None:
    """logrotate's copytruncate with rotate 9: shift the copies, copy, truncate in place."""
    for i in range(8, 0, -1):
        older = log.with_name(f"{log.name}.{i}")
        if older.exists():
            older.rename(log.with_name(f"{log.name}.{i + 1}"))
    shutil.copyfile(log, log.with_name(f"{log.name}.1"))
    with open(log, "r+b") as fh:
        fh.truncate(0)


def _watch(log: Path, db: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(CREDWATCH), "watch", str(log), "--from", "beginning",
                             "--db", str(db), "--format", "ndjson", "--quiet",
                             "--idle-close", "0.2", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _rounds(parts: list[bytes], owed: list[int], log: Path, db: Path, rng: random.Random,
            printed: list[bytes], procs: list[subprocess.Popen[bytes]]) -> None:
    """Write each part under a watcher killed mid-stream; then one run to the end."""
    for round_, part in enumerate(parts):
        proc = _watch(log, db)
        procs.append(proc)
        out = Lines(proc)
        half = rng.randint(1, len(part) - 1)
        with open(log, "ab") as fh:
            fh.write(part[:half])  # mid-line: the watcher sees half a record for a while
            fh.flush()
            fh.write(part[half:])
        if round_ % 4 == 1 and owed[round_]:
            out.read(1)
            _copytruncate(log)  # while it runs
        out.read(rng.randint(len(out.lines), max(len(out.lines), min(owed[round_], 4))))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        out.drain()
        printed += out.lines
        if round_ % 4 == 3:
            _copytruncate(log)  # while it is down
    proc = _watch(log, db, "--max-idle", "1")
    procs.append(proc)
    out = Lines(proc)
    out.drain()  # to its exit: --max-idle ends it once the log is read
    assert proc.wait(timeout=GUARD_SECONDS) in (0, 1)  # 1: everything was already out
    printed += out.lines



def test_sigkill_and_copytruncate_lose_nothing_and_duplicate_nothing(tmp_path: Path) -> None:
    data = b"".join(_shifted(CAPTURE.read_bytes(), k) for k in range(COPIES))
    whole = tmp_path / "whole.log"
    whole.write_bytes(data)
    expected = scan_uuids(whole)
    assert len(expected) > 200
    lines = data.splitlines(keepends=True)
    # Round boundaries fall between events: auditd writes an event's records together
    # (a watcher closes an event that stays quiet for --idle-close), and a copytruncate
    # between the two halves of one line would tear it for any reader.
    stamps = [m[0] if (m := _STAMP.search(x)) else b"" for x in lines]
    last = {st: i for i, st in enumerate(stamps)}
    starts, reach = [], 0
    for i in range(1, len(lines)):
        reach = max(reach, last[stamps[i - 1]])
        if reach < i:  # no event begun before line i has a record at or after it
            starts.append(i)
    cuts = sorted(random.Random(5).sample(starts, ROUNDS - 1))
    parts = [b"".join(lines[a:b]) for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True)]
    # Alerts each part gives: all of them are new to the store, so at least that many
    # lines are printed in its round (the signal waited on never waits for more).
    owed = []
    for i, part in enumerate(parts):
        (tmp_path / f"part{i}.log").write_bytes(part)
        owed.append(len(scan_uuids(tmp_path / f"part{i}.log")))

    rng = random.Random(20261204)
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    db = tmp_path / "a.db"
    printed: list[bytes] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _rounds(parts, owed, log, db, rng, printed, procs)
    finally:
        for p in procs:  # a failed guard must not leave a watcher behind
            if p.poll() is None:
                p.kill()
                p.wait()

    uuids = [str(orjson.loads(x)["kibana.alert.uuid"]) for x in printed]
    assert len(uuids) == len(set(uuids)), "an alert was printed twice"
    with AlertStore(db) as store:
        stored = store.uuids()
        assert store.count() == len(stored)
    assert stored == expected, (f"missing {len(expected - stored)}, "
                                f"unexpected {len(stored - expected)}")
    assert len(list(tmp_path.glob("audit.log.*"))) >= 2  # the rotations really happened
