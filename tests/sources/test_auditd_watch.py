"""Live watcher: crash mid-stream with events pending, rotate while down, resume from SQLite."""

from __future__ import annotations

import os
import random
from pathlib import Path

from credwatch.engine.checkpoint import CheckpointStore
from credwatch.normalize.auditd import to_ecs
from credwatch.sources.auditd import AuditEvent
from credwatch.sources.auditd_watch import AuditLogWatcher
from tests.sources._auditd import ENRICHED, events_of, lines_of


def _write_pieces(path: Path, data: bytes, rng: random.Random) -> list[bytes]:
    pieces = []
    pos = 0
    while pos < len(data):
        n = rng.randint(1, 6000)
        pieces.append(data[pos:pos + n])
        pos += n
    return pieces


def test_restart_and_rotation_lose_nothing_and_repeat_only_identical_events(tmp_path: Path) -> None:
    data = ENRICHED.read_bytes()
    expected = {e.id: to_ecs(e) for e in events_of(lines_of(ENRICHED))}
    log = tmp_path / "audit.log"
    db = tmp_path / "state.db"
    log.write_bytes(b"")
    rng = random.Random(11)
    # auditd rotates between records, so the rotation point is a line boundary;
    # the crash point is anywhere (here: in the middle of a line).
    rotate_off = data.index(b"\n", (3 * len(data)) // 4) + 1
    head = _write_pieces(log, data[:rotate_off], rng)
    crash_at = len(head) // 2
    pieces = [*head, data[rotate_off:]]
    rotate_at = len(head)

    seen: list[AuditEvent] = []
    store = CheckpointStore(db)
    w1 = AuditLogWatcher(log, store=store, start="beginning", idle_seconds=3600)
    writer = open(log, "ab", buffering=0)  # noqa: SIM115 -- outlives the first watcher
    pending_at_crash = 0
    for piece in pieces[:crash_at]:
        writer.write(piece)
        seen += w1.poll()
        w1.commit()  # the events above were "handled"
        pending_at_crash = w1.reassembler.pending
    assert pending_at_crash > 0  # the crash really loses in-memory events
    pos = w1.safe_position()
    assert pos is not None and pos[1] < os.path.getsize(log)  # rewound to a pending record
    w1.close()
    store.close()

    # Down: the log keeps growing, then auditd rotates it by renaming.
    for piece in pieces[crash_at:rotate_at]:
        writer.write(piece)
    writer.close()
    os.rename(log, tmp_path / "audit.log.1")
    with open(log, "ab", buffering=0) as new:
        for piece in pieces[rotate_at:]:
            new.write(piece)

    store2 = CheckpointStore(db)
    w2 = AuditLogWatcher(log, store=store2, idle_seconds=3600)
    for _ in range(3):
        seen += w2.poll()
        w2.commit()
    seen += w2.flush()
    w2.commit()
    w2.close()

    ids = [e.id for e in seen]
    assert set(ids) == set(expected)  # zero lost
    for ev in seen:
        assert to_ecs(ev) == expected[ev.id]  # any repeat is the identical event
    assert w2.diagnostics.skipped_total == 0 and w1.diagnostics.skipped_total == 0
    assert w2.follower.dropped_partials == 0
    final = store2.get(str(log))
    assert final is not None and final.inode == os.stat(log).st_ino
    assert final.offset == os.path.getsize(log)


def test_safe_position_is_the_start_of_the_oldest_pending_record(tmp_path: Path) -> None:
    lines = lines_of(ENRICHED)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines[:3]))  # DAEMON_START, then the first two of event 3
    w = AuditLogWatcher(log, start="beginning", idle_seconds=3600)
    closed = w.poll()
    assert closed == []  # nothing closes yet: no idle time, no quiet window
    assert w.safe_position() == (os.stat(log).st_ino, 0)
    w.close()
