"""Files for the follower: safe opening, content fingerprints, and where a file's content went.

A followed file is known by its identity (``st_dev``, ``st_ino``) and by a
*fingerprint*: its first :data:`FINGERPRINT_BYTES` bytes (fewer while the file
is shorter). The fingerprint tells a file whose content was replaced in place
(copytruncate, or an inode number reused after a delete) from one that only
grew, and it finds the content again after it moved: a renamed rotation keeps
the inode, a copy (copytruncate's ``audit.log.1``) or a compressed rotation
(``audit.log.1.gz``) keep the first bytes.

Nothing here blocks: siblings must be regular files (a FIFO named like a
rotation is never opened), and at most :data:`MAX_SIBLINGS` of them are
looked at.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from credwatch.errors import SourceError

__all__ = [
    "FINGERPRINT_BYTES",
    "GZIP_ERRORS",
    "MAX_SIBLINGS",
    "FileRef",
    "FollowLag",
    "GrowthSamples",
    "Position",
    "Settle",
    "Source",
    "count_lines",
    "gz_head",
    "gzip_reason",
    "open_gzip",
    "open_regular",
    "siblings",
]

#: How many leading bytes identify a file's content (timestamps make audit and
#: NDJSON heads unique; 512 bytes cover several records).
FINGERPRINT_BYTES = 512
#: Rotated siblings looked at, newest first (a folder of thousands is not walked whole).
MAX_SIBLINGS = 64
#: Directory entries examined when looking for siblings.
MAX_DIR_ENTRIES = 20_000
GZIP_MAGIC = b"\x1f\x8b"
#: What reading a partly written or corrupt gzip raises (BadGzipFile is an OSError).
GZIP_ERRORS: tuple[type[BaseException], ...] = (EOFError, OSError, zlib.error)
_CHUNK = 1 << 16
#: Size samples kept by :class:`GrowthSamples` (older ones suffice for its lower bound).
MAX_SAMPLES = 4096


@dataclass(frozen=True, slots=True)
class FollowLag:
    """How far a reader is behind the writer of a followed file."""

    #: Bytes in the followed files that are not read yet.
    bytes: int
    #: At least how long the oldest unread byte has been in the file (0 when none is unread).
    seconds: float
    #: Where reading is in the live file, and that file's size, as last seen.
    offset: int
    size: int


class GrowthSamples:
    """When a growing file reached its sizes: ``(size, mtime)`` each time it was seen larger.

    A sample ``(size, mtime)`` says every byte before ``size`` was written by
    ``mtime``. So the first sample beyond a read offset bounds from below how
    long the first unread byte has waited. When :data:`MAX_SAMPLES` are held,
    newer samples are not added: the oldest still give a true lower bound.
    """

    def __init__(self) -> None:
        self._samples: deque[tuple[int, float]] = deque()

    def note(self, size: int, mtime_ns: int) -> None:
        """The file was seen at ``size`` bytes, last written at ``mtime_ns``."""
        s = self._samples
        if (not s or size > s[-1][0]) and len(s) < MAX_SAMPLES:
            s.append((size, mtime_ns / 1e9))

    def clear(self) -> None:
        """The file was replaced or truncated: earlier sizes say nothing any more."""
        self._samples.clear()

    def waited(self, offset: int, now: float) -> float:
        """Seconds (wall clock ``now``) the byte at ``offset`` has been written at least."""
        s = self._samples
        while s and s[0][0] <= offset:
            s.popleft()
        return max(0.0, now - s[0][1]) if s else 0.0


@dataclass(slots=True)
class FileRef:
    """A file being read: where it was opened, its identity, and its fingerprint so far."""

    path: str
    dev: int
    ino: int
    fingerprint: bytes = b""
    compressed: bool = False


@dataclass(frozen=True, slots=True)
class Position:
    """A restart point: a line start in the file ``(dev, ino)``.

    ``line`` is the number of complete lines before ``offset`` (-1 when not
    known, e.g. a checkpoint written by an older credwatch: it is counted
    again on resume). ``fingerprint`` is the file's first bytes when the
    position was taken. For a compressed file, offsets count decompressed bytes.
    """

    dev: int
    ino: int
    offset: int
    line: int
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class LineRef:
    """Where a line starts: its file, 1-based line number and byte offset."""

    file: FileRef
    lineno: int
    start: int

    def position(self) -> Position:
        """The restart point just before this line."""
        f = self.file
        return Position(f.dev, f.ino, self.start, self.lineno - 1, f.fingerprint)


@dataclass(frozen=True, slots=True)
class FollowedLine:
    """One complete line (newline included, except a rotated file's unfinished last line)."""

    line: bytes
    file: FileRef
    lineno: int  #: 1-based line number in ``file``
    start: int  #: byte offset of the line's first byte
    end: int  #: byte offset just after it

    @property
    def path(self) -> str:
        """The file the line was read from (a rotated sibling while draining one)."""
        return self.file.path

    @property
    def ref(self) -> LineRef:
        """Where this line starts."""
        return LineRef(self.file, self.lineno, self.start)


@dataclass(frozen=True, slots=True)
class LineBlock:
    """Whole lines read in one piece: ``data`` from byte ``start`` of ``file``, first line ``first_line``.

    Every line ends with a newline, except the last line of a rotated file that
    ended without one.
    """

    data: bytes
    file: FileRef
    first_line: int
    start: int

    @classmethod
    def of(cls, line: FollowedLine) -> LineBlock:
        """A block of one line."""
        return cls(line.line, line.file, line.lineno, line.start)

    @property
    def terminated(self) -> bytes:
        """``data`` with a newline after its last line (the block scanners want one)."""
        return self.data if self.data[-1:] == b"\n" else self.data + b"\n"

    def lines(self) -> list[FollowedLine]:
        """The block's lines, one object each."""
        out: list[FollowedLine] = []
        pos, n, ref = self.start, self.first_line, self.file
        parts = self.data.split(b"\n")
        tail = parts.pop()
        for part in parts:
            line = part + b"\n"
            out.append(FollowedLine(line, ref, n, pos, pos + len(line)))
            pos += len(line)
            n += 1
        if tail:
            out.append(FollowedLine(tail, ref, n, pos, pos + len(tail)))
        return out


@dataclass(frozen=True, slots=True)
class FollowProblem:
    """Something reported while following: ``failure`` means data could not be read."""

    error: SourceError
    failure: bool


class NotRegularFile(OSError):
    """A path that is not a regular file (a FIFO, socket, device or folder)."""


def open_regular(path: str, *, follow_symlinks: bool = True) -> tuple[io.FileIO, os.stat_result]:
    """Open ``path`` for reading without ever blocking, and only if it is a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for
    a writer; the ``fstat`` then refuses it.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegularFile(f"{path}: not a regular file")
        os.set_blocking(fd, True)
        return io.FileIO(fd, "rb", closefd=True), st
    except BaseException:
        os.close(fd)
        raise


def open_gzip(fio: io.FileIO) -> gzip.GzipFile:
    """A decompressing reader over an open file (the caller closes both)."""
    return gzip.GzipFile(fileobj=fio, mode="rb")


def gz_head(path: str, n: int = FINGERPRINT_BYTES) -> bytes:
    """The first ``n`` decompressed bytes of a gzip file; raises one of :data:`GZIP_ERRORS`."""
    fio, _ = open_regular(path, follow_symlinks=False)
    with fio, open_gzip(fio) as gz:
        out = b""
        while len(out) < n:
            chunk = gz.read(n - len(out))
            if not chunk:
                break
            out += chunk
        return out


def count_lines(fio: io.FileIO, upto: int) -> tuple[int, int]:
    """Newlines in the first ``upto`` bytes, and the offset just after the last one.

    Linear and in bounded memory (``pread`` in 64 KiB pieces).
    """
    lines = last_end = pos = 0
    fd = fio.fileno()
    while pos < upto:
        chunk = os.pread(fd, min(_CHUNK, upto - pos), pos)
        if not chunk:
            break
        n = chunk.count(b"\n")
        if n:
            lines += n
            last_end = pos + chunk.rindex(b"\n") + 1
        pos += len(chunk)
    return lines, last_end


def siblings(path: str) -> list[tuple[str, os.stat_result]]:
    """Regular files next to ``path`` named like its rotations, newest first.

    ``audit.log.1``, ``audit.log.2.gz``, ``audit.log-20261204`` (logrotate's
    dateext) … for ``audit.log``. Symlinks, FIFOs and folders are left out.
    """
    folder, base = os.path.split(path)
    prefixes = (base + ".", base + "-")
    found: list[tuple[str, os.stat_result]] = []
    try:
        with os.scandir(folder or ".") as it:
            for i, entry in enumerate(it):
                if i >= MAX_DIR_ENTRIES:
                    break
                if not entry.name.startswith(prefixes):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.append((entry.path, st))
    except OSError:
        return []
    found.sort(key=lambda item: item[1].st_mtime_ns, reverse=True)
    return found[:MAX_SIBLINGS]


class Settle:
    """Tells a file still being written (a rotation being compressed) from a finished one.

    A file is *settled* when its size and mtime did not change for
    ``seconds`` of the injected monotonic ``clock``, or when its mtime is
    already that old by the wall clock.
    """

    def __init__(self, clock: Callable[[], float], seconds: float,
                 wall: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._wall = wall
        self.seconds = seconds
        self._seen: dict[str, tuple[int, int, float]] = {}

    def settled(self, path: str) -> bool:
        """True if ``path`` has stopped changing (a vanished file counts as settled)."""
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return True
        if self._wall() - st.st_mtime >= self.seconds:
            return True
        now = self._clock()
        prev = self._seen.get(path)
        if prev is None or prev[:2] != (st.st_size, st.st_mtime_ns):
            if len(self._seen) > 4 * MAX_SIBLINGS:
                self._seen.clear()
            self._seen[path] = (st.st_size, st.st_mtime_ns, now)
            return False
        return now - prev[2] >= self.seconds


class Source:
    """A file being followed: a stream, the consumed offset and the unfinished line."""

    __slots__ = ("buf", "fio", "line", "line_start", "mtime_ns", "offset", "ref", "skipping",
                 "stream")

    def __init__(self, ref: FileRef, fio: io.FileIO | None, offset: int, line: int) -> None:
        self.ref = ref
        self.fio = fio
        self.stream: BinaryIO | gzip.GzipFile | None = fio
        self.offset = offset  # bytes consumed from the (decompressed) stream
        self.line_start = offset  # first byte of the unfinished line
        self.line = line  # complete lines before line_start
        self.buf = bytearray()  # bytes[line_start:offset] unless skipping
        self.skipping = False  # inside a line already found too long
        self.mtime_ns = 0  # when the file was last written, as first seen

    def position(self) -> Position:
        r = self.ref
        return Position(r.dev, r.ino, self.line_start, self.line, r.fingerprint)

    def rewind(self) -> None:
        """Forget the unfinished line and close the stream (reopened at ``line_start`` later)."""
        self.close()
        self.offset = self.line_start
        self.buf.clear()
        self.skipping = False

    def close(self) -> None:
        if self.stream is not None and self.stream is not self.fio:
            self.stream.close()
        if self.fio is not None:
            self.fio.close()
        self.stream = self.fio = None


def gzip_reason(exc: BaseException) -> str:
    """A one-line reason for a gzip read failure."""
    if isinstance(exc, EOFError):
        return "compressed file ends early (truncated gzip)"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"corrupt gzip: {text[:200]}"
