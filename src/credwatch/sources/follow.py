"""Follow a growing log file like ``tail -F``, with checkpointable positions.

:class:`Follower` polls (every ``poll_interval`` seconds, 0.15 s by default,
so a written record is seen well within a second) and yields only *complete*
lines, each with the inode of the file it came from and its start and end byte
offsets. A caller that stores ``(inode, end)`` after handling a line can
restart from exactly there (:class:`credwatch.engine.checkpoint.CheckpointStore`).

Rotation handling:

* **rename** (auditd's ``ROTATE``, logrotate's default): when the path names a
  new inode, the old file is read to its end before switching, so nothing
  written before the rename is lost;
* **copytruncate**: when the same inode becomes shorter than our position,
  reading restarts at 0. (Lines written between logrotate's copy and its
  truncate are lost by copytruncate itself, and a file that regrows past our
  position between two polls cannot be told from growth: a limit of the
  method, not of this reader.)
* **restart**: given a checkpoint whose inode is no longer at ``path``, the
  rotated sibling holding that inode (``audit.log.1`` …) is drained from the
  checkpoint offset first.

A half-written last line is held back until its newline arrives. If a file is
rotated away with a half line at its end, that fragment is never emitted and
is counted in :attr:`Follower.dropped_partials`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

__all__ = ["FollowedLine", "Follower"]


@dataclass(frozen=True, slots=True)
class FollowedLine:
    """One complete line (with its newline) and where it lives."""

    line: bytes
    path: str  #: the file it was read from (a rotated sibling while draining one)
    inode: int
    start: int  #: byte offset of the line's first byte
    end: int  #: byte offset just after its newline: the checkpoint to store


class Follower:
    """Poll-based ``tail -F`` over ``path`` (see module doc)."""

    def __init__(self, path: str | os.PathLike[str], *,
                 checkpoint: tuple[int, int] | None = None,
                 start: Literal["beginning", "end"] = "end",
                 poll_interval: float = 0.15,
                 chunk_size: int = 1 << 16,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        self.chunk_size = chunk_size
        self.dropped_partials = 0
        #: Human-readable notes about data that could not be recovered (e.g. a
        #: checkpointed inode that no longer exists anywhere).
        self.gaps: list[str] = []
        self._sleep = sleep
        self._fh: BinaryIO | None = None
        self._current = self.path
        self._inode = -1
        self._pos = 0  # offset of the first byte of self._buf
        self._buf = b""
        self._draining = False  # reading a rotated sibling before the live file
        self._pending_start: tuple[int, int] | None = checkpoint
        self._start_mode = start

    # ------------------------------------------------------------------ opening

    def _open(self, p: Path, offset: int) -> bool:
        try:
            fh = open(p, "rb")  # noqa: SIM115 -- kept open across polls
        except OSError:
            return False
        st = os.fstat(fh.fileno())
        if offset > st.st_size:
            offset = 0  # truncated while we were away
        fh.seek(offset)
        self.close()
        self._fh, self._inode, self._pos, self._buf = fh, st.st_ino, offset, b""
        self._current = p
        return True

    def _find_inode(self, inode: int) -> Path | None:
        parent = self.path.parent
        try:
            siblings = sorted(parent.iterdir())
        except OSError:
            return None
        for p in siblings:
            if p.name.startswith(self.path.name + ".") and not p.name.endswith(".gz"):
                try:
                    if p.stat().st_ino == inode:
                        return p
                except OSError:
                    continue
        return None

    def _initial_open(self) -> bool:
        try:
            st = self.path.stat()
        except OSError:
            # Everything in a file that appears later is new: read it from its start.
            self._start_mode = "beginning"
            return False
        if self._pending_start is not None:
            inode, offset = self._pending_start
            if st.st_ino == inode:
                ok = self._open(self.path, offset)
            else:
                rotated = self._find_inode(inode)
                if rotated is not None and self._open(rotated, offset):
                    self._draining = True
                    ok = True
                else:
                    self.gaps.append(f"checkpoint inode {inode} not found next to {self.path}; "
                                     "reading the current file from its start")
                    ok = self._open(self.path, 0)
        else:
            ok = self._open(self.path, st.st_size if self._start_mode == "end" else 0)
        if ok:
            self._pending_start = None
        return ok

    def close(self) -> None:
        """Close the current file handle."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    @property
    def position(self) -> tuple[int, int] | None:
        """``(inode, offset)`` after the last complete line returned, or None before opening."""
        if self._fh is None:
            return None
        return self._inode, self._pos

    # ------------------------------------------------------------------ reading

    def _drain(self) -> list[FollowedLine]:
        assert self._fh is not None
        out: list[FollowedLine] = []
        name = str(self._current)
        while True:
            chunk = self._fh.read(self.chunk_size)
            if not chunk:
                break
            self._buf += chunk
            start = 0
            while True:
                nl = self._buf.find(b"\n", start)
                if nl < 0:
                    break
                line = self._buf[start:nl + 1]
                out.append(FollowedLine(line, name, self._inode, self._pos + start, self._pos + nl + 1))
                start = nl + 1
            self._buf = self._buf[start:]
            self._pos += start
        return out

    def poll(self) -> list[FollowedLine]:
        """Read every complete line available now, handling rotation; never blocks."""
        if self._fh is None and not self._initial_open():
            return []
        out = self._drain()
        if self._draining:
            # The rotated file is finished once drained; move on to the live one.
            self._finish_file()
            if self._open(self.path, 0):
                self._draining = False
                out.extend(self._drain())
            return out
        try:
            st = self.path.stat()
        except OSError:
            return out  # mid-rotation: the new file is not there yet
        if st.st_ino != self._inode:
            out.extend(self._drain())  # last writes to the old file
            self._finish_file()
            if self._open(self.path, 0):
                out.extend(self._drain())
        elif st.st_size < self._pos + len(self._buf):
            # copytruncate: same file, shorter than what we have read.
            self._buf = b""
            assert self._fh is not None
            self._fh.seek(0)
            self._pos = 0
            out.extend(self._drain())
        return out

    def _finish_file(self) -> None:
        if self._buf:
            self.dropped_partials += 1
            self._buf = b""

    def wait(self) -> None:
        """Sleep one poll interval (between empty polls)."""
        self._sleep(self.poll_interval)

    def iter_batches(self, stop: threading.Event | Callable[[], bool] | None = None,
                     ) -> Iterator[list[FollowedLine]]:
        """Yield one batch per poll (empty when nothing new) until ``stop`` is set.

        Empty batches let a caller do periodic work, such as closing idle
        audit events, between writes.
        """
        def stopped() -> bool:
            if stop is None:
                return False
            if isinstance(stop, threading.Event):
                return stop.is_set()
            return bool(stop())

        try:
            while not stopped():
                batch = self.poll()
                yield batch
                if not batch:
                    self.wait()
        finally:
            self.close()

    def follow(self, stop: threading.Event | Callable[[], bool] | None = None,
               ) -> Iterator[FollowedLine]:
        """Yield complete lines forever (or until ``stop``)."""
        for batch in self.iter_batches(stop):
            yield from batch
