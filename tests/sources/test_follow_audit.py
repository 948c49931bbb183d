"""The audit follower: crash with events pending, rotate while down, resume from the checkpoint."""

from __future__ import annotations

import os
import random
from pathlib import Path

from credwatch.engine.checkpoint import CheckpointStore
from credwatch.normalize.auditd import to_ecs
from credwatch.sources.auditd import AuditEvent
from credwatch.sources.follow import Follower, Position
from credwatch.sources.follow_audit import AuditStream
from tests.sources._auditd import ENRICHED, events_of, lines_of


def _pieces(data: bytes, rng: random.Random) -> list[bytes]:
    pieces = []
    pos = 0
    while pos < len(data):
        n = rng.randint(1, 6000)
        pieces.append(data[pos:pos + n])
        pos += n
    return pieces


def _safe(stream: AuditStream, follower: Follower) -> Position | None:
    oldest = stream.oldest_pending()
    return oldest.position() if oldest is not None else follower.position


def _poll(follower: Follower, stream: AuditStream) -> list[AuditEvent]:
    out: list[AuditEvent] = []
    for line in follower.poll():
        out += [ev for ev, _ in stream.feed(line)]
    return out


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
    head = _pieces(data[:rotate_off], rng)
    crash_at = len(head) // 2
    pieces = [*head, data[rotate_off:]]

    seen: list[AuditEvent] = []
    store = CheckpointStore(db)
    f1 = Follower(log, start="beginning")
    s1 = AuditStream(idle_seconds=3600)
    writer = open(log, "ab", buffering=0)  # noqa: SIM115 -- outlives the first follower
    for piece in pieces[:crash_at]:
        writer.write(piece)
        seen += _poll(f1, s1)
        pos = _safe(s1, f1)
        assert pos is not None
        store.save(log, pos)  # the events above were "handled"
    assert s1.reassembler.pending > 0  # the crash really loses in-memory events
    assert pos is not None  # (the loop ran: crash_at > 0)
    assert pos.offset < os.path.getsize(log)  # rewound to a pending record
    f1.close()
    store.close()

    # Down: the log keeps growing, then auditd rotates it by renaming.
    for piece in pieces[crash_at:len(head)]:
        writer.write(piece)
    writer.close()
    os.rename(log, tmp_path / "audit.log.1")
    with open(log, "ab", buffering=0) as new:
        for piece in pieces[len(head):]:
            new.write(piece)

    store2 = CheckpointStore(db)
    cp = store2.load(log)
    assert cp is not None and cp.position == pos
    f2 = Follower(log, resume=cp.position)
    s2 = AuditStream(idle_seconds=3600)
    for _ in range(3):
        seen += _poll(f2, s2)
    seen += [ev for ev, _ in s2.flush()]
    final = _safe(s2, f2)
    assert final is not None
    store2.save(log, final)
    f2.close()

    assert set(e.id for e in seen) == set(expected)  # zero lost
    for ev in seen:
        assert to_ecs(ev) == expected[ev.id]  # any repeat is the identical event
    assert s1.diagnostics.skipped_total == 0 and s2.diagnostics.skipped_total == 0
    stored = store2.load(log)
    assert stored is not None and stored.position.ino == os.stat(log).st_ino
    assert stored.position.offset == os.path.getsize(log)
    assert len(store2.all()) == 1  # the rotated file's row went with the rotation


def test_safe_position_is_the_start_of_the_oldest_pending_record(tmp_path: Path) -> None:
    lines = lines_of(ENRICHED)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines[:3]))  # DAEMON_START, then the first two of event 3
    f = Follower(log, start="beginning")
    s = AuditStream(idle_seconds=3600)
    assert _poll(f, s) == []  # nothing closes yet: no idle time, no quiet window
    pos = _safe(s, f)
    assert pos is not None and (pos.ino, pos.offset, pos.line) == (os.stat(log).st_ino, 0, 0)
    f.close()


def test_events_close_on_the_injected_clock(tmp_path: Path) -> None:
    lines = lines_of(ENRICHED)
    log = tmp_path / "audit.log"
    log.write_bytes(b"".join(lines[:3]))
    now = [0.0]
    f = Follower(log, start="beginning")
    s = AuditStream(idle_seconds=0.3, clock=lambda: now[0])
    assert _poll(f, s) == []
    assert s.flush_idle() == []
    now[0] = 0.31
    closed = s.flush_idle()
    assert [ev.lineno for ev, _ in closed] == [1, 2]
    assert [ref.lineno for _, ref in closed if ref is not None] == [1, 2]
    assert s.oldest_pending() is None
    f.close()
