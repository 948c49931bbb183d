"""Hostile input for `credwatch watch` (issue #12, items 2 and 9).

Over-long lines in bounded memory and linear time, a record that makes
evaluation fail (reported once, passed, not again after a restart), a corrupt
rotated ``.gz`` (``path: reason``, exit 3, the rest still evaluated), a FIFO
given as the log. Polls are driven by the tests or end with ``--max-idle 0``.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from credwatch.alerts.store import AlertStore
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.watch import Watcher
from credwatch.rules.loader import default_rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.follow import Follower
from tests.cli.helpers import run_cli
from tests.live.helpers import SAMPLE, FakeClock, scan_uuids

CREDWATCH = Path(sys.executable).parent / "credwatch"
BIG = 20 * 1024 * 1024
#: The event the poisoned matcher refuses: `cat /root/.aws/credentials`, pid 4996.
POISON_PID = 4996


def _watch(log: Path, db: Path, *extra: str) -> Any:
    return run_cli("watch", str(log), "--from", "beginning", "--max-idle", "0", "--idle-close",
                   "0", "--db", str(db), "--format", "ndjson", *extra)


# --- over-long lines ------------------------------------------------------------------------

def _measured_watch(log: Path, db: Path) -> tuple[subprocess.CompletedProcess[bytes], float, float]:
    """Run ``watch`` over ``log`` to its end; its peak RSS (MB) and wall time (s).

    A wrapper process measures its one child, so other children of this test
    session do not count.
    """
    measure = ("import resource, subprocess, sys, time; t = time.monotonic(); "
               "p = subprocess.run(sys.argv[1:], capture_output=True); "
               "sys.stdout.buffer.write(p.stdout); sys.stderr.buffer.write(p.stderr); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
               "time.monotonic() - t, file=sys.stderr); sys.exit(p.returncode)")
    proc = subprocess.run([sys.executable, "-c", measure, str(CREDWATCH), "watch", str(log),
                           "--from", "beginning", "--max-idle", "0", "--idle-close", "0",
                           "--db", str(db), "--format", "ndjson"],
                          capture_output=True, timeout=120, check=False)
    rss_kb, secs = proc.stderr.splitlines()[-1].split()
    return proc, int(rss_kb) / 1024, float(secs)


def test_a_20mb_line_is_skipped_in_bounded_memory_and_reported(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    with open(log, "wb") as fh:
        fh.write(b"type=" + b"A" * BIG + b"\n")
        fh.write(SAMPLE.read_bytes())
    _, base_mb, base_s = _measured_watch(SAMPLE, tmp_path / "base.db")
    proc, peak_mb, elapsed = _measured_watch(log, tmp_path / "a.db")
    assert proc.returncode == 0, proc.stderr  # the sample's alerts, and a skipped line is a note
    assert f"{log}:1: line too long".encode() in proc.stderr
    uuids = {line.split(b'"kibana.alert.uuid":"')[1][:64].decode()
             for line in proc.stdout.splitlines()}
    assert uuids == scan_uuids(SAMPLE)
    # The follower holds at most the 16 MiB line limit while it skips, never the whole
    # line (holding it, and copies of it, took 39 MB more and 6.5 s before).
    assert peak_mb - base_mb < 24, f"peak RSS {peak_mb:.0f} MB vs {base_mb:.0f} MB"
    assert elapsed - base_s < 4, f"{elapsed:.1f}s vs {base_s:.1f}s"


def test_an_over_long_line_written_in_small_pieces_costs_linear_time(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"")
    f = Follower(log, start="beginning", max_line_bytes=BIG * 2)
    piece = b"B" * 16384
    started = time.monotonic()
    with open(log, "ab", buffering=0) as fh:
        for _ in range(BIG // len(piece)):
            fh.write(piece)
            assert f.poll() == []  # unfinished: held, searched once per byte
        fh.write(b"\nnext\n")
    got = f.poll()
    elapsed = time.monotonic() - started
    assert [len(x.line) for x in got] == [BIG + 1, 5]
    # 1280 polls over a line growing to 20 MB: re-searching it each poll would be
    # ~13 GB of memchr and copies; once per byte is milliseconds.
    assert elapsed < 10, f"{elapsed:.1f}s"
    f.close()


# --- a record that makes evaluation fail ------------------------------------------------------

class PoisonedMatcher:
    """The real matcher, except that it raises for one event."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def matches(self, event: Mapping[str, Any]) -> bool:
        if event.get("process", {}).get("pid") == POISON_PID:
            raise ValueError("matcher exploded\non two lines")
        return bool(self._inner.matches(event))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _poisoned_scanner() -> Scanner:
    rules = compile_rules([default_rule()])
    rules[0].matcher = PoisonedMatcher(rules[0].matcher)  # type: ignore[assignment]
    return Scanner(rules, diagnostics=Diagnostics())


