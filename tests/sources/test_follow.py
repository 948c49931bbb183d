"""tail -F following: partial lines, both rotation kinds, restart from a SQLite checkpoint."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import threading
import time
from pathlib import Path

from credwatch.engine.checkpoint import CheckpointStore
from credwatch.normalize.auditd import iter_ecs
from credwatch.sources.auditd import Reassembler, feed_lines
from credwatch.sources.follow import FollowedLine, Follower
from tests.sources._auditd import ENRICHED, ecs_of, lines_of


def _lines(n0: int, n1: int, tag: str = "line") -> list[bytes]:
    return [f"{tag} {i}\n".encode() for i in range(n0, n1)]


def _poll_all(f: Follower, rounds: int = 3) -> list[FollowedLine]:
    out: list[FollowedLine] = []
    for _ in range(rounds):
        out.extend(f.poll())
    return out


def test_partial_last_line_is_never_emitted(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"first\nsec")
    f = Follower(p, start="beginning")
    got = f.poll()
    assert [g.line for g in got] == [b"first\n"]
    assert (got[0].start, got[0].end) == (0, 6)
    assert f.poll() == []
    with open(p, "ab") as w:
        w.write(b"ond\nthi")
    got = f.poll()
    assert [g.line for g in got] == [b"second\n"]
    assert (got[0].start, got[0].end) == (6, 13)
    assert f.position == (os.stat(p).st_ino, 13)
    f.close()


def test_default_start_is_the_end(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"old\n")
    f = Follower(p)
    assert f.poll() == []
    with open(p, "ab") as w:
        w.write(b"new\n")
    assert [g.line for g in f.poll()] == [b"new\n"]
    f.close()


def test_waits_for_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    f = Follower(p)
    assert f.poll() == []
    p.write_bytes(b"x\n")
    # Appeared after we started: all of it is new, so it is read from its start.
    assert [g.line for g in f.poll()] == [b"x\n"]
    with open(p, "ab") as w:
        w.write(b"y\n")
    assert [g.line for g in f.poll()] == [b"y\n"]
    f.close()


def test_rename_rotation_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    expected: list[bytes] = []
    w = open(p, "ab", buffering=0)  # noqa: SIM115 -- the writer outlives several steps
    f = Follower(p, start="beginning")
    got: list[bytes] = []
    for i in range(5):
        chunk = _lines(i * 10, i * 10 + 10)
        w.write(b"".join(chunk))
        expected += chunk
        got += [g.line for g in f.poll()]
    # Rotation: rename, the writer still appends to the old inode, then reopens.
    os.rename(p, tmp_path / "audit.log.1")
    late = _lines(0, 3, "late-old")
    w.write(b"".join(late))
    expected += late
    w.close()
    w = open(p, "ab", buffering=0)  # noqa: SIM115
    fresh = _lines(0, 7, "new")
    w.write(b"".join(fresh[:4]) + b"new 4")  # a partial line on the new file
    got += [g.line for g in f.poll()]
    w.write(b"".join(fresh[4:])[len(b"new 4"):])
    expected += fresh
    got += [g.line for g in _poll_all(f)]
    w.close()
    f.close()
    assert got == expected
    assert f.dropped_partials == 0


def test_copytruncate_rotation_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    f = Follower(p, start="beginning")
    with open(p, "ab") as w:
        w.write(b"".join(_lines(0, 50)))
    got = [g.line for g in f.poll()]
    shutil.copyfile(p, tmp_path / "audit.log.1")  # logrotate copytruncate
    with open(p, "r+b") as t:
        t.truncate(0)
    with open(p, "ab") as w:
        w.write(b"".join(_lines(50, 60)))
    got += [g.line for g in _poll_all(f)]
    f.close()
    assert got == _lines(0, 60)


def test_restart_from_checkpoint_across_a_rotation(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    db = tmp_path / "state.db"
    all_lines = _lines(0, 50)
    p.write_bytes(b"".join(all_lines[:30]))
    store = CheckpointStore(db)
    f1 = Follower(p, start="beginning")
    handled: list[bytes] = []
    for item in f1.poll()[:20]:  # crash after handling 20 of the 30 lines read
        handled.append(item.line)
        store.set(str(p), item.inode, item.end)
    f1.close()
    store.close()
    # While credwatch is down: more lines, a rename rotation, more lines.
    with open(p, "ab") as w:
        w.write(b"".join(all_lines[30:40]))
    os.rename(p, tmp_path / "audit.log.1")
    p.write_bytes(b"".join(all_lines[40:50]))

    store2 = CheckpointStore(sqlite3.connect(db))
    cp = store2.get(str(p))
    assert cp is not None
    f2 = Follower(p, checkpoint=(cp.inode, cp.offset))
    for item in _poll_all(f2):
        handled.append(item.line)
        store2.set(str(p), item.inode, item.end)
    f2.close()
    assert handled == all_lines
    assert f2.gaps == []
    final = store2.get(str(p))
    assert final is not None and final.inode == os.stat(p).st_ino
    assert final.offset == p.stat().st_size


def test_checkpoint_beyond_a_truncated_file_restarts_at_zero(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"a\nb\n")
    f = Follower(p, checkpoint=(os.stat(p).st_ino, 999))
    assert [g.line for g in f.poll()] == [b"a\n", b"b\n"]
    f.close()


def test_checkpoint_for_a_vanished_inode_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"a\n")
    f = Follower(p, checkpoint=(os.stat(p).st_ino + 12345, 1))
    assert [g.line for g in f.poll()] == [b"a\n"]
    assert f.gaps and "not found" in f.gaps[0]
    f.close()


def test_a_written_line_is_seen_within_a_second(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"")
    stop = threading.Event()
    written: list[float] = []

    def writer() -> None:
        time.sleep(0.4)
        with open(p, "ab") as w:
            w.write(b"hello\n")
        written.append(time.monotonic())

    t = threading.Thread(target=writer)
    t.start()
    f = Follower(p, poll_interval=0.15)
    deadline = time.monotonic() + 5
    seen_at = None
    for item in f.follow(lambda: stop.is_set() or time.monotonic() > deadline):
        assert item.line == b"hello\n"
        seen_at = time.monotonic()
        stop.set()
    t.join()
    assert seen_at is not None
    assert seen_at - written[0] < 1.0


def test_following_a_log_written_in_random_pieces_reassembles_like_a_scan(tmp_path: Path) -> None:
    data = ENRICHED.read_bytes()
    p = tmp_path / "audit.log"
    p.write_bytes(b"")
    f = Follower(p, start="beginning")
    reasm = Reassembler(idle_seconds=0.0)
    events = []
    rng = random.Random(7)
    pos = 0
    with open(p, "ab", buffering=0) as w:
        while pos < len(data):
            n = rng.randint(1, 9000)
            w.write(data[pos:pos + n])
            pos += n
            batch = f.poll()
            # Line "numbers" are byte offsets here, so an event's lineno is a resume point.
            events += feed_lines(((x.start, x.line) for x in batch), reasm, path=str(p))
    events += reasm.flush()
    f.close()
    assert list(iter_ecs(events)) == ecs_of(lines_of(ENRICHED))
    assert reasm.diagnostics.skipped_total == 0


def test_checkpoint_store_schema_and_updates(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "c.db")
    store = CheckpointStore(conn)
    assert store.get("/var/log/audit/audit.log") is None
    store.set("/var/log/audit/audit.log", 11, 100)
    store.set("/var/log/audit/audit.log", 12, 5)
    store.set("/other", 1, 2)
    cp = store.get("/var/log/audit/audit.log")
    assert cp is not None and (cp.inode, cp.offset) == (12, 5)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(checkpoints)")]
    assert cols == ["path", "inode", "offset", "updated"]
    assert [c.path for c in store.all()] == ["/other", "/var/log/audit/audit.log"]
    store.delete("/other")
    store.close()  # a shared connection stays open
    assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 1
    conn.close()
