"""Follow a growing log file like ``tail -F``, resumable from a :class:`Position`.

:meth:`Follower.poll` never blocks and returns the *complete* lines written
since the last poll, each with its file, line number and byte range. A caller
that stores :attr:`Follower.position` (or a pending line's
:meth:`LineRef.position`) after handling lines restarts from exactly there.

The file is tracked by identity (``st_dev``, ``st_ino``) and by a fingerprint
of its first bytes (see :mod:`credwatch.sources.follow_files`):

* **rename rotation** (auditd's own, logrotate's default): when the path names
  another file, the old one is read to its end first (its half-written last
  line gets one more poll to be finished, then is passed on as it is), then the
  new one from its start;
* **copytruncate**: when the file is shorter than what was read, or its first
  bytes changed, it was truncated in place. The copy (``audit.log.1``, or the
  ``.gz`` made of it) is found by fingerprint and read from where reading
  stopped, then the live file from its start, so nothing written after the
  truncation is lost (lines written between logrotate's copy and its truncate
  are lost by the method itself);
* **restart**: a position whose file is no longer at the path is looked for
  among the rotated siblings, by identity, then by fingerprint (plain, then
  gzip), and read from there first;
* **a rotation still being compressed**: a ``.gz`` that ends early is retried
  on the next poll, and reported (``path: reason``, once) only if it is still
  unreadable after it stopped changing for ``settle_seconds``.

A half-written last line is never handed out while the file can still grow.
A line longer than ``max_line_bytes`` is skipped in bounded memory and linear
time and reported as ``path:line: line too long``.

One poll reads at most ``max_poll_bytes`` (a backlog is handed out in bounded
batches, so memory stays flat and the caller checkpoints as it goes), and
:meth:`Follower.lag` says how far behind the writer the reader is: the bytes
written but not read yet, and for how long the oldest of them have waited (a
lower bound from the file's size and mtime as seen at each poll).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Literal

from credwatch.errors import SourceError
from credwatch.sources.follow_files import (
    FINGERPRINT_BYTES,
    GZIP_ERRORS,
    FileRef,
    FollowedLine,
    FollowLag,
    FollowProblem,
    GrowthSamples,
    LineBlock,
    LineRef,
    Position,
    Settle,
    Source,
    count_lines,
    gz_head,
    gzip_reason,
    open_gzip,
    open_regular,
    siblings,
)

__all__ = ["MAX_LINE_BYTES", "MAX_POLL_BYTES", "FileRef", "FollowLag", "FollowProblem",
           "FollowedLine", "Follower", "LineBlock", "LineRef", "Position"]

#: What a poll collects: blocks of whole lines, and single lines (joined across reads).
_Out = list[FollowedLine | LineBlock]

#: Longest line handed out (as the batch readers' limit): longer ones are skipped and reported.
MAX_LINE_BYTES = 16 * 1024 * 1024
#: Bytes read per poll at most by default: a backlog comes in batches of about this size.
MAX_POLL_BYTES = 4 << 20

_GZIP_MAGIC = b"\x1f\x8b"
#: Leading bytes that tell two rotated files' contents apart when chaining them.
_HEAD_ID = 256
#: Rotated files read one after the other after a restart, at most.
_MAX_CHAIN = 64


class Follower:
    """Poll-based ``tail -F`` over ``path`` (see module doc)."""

    def __init__(self, path: str | os.PathLike[str], *,
                 resume: Position | None = None,
                 start: Literal["beginning", "end"] = "end",
                 poll_interval: float = 0.15,
                 chunk_size: int = 1 << 16,
                 max_line_bytes: int = MAX_LINE_BYTES,
                 max_poll_bytes: int = MAX_POLL_BYTES,
                 settle_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 wall: Callable[[], float] = time.time) -> None:
        self.path = os.fspath(path)
        self.poll_interval = poll_interval
        self.chunk_size = max(1, chunk_size)
        self.max_line_bytes = max(1, max_line_bytes)
        #: Bytes read per :meth:`poll` at most (a backlog is read over several polls).
        self.max_poll_bytes = max(1, max_poll_bytes)
        self._budget = self.max_poll_bytes
        self._wall = wall
        self._samples = GrowthSamples()  # when the live file reached its sizes (for lag)
        #: Unfinished lines dropped because the file was truncated under them.
        self.dropped_partials = 0
        #: Problems not yet collected with :meth:`take_problems`.
        self.problems: list[FollowProblem] = []
        self._sleep = sleep
        self._settle = Settle(clock, settle_seconds)
        self._reported: set[str] = set()
        self._start_mode = start
        self._resume = resume
        self._started = False
        self._locating: Position | None = None  # content to find among the siblings
        self._sibling: Source | None = None  # a rotated or copied file being read first
        self._live: Source | None = None  # the file at ``path``
        self._grace = False  # one more poll for a rotated file's unfinished last line
        self._done_ids: set[tuple[int, int]] = set()  # rotated files read to their end
        self._done_heads: set[bytes] = set()

    # ------------------------------------------------------------------ reporting

    def _problem(self, message: str, path: str, line: int | None = None, *,
                 failure: bool, once: bool = False) -> None:
        key = f"{path}\0{line}\0{message}"
        if once:
            if key in self._reported:
                return
            if len(self._reported) < 10_000:
                self._reported.add(key)
        self.problems.append(FollowProblem(SourceError(message, path, line), failure))

    def take_problems(self) -> list[FollowProblem]:
        """Return and forget the problems reported since the last call."""
        out, self.problems = self.problems, []
        return out

    # ------------------------------------------------------------------ position

    @property
    def position(self) -> Position | None:
        """Where to restart to lose nothing read so far, or None before anything was opened."""
        if self._locating is not None:
            return self._locating
        src = self._sibling or self._live
        return src.position() if src is not None else self._resume

    def close(self) -> None:
        """Close the open files."""
        for src in (self._sibling, self._live):
            if src is not None:
                src.close()

    def lag(self) -> FollowLag:
        """How far behind the writer reading is (:class:`FollowLag`; seconds: a lower bound from
        :class:`GrowthSamples`). A rotated file still being drained counts too."""
        unread = 0
        seconds = 0.0
        offset = size = 0
        now = self._wall()
        live = self._live
        if live is not None and live.fio is not None:
            offset = live.offset
            size = max(offset, os.fstat(live.fio.fileno()).st_size)
            unread += size - offset
            if size > offset:
                seconds = self._samples.waited(offset, now)
        sib = self._sibling
        if sib is not None and sib.fio is not None and not sib.ref.compressed:
            left = os.fstat(sib.fio.fileno()).st_size - sib.offset
            if left > 0:
                unread += left
                seconds = max(seconds, now - sib.mtime_ns / 1e9)
        return FollowLag(unread, seconds, offset, size)

    # ------------------------------------------------------------------ polling

    def poll(self) -> list[FollowedLine]:
        """Read every complete line available now (up to the budget), handling rotation; never blocks."""
        out: list[FollowedLine] = []
        for item in self._poll():
            if isinstance(item, LineBlock):
                out.extend(item.lines())
            else:
                out.append(item)
        return out

    def poll_blocks(self) -> list[LineBlock]:
        """As :meth:`poll`, in blocks of whole lines (no object per line: for busy logs)."""
        return [item if isinstance(item, LineBlock) else LineBlock.of(item) for item in self._poll()]

    def _poll(self) -> _Out:
        out: _Out = []
        self._budget = self.max_poll_bytes
        try:
            if not self._started and not self._start():
                return out
            if self._locating is not None and not self._locate_step():
                return out
            if self._sibling is not None and not self._drain_sibling(out):
                return out
            self._poll_live(out)
        except OSError as exc:
            self._problem(f"cannot read: {exc.strerror or exc}", self.path, failure=True, once=True)
        return out

    @property
    def more(self) -> bool:
        """True when the last poll stopped at its byte budget: more may be read at once."""
        return self._budget <= 0

    def _stat(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except OSError:
            return None

    def _open_plain(self, path: str, offset: int, line: int) -> Source:
        fio, st = open_regular(path)
        head = os.pread(fio.fileno(), FINGERPRINT_BYTES, 0)
        if line < 0:
            line, _ = count_lines(fio, offset)
        fio.seek(offset)
        src = Source(FileRef(path, st.st_dev, st.st_ino, head), fio, offset, line)
        src.mtime_ns = st.st_mtime_ns
        return src

    def _start(self) -> bool:
        st = self._stat()
        cp = self._resume
        if cp is None:
            if st is None:
                # Everything in a file that appears later is new: read it from its start.
                self._start_mode = "beginning"
                return False
            self._live = self._open_start(self._start_mode)
        elif st is not None and (st.st_dev, st.st_ino) == (cp.dev, cp.ino):
            live = self._open_plain(self.path, 0, 0)
            if live.ref.fingerprint.startswith(cp.fingerprint) and st.st_size >= cp.offset:
                live.close()
                live = self._open_plain(self.path, cp.offset, cp.line)
            else:
                # Truncated (or replaced) while we were away: its old content may be in a copy.
                self._locating = cp
            self._live = live
        else:
            self._locating = cp
        self._started = True
        return True

    def _open_start(self, mode: str) -> Source:
        src = self._open_plain(self.path, 0, 0)
        if mode == "end":
            assert src.fio is not None
            # Start after the last complete line: a half-written one is read whole later.
            src.line, end = count_lines(src.fio, os.fstat(src.fio.fileno()).st_size)
            src.fio.seek(end)
            src.offset = src.line_start = end
        return src

    # ------------------------------------------------------------------ siblings

    def _locate_step(self) -> bool:
        """Find the located content; False while a candidate is still being written."""
        cp = self._locating
        assert cp is not None
        found = self._locate(cp)
        if found == "wait":
            return False
        self._locating = None
        if found is None:
            if cp.offset > 0:
                self._problem(f"the file read up to byte {cp.offset} before is no longer here or "
                              "among its rotations; reading the current file from its start",
                              self.path, failure=False, once=True)
        else:
            self._sibling = found
        return True

    def _locate(self, cp: Position) -> Source | Literal["wait"] | None:
        """The file holding the content of ``cp`` (identity, then plain copy, then gzip)."""
        live = self._live.ref if self._live is not None else None
        plain: Source | None = None
        gzipped: list[str] = []
        for path, st in siblings(self.path):
            if live is not None and (st.st_dev, st.st_ino) == (live.dev, live.ino):
                continue
            try:
                fio, _ = open_regular(path, follow_symlinks=False)
            except OSError:
                continue
            with fio:
                head = os.pread(fio.fileno(), FINGERPRINT_BYTES, 0)
            if head.startswith(_GZIP_MAGIC):
                gzipped.append(path)
                continue
            same = (st.st_dev, st.st_ino) == (cp.dev, cp.ino)
            if not head.startswith(cp.fingerprint) or st.st_size < cp.offset:
                continue
            if same:
                return self._open_plain(path, cp.offset, cp.line)
            if plain is None and cp.fingerprint:
                plain = self._open_plain(path, cp.offset, cp.line)
        if plain is not None or not cp.fingerprint:
            return plain
        return self._locate_gzip(cp, gzipped)

    def _locate_gzip(self, cp: Position, paths: list[str]) -> Source | Literal["wait"] | None:
        waiting = False
        for path in paths:
            try:
                head = gz_head(path, len(cp.fingerprint))
            except GZIP_ERRORS as exc:
                if not self._settle.settled(path):
                    waiting = True  # a rotation still being compressed: next poll
                else:
                    self._problem(gzip_reason(exc), path, failure=True, once=True)
                continue
            if head == cp.fingerprint:
                try:
                    st = os.stat(path, follow_symlinks=False)
                except OSError:
                    continue
                ref = FileRef(path, st.st_dev, st.st_ino, head, compressed=True)
                # Opened lazily by _drain_sibling, which skips to the offset.
                src = Source(ref, None, cp.offset, cp.line)
                src.mtime_ns = st.st_mtime_ns
                return src
        return "wait" if waiting else None

    def _open_gzip_source(self, src: Source) -> None:
        fio, _ = open_regular(src.ref.path, follow_symlinks=False)
        gz = open_gzip(fio)
        src.fio, src.stream = fio, gz
        skipped = lines = 0
        while skipped < src.line_start:
            chunk = gz.read(min(self.chunk_size, src.line_start - skipped))
            if not chunk:
                break
            if src.line < 0:
                lines += chunk.count(b"\n")
            skipped += len(chunk)
        if src.line < 0:
            src.line = lines
        src.offset = src.line_start = skipped

    def _drain_sibling(self, out: _Out) -> bool:
        """Read the sibling, then any rotated after it, to their ends.

        False while a ``.gz`` among them is still being written (retried next poll).
        """
        while (src := self._sibling) is not None:
            try:
                if src.stream is None:
                    self._open_gzip_source(src)
                if not self._read(src, out):
                    return False  # this poll's budget is spent: go on next poll
            except GZIP_ERRORS as exc:
                if not src.ref.compressed:
                    raise
                if not self._settle.settled(src.ref.path):
                    src.rewind()
                    return False
                self._problem(gzip_reason(exc), src.ref.path, failure=True, once=True)
            else:
                self._finish(src, out)
            src.close()
            self._sibling = self._next_sibling(src)
        return True

    def _next_sibling(self, done: Source) -> Source | None:
        """The file rotated next after ``done`` (oldest change first), to read from its start.

        Several rotations may have happened while we were down (auditd's
        ``audit.log.2`` and ``.1``, or a copytruncate copy made after the file we
        resumed in): they are read in the order they were last written, before
        the live file. Files already read, or holding the same first bytes as
        one already read (``.1`` next to the ``.1.gz`` being made of it), are not.
        """
        self._done_ids.add((done.ref.dev, done.ref.ino))
        self._done_heads.add(done.ref.fingerprint[:_HEAD_ID])
        live = self._live.ref if self._live is not None else None
        for path, st in sorted(siblings(self.path), key=lambda item: item[1].st_mtime_ns):
            ident = (st.st_dev, st.st_ino)
            if (st.st_mtime_ns <= done.mtime_ns or ident in self._done_ids
                    or (live is not None and ident == (live.dev, live.ino))
                    or len(self._done_ids) > _MAX_CHAIN):
                continue
            try:
                src = self._sibling_from_start(path, st)
            except GZIP_ERRORS:
                continue  # gone or unreadable: the next one
            if src.ref.fingerprint[:_HEAD_ID] in self._done_heads:
                src.close()
                self._done_ids.add(ident)
                continue
            return src
        return None

    def _sibling_from_start(self, path: str, st: os.stat_result) -> Source:
        fio, _ = open_regular(path, follow_symlinks=False)
        with fio:
            magic = os.pread(fio.fileno(), 2, 0)
        if magic != _GZIP_MAGIC:
            src = self._open_plain(path, 0, 0)
        else:
            try:
                head = gz_head(path)
            except GZIP_ERRORS:
                head = b""  # still being written, or corrupt: the drain retries or reports
            src = Source(FileRef(path, st.st_dev, st.st_ino, head, compressed=True), None, 0, 0)
        src.mtime_ns = st.st_mtime_ns
        return src

    # ------------------------------------------------------------------ the live file

    def _poll_live(self, out: _Out) -> None:
        if self._live is None:
            if self._stat() is None:
                return  # mid-rotation: the new file is not there yet
            self._live = self._open_plain(self.path, 0, 0)
        src = self._live
        if self._truncated(src):
            self._on_truncation(src)
            if self._locating is not None and not self._locate_step():
                return
            if self._sibling is not None and not self._drain_sibling(out):
                return
        if not self._read(src, out):
            return  # budget spent: the rest (and any rotation) next poll
        st = self._stat()
        if st is None or (st.st_dev, st.st_ino) == (src.ref.dev, src.ref.ino):
            return
        # Renamed away: its last writes are read above. An unfinished last line gets
        # one more poll for its writer to complete it.
        if src.buf and not self._grace:
            self._grace = True
            return
        self._grace = False
        self._finish(src, out)
        src.close()
        self._live = None  # if the new file cannot be opened, the next poll tries again
        self._samples.clear()
        self._live = self._open_plain(self.path, 0, 0)
        self._read(self._live, out)

    def _truncated(self, src: Source) -> bool:
        """True if the file shrank below what was read, or its first bytes changed."""
        assert src.fio is not None
        fd = src.fio.fileno()
        st = os.fstat(fd)
        if st.st_size < src.offset:
            self._samples.clear()
            return True
        self._samples.note(st.st_size, st.st_mtime_ns)
        head = os.pread(fd, FINGERPRINT_BYTES, 0)
        if not head.startswith(src.ref.fingerprint):
            return True
        if len(head) > len(src.ref.fingerprint):
            src.ref.fingerprint = head
        return False

    def _on_truncation(self, src: Source) -> None:
        """copytruncate: look for the copy from where we were, then read the file from 0."""
        was = src.position()
        if src.buf or src.skipping:
            self.dropped_partials += 1
        if was.offset > 0 and was.fingerprint:
            self._locating = was
        assert src.fio is not None
        src.buf.clear()
        src.skipping = False
        src.fio.seek(0)
        self._samples.clear()
        src.offset = src.line_start = src.line = 0
        src.ref = FileRef(src.ref.path, src.ref.dev, src.ref.ino,
                          os.pread(src.fio.fileno(), FINGERPRINT_BYTES, 0))

    # ------------------------------------------------------------------ lines

    def _read(self, src: Source, out: _Out) -> bool:
        """Read ``src`` on within this poll's budget; True when its end was reached."""
        assert src.stream is not None
        while self._budget > 0:
            chunk = src.stream.read(min(self.chunk_size, self._budget))
            if not chunk:
                return True
            self._budget -= len(chunk)
            self._split(src, chunk, out)
        return False

    def _split(self, src: Source, chunk: bytes, out: _Out) -> None:
        """Cut ``chunk`` into lines; every byte is searched once (linear).

        The whole lines that lie within the chunk go out as one :class:`LineBlock`
        (when none can be too long); a line joined across reads goes out alone.
        """
        base = src.offset
        src.offset += len(chunk)
        pos = 0
        if src.skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                return
            src.skipping = False
            src.line += 1
            pos = nl + 1
            src.line_start = base + pos
        if src.buf and (nl := chunk.find(b"\n", pos)) >= 0:
            src.buf += chunk[pos:nl + 1]
            self._line(src, bytes(src.buf), base + nl + 1, out)
            src.buf.clear()
            pos = nl + 1
        last = chunk.rfind(b"\n", pos)
        if last >= 0 and last + 1 - pos <= self.max_line_bytes:
            block = chunk[pos:last + 1] if pos or last + 1 < len(chunk) else chunk
            out.append(LineBlock(block, src.ref, src.line + 1, base + pos))
            src.line += block.count(b"\n")
            src.line_start = base + last + 1
            pos = last + 1
        while (nl := chunk.find(b"\n", pos)) >= 0:  # only where a line may be too long
            self._line(src, chunk[pos:nl + 1], base + nl + 1, out)
            pos = nl + 1
        if pos < len(chunk):
            if len(src.buf) + len(chunk) - pos > self.max_line_bytes:
                self._too_long(src, src.line + 1)
                src.buf.clear()
                src.skipping = True
            else:
                src.buf += chunk[pos:]

    def _line(self, src: Source, line: bytes, end: int, out: _Out) -> None:
        """One complete line ending at ``end``: out, or reported when too long."""
        src.line += 1
        if len(line) > self.max_line_bytes:
            self._too_long(src, src.line)
        else:
            out.append(FollowedLine(line, src.ref, src.line, src.line_start, end))
        src.line_start = end

    def _too_long(self, src: Source, lineno: int) -> None:
        self._problem(f"line too long (over {self.max_line_bytes} bytes), skipped",
                      src.ref.path, lineno, failure=False)

    def _finish(self, src: Source, out: _Out) -> None:
        """A file that will not grow any more: its unfinished last line is a line."""
        if src.buf and not src.skipping:
            line = bytes(src.buf)
            src.line += 1
            out.append(FollowedLine(line, src.ref, src.line, src.line_start, src.offset))
            src.line_start = src.offset
            src.buf.clear()

    # ------------------------------------------------------------------ loops

    def wait(self) -> None:
        """Sleep one poll interval (between empty polls)."""
        self._sleep(self.poll_interval)

    def iter_batches(self, stop: threading.Event | Callable[[], bool] | None = None,
                     ) -> Iterator[list[FollowedLine]]:
        """Yield one batch per poll (empty when nothing new) until ``stop`` is set."""
        def stopped() -> bool:
            if stop is None:
                return False
            return stop.is_set() if isinstance(stop, threading.Event) else bool(stop())

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