def _interleaved(sample: bytes) -> tuple[bytes, int]:
    """The sample with the poisoned event closed by EOE while the next one is still open.

    Returns the log and the line number of the poisoned event's first record.
    """
    lines = sample.splitlines(keepends=True)
    poison = [x for x in lines if b"audit(1796124835.755:164)" in x]
    nxt = [x for x in lines if b"audit(1796124835.759:165)" in x]
    rest = [x for x in lines if x not in poison and x not in nxt]
    eoe = b"node=k8s-node-1 type=EOE msg=audit(1796124835.755:164): \n"
    return b"".join([nxt[0], *poison, eoe, *nxt[1:], *rest]), 2


def test_a_poison_record_is_reported_once_passed_and_not_failed_again_after_restart(
        tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    data, poison_line = _interleaved(SAMPLE.read_bytes())
    log.write_bytes(data)
    db = tmp_path / "a.db"
    problems: list[str] = []
    alerts: list[dict[str, Any]] = []
    clock = FakeClock()

    def watcher() -> tuple[Watcher, AlertStore]:
        store = AlertStore(db)
        w = Watcher(str(log), _poisoned_scanner(), store, [], start="beginning", clock=clock,
                    idle_seconds=1.0, on_alert=lambda a: alerts.append(dict(a)),
                    on_problem=lambda e: problems.append(str(e)))
        return w, store

    w, store = watcher()
    w.step()  # the poisoned event closes on its EOE; the one around it is still open
    assert problems == [f"{log}:{poison_line}: evaluation failed: ValueError: matcher exploded"]
    assert w.stats.failed_records == 1
    assert w.audit.oldest_pending() is not None  # so the checkpoint is before the poison
    w.follower.close()
    store.close()  # a crash: the restart re-reads the poisoned event

    w, store = watcher()
    w.step()
    clock.now += 5
    w.step()
    assert len(problems) == 1, problems  # not reported (nor evaluated) again
    assert w.stats.skipped_failed == 1 and w.stats.failed_records == 0
    expected = scan_uuids(SAMPLE)
    got = {str(a["kibana.alert.uuid"]) for a in alerts}
    assert len(got) == len(expected) - 1 and got < expected  # everything but the poison
    w.follower.close()
    store.close()


def test_the_watch_command_exits_partial_after_a_poison_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import credwatch.engine.watch as watch_mod
    from credwatch.normalize.auditd import to_ecs as real

    def to_ecs(ev: Any, **kw: Any) -> Any:
        if ev.serial == 164:
            raise RecursionError("maximum recursion depth exceeded")
        return real(ev, **kw)

    monkeypatch.setattr(watch_mod, "to_ecs", to_ecs)
    log = tmp_path / "audit.log"
    log.write_bytes(SAMPLE.read_bytes())
    res = _watch(log, tmp_path / "a.db")
    assert res.code == 3, res.err
    assert f"{log}:1: evaluation failed: RecursionError: maximum recursion depth exceeded" in res.err
    assert len(res.alerts()) == len(scan_uuids(SAMPLE)) - 1  # the others still alert


# --- rotations that cannot be read ------------------------------------------------------------

def test_a_corrupt_rotated_gz_is_reported_once_and_the_live_file_still_read(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    data = SAMPLE.read_bytes()
    head = data[:data.index(b"audit(1796124835.759:165)")]
    head = head[:head.rindex(b"\n") + 1]  # the first event (and its alert)
    log.write_bytes(head + data[len(head):len(head) + 400])
    db = tmp_path / "a.db"
    first = _watch(log, db)
    assert first.code == 0 and len(first.alerts()) == 1
    # Rotated and compressed while credwatch was down; the .gz got damaged.
    whole = bytearray(gzip.compress(log.read_bytes()))
    whole[30:] = b"\xff" * (len(whole) - 30)
    gz = tmp_path / "audit.log.1.gz"
    gz.write_bytes(bytes(whole))
    os.utime(gz, (time.time() - 60, time.time() - 60))  # finished long ago
    log.unlink()
    log.write_bytes(data[len(head):])
    second = _watch(log, db)
    assert second.code == 3, second.err
    assert second.err.count(f"{gz}: ") == 1, second.err
    assert f"{gz}: corrupt gzip" in second.err
    # The live file is still evaluated (events cut by the rotation aside).
    assert len(second.alerts()) >= len(scan_uuids(SAMPLE)) - 2


def test_a_fifo_as_the_followed_log_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "audit.log"
    os.mkfifo(fifo)
    res = _watch(fifo, tmp_path / "a.db")
    assert res.code == 2
    assert "not a regular file" in res.err


def test_the_follower_never_opens_a_fifo_that_replaced_the_log(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    log.write_bytes(b"a\n")
    f = Follower(log, start="beginning")
    assert [x.line for x in f.poll()] == [b"a\n"]
    os.rename(log, tmp_path / "audit.log.1")
    os.mkfifo(log)
    assert f.poll() == []  # the rotated file is done; the FIFO is refused, not waited on
    problems = f.take_problems()
    assert problems and problems[0].failure and "not a regular file" in str(problems[0].error)
    assert f.poll() == []
    assert f.take_problems() == []  # reported once
    os.unlink(log)
    log.write_bytes(b"b\n")  # a real log again
    assert [x.line for x in f.poll()] == [b"b\n"]
    f.close()


def test_a_poison_record_closed_by_idle_time_alone_is_remembered_too(tmp_path: Path) -> None:
    """The poisoned event closes on a poll that reads nothing, while an older event stays open
    (so the restart point does not move): its failure must still be saved."""
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    poison = [x for x in lines if b"audit(1796124835.755:164)" in x]
    other = [x for x in lines if b"audit(1796124835.759:165)" in x]
    log = tmp_path / "audit.log"
    log.write_bytes(other[0] + b"".join(poison))
    db = tmp_path / "a.db"
    problems: list[str] = []
    clock = FakeClock()

    def watcher() -> tuple[Watcher, AlertStore]:
        store = AlertStore(db)
        w = Watcher(str(log), _poisoned_scanner(), store, [], start="beginning", clock=clock,
                    idle_seconds=1.0, on_problem=lambda e: problems.append(str(e)))
        return w, store

    w, store = watcher()
    w.step()
    clock.now += 0.6
    with open(log, "ab") as fh:
        fh.write(other[1])  # keeps the older event alive
    w.step()
    clock.now += 0.6
    assert w.step() == 0  # nothing read: the poisoned event closes on idle time
    assert len(problems) == 1 and w.stats.failed_records == 1
    w.follower.close()
    store.close()
    w, store = watcher()
    w.step()
    clock.now += 5
    w.step()
    assert len(problems) == 1, problems
    assert w.stats.skipped_failed == 1
    w.follower.close()
    store.close()
