"""Fuzz the follower: random bytes written in random pieces, polls, truncations and rotations.

Properties: nothing but credwatch's own reports comes out (no exception); every
line handed out is a complete line of what was written, in order, with its true
line number and byte range; a line over the limit is reported, never handed
out; with no rotation the lines are exactly the reference split of the bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from credwatch.sources.follow import Follower
from tests.fuzz import corpus, fuzz

_PIECES = st.lists(st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"\n")),
                   min_size=1, max_size=25)


def _reference(data: bytes, limit: int) -> tuple[list[tuple[int, bytes]], list[int]]:
    """(line number, line) of the complete lines within the limit; numbers of longer ones."""
    kept, long = [], []
    parts = data.split(b"\n")
    for n, part in enumerate(parts[:-1], 1):
        line = part + b"\n"
        (kept.append((n, line)) if len(line) <= limit else long.append(n))
    if len(parts[-1]) > limit:
        long.append(len(parts))  # known too long before it is finished: reported already
    return kept, long


def _follow_pieces(pieces: list[bytes], limit: int, chunk: int) -> tuple[list[tuple[int, bytes]],
                                                                         list[int]]:
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "audit.log"
        log.write_bytes(b"")
        f = Follower(log, start="beginning", max_line_bytes=limit, chunk_size=chunk)
        got: list[tuple[int, bytes]] = []
        with open(log, "ab", buffering=0) as w:
            for piece in pieces:
                w.write(piece)
                for x in f.poll():
                    assert (x.end - x.start) == len(x.line)
                    got.append((x.lineno, x.line))
        long = [p.error.line for p in f.take_problems() if p.error.line is not None]
        f.close()
    return got, [n for n in long if n is not None]


@fuzz
@given(pieces=_PIECES, limit=st.integers(1, 200), chunk=st.integers(1, 64))
def test_lines_are_exactly_the_complete_lines_written(pieces: list[bytes], limit: int,
                                                      chunk: int) -> None:
    got, long = _follow_pieces(pieces, limit, chunk)
    want, want_long = _reference(b"".join(pieces), limit)
    assert got == want
    assert long == want_long


@fuzz
@given(pieces=_PIECES, actions=st.lists(st.sampled_from(["poll", "rename", "copytruncate",
                                                         "truncate"]), max_size=25))
def test_rotations_and_truncations_never_raise_and_never_invent_lines(
        pieces: list[bytes], actions: list[str]) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        log = folder / "audit.log"
        log.write_bytes(b"")
        f = Follower(log, start="beginning", max_line_bytes=64)
        written = b""
        n = 0
        for piece, action in zip(pieces, actions + ["poll"] * len(pieces), strict=False):
            with open(log, "ab") as w:
                w.write(piece)
            written += piece
            if action == "rename":
                n += 1
                os.rename(log, folder / f"audit.log.{n}")
                log.write_bytes(b"")
            elif action == "copytruncate":
                n += 1
                shutil.copyfile(log, folder / f"audit.log.{n}")
                with open(log, "r+b") as t:
                    t.truncate(0)
            elif action == "truncate":
                with open(log, "r+b") as t:
                    t.truncate(0)
            for x in f.poll():
                # Every line is bytes that were written (a rotated file's unfinished
                # last line included), never a mix of two files.
                assert x.line and x.line in written
                assert x.lineno >= 1 and x.end - x.start == len(x.line)
        f.take_problems()
        f.close()


def test_saved_corpus_replays() -> None:
    for data in corpus("follow"):
        got, _ = _follow_pieces([data[i:i + 7] for i in range(0, len(data), 7)], 50, 16)
        want, _ = _reference(data, 50)
        assert got == want


_PAYLOAD = b"".join(b"type=SYSCALL msg=audit(1796124835.%03d:%d): x=%d\n" % (i, i, i)
                    for i in range(200))
_GZ = __import__("gzip").compress(_PAYLOAD)


@fuzz
@given(cut=st.integers(0, len(_GZ)), flips=st.lists(st.tuples(st.integers(0, len(_GZ) - 1),
                                                                st.integers(0, 255)), max_size=4),
       tail=st.binary(max_size=40))
def test_a_damaged_or_unfinished_rotated_gz_never_raises(cut: int, flips: list[tuple[int, int]],
                                                         tail: bytes) -> None:
    """Resuming into a ``.gz`` rotation that is cut, bit-flipped or followed by junk."""
    data = bytearray(_GZ[:cut])
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    now = [0.0]
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        (folder / "audit.log.1.gz").write_bytes(bytes(data) + tail)
        log = folder / "audit.log"
        log.write_bytes(b"live\n")
        st_ = os.stat(log)
        from credwatch.sources.follow import Position

        resume = Position(st_.st_dev, st_.st_ino + 1, 1000, -1, _PAYLOAD[:512])
        f = Follower(log, resume=resume, clock=lambda: now[0], settle_seconds=1.0)
        got: list[bytes] = []
        for _ in range(3):
            got += [x.line for x in f.poll()]
            now[0] += 2.0
        f.take_problems()
        f.close()
    old = _PAYLOAD.splitlines(keepends=True)
    assert all(x in old or x == b"live\n" or _PAYLOAD.find(x) >= 0 for x in got)
    assert got[-1:] == [b"live\n"]  # the live file is always read in the end
