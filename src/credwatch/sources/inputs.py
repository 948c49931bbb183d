"""Turn the paths a user names into inputs, and open them, without ever letting one stop the rest.

* Folders are walked recursively (``glob`` filters file names; hidden files are left
  out), in name order except that rotated logs come oldest first (``audit.log.2.gz``,
  ``audit.log.1``, ``audit.log``: see :func:`rotation_key`). Only regular files found in a folder are read: a FIFO, socket or device there
  would hang or make no sense, so it is reported and skipped, as is an unreadable
  subfolder or a dangling symbolic link.
* A FIFO or character device named explicitly (``<(zcat x.gz)``, ``/dev/stdin``) is
  read as a stream; a socket or block device is reported.
* Every failure to open or read an input (permissions, a truncated or corrupt gzip, a
  file that shrank while read) becomes ``path: reason`` in
  :attr:`Diagnostics.failed <credwatch.sources.diagnostics.Diagnostics.failed>`; the
  next input is still read.
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import re
import stat
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from credwatch.sources.diagnostics import Diagnostics

#: Lines longer than this are skipped (and reported) without being held in memory.
MAX_LINE_BYTES = 16 * 1024 * 1024
#: What reading an input may raise; each is reported as a failed input.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)


@dataclass(frozen=True, slots=True)
class Input:
    """One input to read: its path (``-`` for stdin), its name in reports, what it is."""

    path: str
    source: str
    #: A regular file: its size is known and it may be split across workers.
    regular: bool
    size: int | None = None


def describe(exc: BaseException) -> str:
    """A short reason for a read error, without a Python type name where a better one exists."""
    if isinstance(exc, EOFError):
        return "truncated gzip (compressed data ends before the end of the stream)"
    if isinstance(exc, zlib.error):
        return f"corrupt gzip ({exc})"
    if isinstance(exc, gzip.BadGzipFile):
        return f"corrupt gzip ({exc})"
    if isinstance(exc, OSError):
        return exc.strerror.lower() if exc.strerror else str(exc)
    return str(exc) or type(exc).__name__


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def expand_inputs(paths: Iterable[str], diag: Diagnostics, glob: str | None = None) -> Iterator[Input]:
    """The inputs behind ``paths`` in order; what cannot be an input is reported in ``diag``."""
    for p in paths:
        if p == "-":
            yield Input("-", "<stdin>", False)
            continue
        try:
            st = os.stat(p)
        except OSError as exc:
            diag.fail(p, "dangling symbolic link" if os.path.islink(p) else describe(exc))
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(p, glob, diag)
        elif stat.S_ISREG(st.st_mode):
            yield Input(p, p, True, st.st_size)
        elif stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
            yield Input(p, p, False)  # named explicitly: read as a stream
        else:
            diag.fail(p, f"{_kind(st.st_mode)}, not a file")


def _walk(top: str, glob: str | None, diag: Diagnostics) -> Iterator[Input]:
    found: list[Input] = []

    def unreadable(exc: OSError) -> None:
        diag.fail(str(exc.filename or top), f"folder not readable ({describe(exc)})")

    for root, _dirs, files in os.walk(top, onerror=unreadable):
        for name in files:
            if name.startswith(".") or (glob and not fnmatch.fnmatch(name, glob)):
                continue
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError as exc:
                diag.fail(path, "dangling symbolic link" if os.path.islink(path) else describe(exc))
                continue
            if stat.S_ISREG(st.st_mode):
                found.append(Input(path, path, True, st.st_size))
            elif not stat.S_ISDIR(st.st_mode):
                diag.fail(path, f"{_kind(st.st_mode)} in a folder, skipped")
    yield from sorted(found, key=lambda i: rotation_key(i.path))


#: ``audit.log.1``, ``audit.log.2.gz`` (logrotate's and auditd's numbering: higher is older)
#: and ``audit.log-20261201[.gz]`` (logrotate's dateext: later is newer).
_NUMBERED = re.compile(r"^(?P<base>.+)\.(?P<n>[0-9]{1,6})(?:\.gz)?$")
_DATED = re.compile(r"^(?P<base>.+)-(?P<date>[0-9]{8}(?:[0-9]{2,6})?)(?:\.gz)?$")


def rotation_key(path: str) -> tuple[str, int, int, str]:
    """Sort key putting a log's rotations oldest first, the live file last.

    Within a folder, files sort by name, except that a rotated copy of a log sorts
    with the log: ``audit.log.2.gz``, ``audit.log.1``, then ``audit.log`` (events
    in the order they were written), and ``x.log-20261201`` before ``x.log``.
    """
    folder, name = os.path.split(path)
    m = _NUMBERED.match(name)
    if m:
        return (os.path.join(folder, m["base"]), 0, -int(m["n"]), path)
    m = _DATED.match(name)
    if m:
        return (os.path.join(folder, m["base"]), 0, int(m["date"].ljust(14, "0")), path)
    return (path, 1, 0, path)


class OpenedInput:
    """An open input: the (gunzipped) byte stream, and what is needed to check it at the end."""

    def __init__(self, inp: Input, stdin: IO[bytes] | None) -> None:
        self.input = inp
        self.fd: int | None = None
        self.size: int | None = None
        self.gzipped = False
        raw: IO[bytes]
        if inp.path == "-":
            if stdin is None:
                raise OSError(0, "no standard input available")
            raw = stdin if isinstance(stdin, io.BufferedReader) else io.BufferedReader(_RawWrap(stdin))
            self._owned: IO[bytes] | None = None
        else:
            raw = self._open_file(inp)
            self._owned = raw
        head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
        self.stream: IO[bytes] = raw
        if head == b"\x1f\x8b":
            self.gzipped = True
            self.stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]

    def _open_file(self, inp: Input) -> IO[bytes]:
        # O_NONBLOCK: a path swapped for a FIFO after it was listed must not hang the open.
        # (A FIFO named explicitly is opened blocking: it waits for its writer.)
        nonblock = os.O_NONBLOCK if inp.regular else 0
        fd = os.open(inp.path, os.O_RDONLY | nonblock | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            if inp.regular and not stat.S_ISREG(st.st_mode):
                raise OSError(0, f"{_kind(st.st_mode)}, no longer a regular file")
            os.set_blocking(fd, True)
            if stat.S_ISREG(st.st_mode):
                self.fd, self.size = fd, st.st_size
            return open(fd, "rb", buffering=1 << 20)
        except BaseException:
            os.close(fd)
            raise

    @property
    def plain_size(self) -> int | None:
        """The size of an uncompressed regular file (``None`` for stdin, gzip, pipes)."""
        return None if self.gzipped else self.size

    def shrank(self) -> str | None:
        """Why the file cannot have been read to its end (it shrank meanwhile), or ``None``."""
        if self.fd is None or self.size is None:
            return None
        try:
            now = os.fstat(self.fd).st_size
        except OSError:
            return None
        if now < self.size:
            return f"file shrank while being read ({self.size} -> {now} bytes); its end was not read"
        return None

    def close(self) -> None:
        """Close what this object opened (never the caller's stdin)."""
        if self.gzipped and self._owned is not None:
            self.stream.close()
        if self._owned is not None:
            self._owned.close()


class _RawWrap(io.RawIOBase):
    """Give any binary stream (e.g. BytesIO in tests) a ``readinto`` for BufferedReader."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self.inner.read(len(buf))
        n = len(data)
        buf[:n] = data
        return n


def iter_lines(stream: IO[bytes], max_bytes: int | None = None,
               first_line: int = 1) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(line number, bytes)``; an over-long line yields ``None`` and is skipped in pieces.

    Read errors (a truncated gzip...) propagate: the caller reports the input as failed.
    """
    if max_bytes is None:
        max_bytes = MAX_LINE_BYTES
    lineno = first_line - 1
    while True:
        chunk = stream.readline(max_bytes + 1)
        if not chunk:
            return
        lineno += 1
        if len(chunk) > max_bytes and not chunk.endswith(b"\n"):
            # Drain the rest of the long line without keeping it.
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(max_bytes)
            yield lineno, None
            continue
        yield lineno, chunk


def open_binary(path: str, stdin: IO[bytes] | None = None) -> IO[bytes]:
    """Open ``path`` (``-`` for stdin) for binary reading, transparently gunzipping.

    Raises :class:`OSError`; the scan pipeline uses :class:`OpenedInput` instead.
    """
    return OpenedInput(Input(path, path, False), stdin).stream
