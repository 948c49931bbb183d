"""tail -F following by file identity: partial lines, rotations, copytruncate, resume, .gz.

Every test drives :meth:`Follower.poll` itself: nothing waits for time to pass
(the settle time of a compressed rotation runs on an injected clock).
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
from pathlib import Path

from credwatch.normalize.auditd import iter_ecs
from credwatch.sources.auditd import AuditEvent, Reassembler, feed_lines
from credwatch.sources.follow import FollowedLine, Follower, Position
from tests.sources._auditd import ENRICHED, ecs_of, lines_of


def _lines(n0: int, n1: int, tag: str = "line") -> list[bytes]:
    return [f"{tag} {i:04d} {'x' * 40}\n".encode() for i in range(n0, n1)]


def _poll_all(f: Follower, rounds: int = 3) -> list[FollowedLine]:
    out: list[FollowedLine] = []
    for _ in range(rounds):
        out.extend(f.poll())
    return out


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_partial_last_line_is_never_emitted(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"first\nsec")
    f = Follower(p, start="beginning")
    got = f.poll()
    assert [g.line for g in got] == [b"first\n"]
    assert (got[0].start, got[0].end, got[0].lineno) == (0, 6, 1)
    assert f.poll() == []
    with open(p, "ab") as w:
        w.write(b"ond\nthi")
    got = f.poll()
    assert [g.line for g in got] == [b"second\n"]
    assert (got[0].start, got[0].end, got[0].lineno) == (6, 13, 2)
    pos = f.position
    st = os.stat(p)
    assert pos is not None and (pos.dev, pos.ino, pos.offset, pos.line) == (st.st_dev, st.st_ino, 13, 2)
    assert pos.fingerprint == b"first\nsecond\nthi"
    f.close()


def test_default_start_is_the_end_after_the_last_complete_line(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"old\nold 2\nhalf of a li")
    f = Follower(p)
    assert f.poll() == []
    with open(p, "ab") as w:
        w.write(b"ne\nnew\n")
    got = f.poll()
    # The line being written when we started is read whole, with its true number.
    assert [(g.line, g.lineno) for g in got] == [(b"half of a line\n", 3), (b"new\n", 4)]
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
    w.write(b"".join(fresh[:4]) + fresh[4][:7])  # a partial line on the new file
    got += [g.line for g in f.poll()]
    w.write(b"".join(fresh[4:])[7:])
    expected += fresh
    got += [g.line for g in _poll_all(f)]
    w.close()
    f.close()
    assert got == expected


def test_a_rotated_files_unfinished_last_line_gets_one_more_poll_then_is_passed_on(
        tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"a\nb")
    f = Follower(p, start="beginning")
    assert [g.line for g in f.poll()] == [b"a\n"]
    with open(p, "ab") as w:
        os.rename(p, tmp_path / "audit.log.1")
        p.write_bytes(b"new\n")
        assert f.poll() == []  # the writer may still finish "b" on the old file
        w.write(b"c\n")
    assert [g.line for g in f.poll()] == [b"bc\n", b"new\n"]
    # A fragment nobody finishes is passed on as the old file's last line.
    with open(p, "ab") as w:
        w.write(b"torn")
    os.rename(p, tmp_path / "audit.log.2")
    p.write_bytes(b"newer\n")
    assert f.poll() == []
    assert [(g.line, g.lineno) for g in f.poll()] == [(b"torn", 2), (b"newer\n", 1)]
    f.close()


def test_copytruncate_recovers_lines_written_after_the_last_poll_from_the_copy(
        tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    f = Follower(p, start="beginning")
    with open(p, "ab") as w:
        w.write(b"".join(_lines(0, 50)))
    got = [g.line for g in f.poll()]
    with open(p, "ab") as w:
        w.write(b"".join(_lines(50, 60)))  # not polled before the rotation
    shutil.copyfile(p, tmp_path / "audit.log.1")  # logrotate copytruncate
    with open(p, "r+b") as t:
        t.truncate(0)
    with open(p, "ab") as w:
        w.write(b"".join(_lines(60, 70)))
    got += [g.line for g in _poll_all(f)]
    f.close()
    assert got == _lines(0, 70)


def test_copytruncate_is_seen_even_when_the_file_regrew_past_the_old_position(
        tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    f = Follower(p, start="beginning")
    p.write_bytes(b"".join(_lines(0, 5)))
    got = [g.line for g in f.poll()]
    shutil.copyfile(p, tmp_path / "audit.log.1")
    # Truncated, then more written than was there before, all between two polls:
    # the size alone cannot tell; the first bytes do.
    p.write_bytes(b"".join(_lines(100, 120, "after")))
    got += [g.line for g in _poll_all(f)]
    f.close()
    assert got == _lines(0, 5) + _lines(100, 120, "after")


def test_resume_across_a_rename_rotation_while_down(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    all_lines = _lines(0, 50)
    p.write_bytes(b"".join(all_lines[:30]))
    f1 = Follower(p, start="beginning")
    read = f1.poll()
    handled = [x.line for x in read[:20]]  # crash after handling 20 of the 30 lines read
    saved = read[20].ref.position()
    f1.close()
    with open(p, "ab") as w:
        w.write(b"".join(all_lines[30:40]))
    os.rename(p, tmp_path / "audit.log.1")
    p.write_bytes(b"".join(all_lines[40:50]))

    f2 = Follower(p, resume=saved)
    got = _poll_all(f2)
    handled += [x.line for x in got]
    assert handled == all_lines
    assert [x.lineno for x in got[:3]] == [21, 22, 23]  # numbered as lines of audit.log.1
    assert f2.take_problems() == []
    final = f2.position
    st = os.stat(p)
    assert final is not None and (final.ino, final.offset) == (st.st_ino, st.st_size)
    f2.close()


def test_resume_after_copytruncate_while_down_reads_the_copy_then_the_file(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"".join(_lines(0, 30)))
    f1 = Follower(p, start="beginning")
    saved = f1.poll()[10].ref.position()
    f1.close()
    shutil.copyfile(p, tmp_path / "audit.log.1")
    p.write_bytes(b"".join(_lines(30, 80)))  # same inode, new content, larger than before
    f2 = Follower(p, resume=saved)
    assert [x.line for x in _poll_all(f2)] == _lines(10, 80)
    f2.close()


def test_resume_from_a_rotation_compressed_while_down(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"".join(_lines(0, 40)))
    f1 = Follower(p, start="beginning")
    saved = f1.poll()[25].ref.position()
    f1.close()
    with gzip.open(tmp_path / "audit.log.1.gz", "wb") as gz:
        gz.write(p.read_bytes())
    p.unlink()
    p.write_bytes(b"".join(_lines(40, 45)))
    f2 = Follower(p, resume=saved)
    got = _poll_all(f2)
    assert [x.line for x in got] == _lines(25, 45)
    assert got[0].path.endswith("audit.log.1.gz") and got[0].lineno == 26
    f2.close()


def test_a_rotation_still_being_compressed_is_retried_then_read(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    old = b"".join(_lines(0, 400))
    p.write_bytes(old)
    f1 = Follower(p, start="beginning")
    saved = f1.poll()[100].ref.position()
    f1.close()
    whole = gzip.compress(old)
    gz_path = tmp_path / "audit.log.1.gz"
    gz_path.write_bytes(whole[:len(whole) // 2])  # gzip is still writing it
    p.unlink()
    p.write_bytes(b"".join(_lines(400, 405)))
    clock = FakeClock()
    f2 = Follower(p, resume=saved, clock=clock)
    got = [x.line for x in f2.poll()]
    assert not any(x.startswith(b"line 04") for x in got)  # the live file waits its turn
    assert f2.take_problems() == []  # not an error while it is being written
    got += [x.line for x in f2.poll()]
    gz_path.write_bytes(whole)  # compression finished
    got += [x.line for x in _poll_all(f2)]
    assert got == _lines(100, 405)
    assert f2.take_problems() == []
    f2.close()


def test_a_corrupt_rotation_is_reported_once_after_it_stopped_changing(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"".join(_lines(0, 50)))
    f1 = Follower(p, start="beginning")
    saved = f1.poll()[10].ref.position()
    f1.close()
    whole = bytearray(gzip.compress(p.read_bytes()))
    whole[len(whole) // 2:] = b"\0" * (len(whole) - len(whole) // 2)  # corrupt the rest
    (tmp_path / "audit.log.1.gz").write_bytes(bytes(whole))
    p.write_bytes(b"".join(_lines(50, 55)))  # copytruncate-style: same inode
    clock = FakeClock()
    f2 = Follower(p, resume=saved, clock=clock, settle_seconds=2.0)
    got = [x.line for x in f2.poll()]
    assert f2.take_problems() == []  # maybe still being written: wait
    clock.now += 2.5
    got += [x.line for x in _poll_all(f2)]
    problems = f2.take_problems()
    assert len(problems) == 1 and problems[0].failure
    assert str(problems[0].error).startswith(f"{tmp_path / 'audit.log.1.gz'}: ")
    assert got[-5:] == _lines(50, 55)  # the rest continues
    f2.poll()
    assert f2.take_problems() == []  # once
    f2.close()


def test_resume_position_beyond_a_shorter_file_reads_it_from_the_start(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"a\nb\n")
    st = os.stat(p)
    f = Follower(p, resume=Position(st.st_dev, st.st_ino, 999, 10, b"a\nb\n"))
    assert [g.line for g in f.poll()] == [b"a\n", b"b\n"]
    f.close()


def test_a_lost_checkpointed_file_is_reported_and_the_current_one_read(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"a\n")
    st = os.stat(p)
    f = Follower(p, resume=Position(st.st_dev, st.st_ino + 12345, 1, 1, b"zz"))
    assert [g.line for g in f.poll()] == [b"a\n"]
    problems = f.take_problems()
    assert len(problems) == 1 and not problems[0].failure
    assert "no longer here" in str(problems[0].error)
    f.close()


def test_a_fifo_named_like_a_rotation_is_never_opened(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    p.write_bytes(b"".join(_lines(0, 5)))
    f1 = Follower(p, start="beginning")
    saved = f1.poll()[2].ref.position()
    f1.close()
    os.mkfifo(tmp_path / "audit.log.1")  # opening it for reading would block forever
    p.unlink()
    p.write_bytes(b"new\n")
    f2 = Follower(p, resume=saved)
    assert [g.line for g in f2.poll()] == [b"new\n"]
    f2.close()


def test_over_long_lines_are_skipped_and_reported_with_their_line_number(tmp_path: Path) -> None:
    p = tmp_path / "audit.log"
    f = Follower(p, start="beginning", max_line_bytes=100, chunk_size=64)
    p.write_bytes(b"ok 1\n" + b"A" * 250)
    assert [g.line for g in f.poll()] == [b"ok 1\n"]
    with open(p, "ab") as w:
        w.write(b"A" * 1000 + b"\nok 3\n" + b"B" * 101 + b"\nok 5\n")
    got = f.poll()
    assert [(g.line, g.lineno) for g in got] == [(b"ok 3\n", 3), (b"ok 5\n", 5)]
    problems = [str(p.error) for p in f.take_problems()]
    assert problems == [f"{p}:2: line too long (over 100 bytes), skipped",
                        f"{p}:4: line too long (over 100 bytes), skipped"]
    f.close()


def test_following_a_log_written_in_random_pieces_reassembles_like_a_scan(tmp_path: Path) -> None:
    data = ENRICHED.read_bytes()
    p = tmp_path / "audit.log"
    p.write_bytes(b"")
    f = Follower(p, start="beginning")
    reasm = Reassembler(idle_seconds=0.0)
    events: list[AuditEvent] = []
    rng = random.Random(7)
    pos = 0
    with open(p, "ab", buffering=0) as w:
        while pos < len(data):
            n = rng.randint(1, 9000)
            w.write(data[pos:pos + n])
            pos += n
            batch = f.poll()
            events += feed_lines(((x.lineno, x.line) for x in batch), reasm, path=str(p))
    events += reasm.flush()
    f.close()
    assert list(iter_ecs(events)) == ecs_of(lines_of(ENRICHED))
    assert reasm.diagnostics.skipped_total == 0
