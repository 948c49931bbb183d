"""Where reading an input can start: spans, stored per-input state, line numbers, literals.

:class:`InputState` is what the run store keeps per input file and time field
between executions (see :mod:`credwatch.engine.window`); :class:`LineFilter`
is the rule's literal prefilter on raw lines. :class:`LineCounter`
counts the lines before an offset, in a forked child when there are many, so
that the count runs beside the reading of the window (alerts carry exact line
numbers, and a first execution has no stored line number to start from).
"""

from __future__ import annotations

import bisect
import io
import os
import re
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Protocol

from credwatch.errors import SourceError

__all__ = ["HEAD_BYTES", "InputState", "LineCounter", "LineFilter", "PositionStore", "Span",
           "complete_prefix", "count_lines", "head_crc"]

#: Bytes of the file's start whose checksum tells a rewritten file from an appended one.
HEAD_BYTES = 4096
#: Below this many bytes to count, counting in place is cheaper than forking.
FORK_MIN_BYTES = 64 << 20
#: A last line without a newline is looked for this far back from the end.
TAIL_BYTES = 1 << 20
_COUNT_CHUNK = 8 << 20


@dataclass(frozen=True, slots=True)
class Span:
    """An inclusive range of epoch milliseconds."""

    lo: int
    hi: int

    def holds_any(self, points: Sequence[int]) -> bool:
        """True when one of the ascending ``points`` is inside the span."""
        i = bisect.bisect_left(points, self.lo)
        return i < len(points) and points[i] <= self.hi


@dataclass(slots=True)
class InputState:
    """What the store remembers about one input under one time field."""

    path: str  #: real path
    fields: str  #: :meth:`TimeFields.key`
    dev: int
    ino: int
    size: int
    mtime_ns: int
    head_len: int
    head_crc: int
    ordered: int = -1  #: 1 ordered, 0 not ordered, -1 unknown
    mark_offset: int = 0  #: a line start ...
    mark_line: int = 0  #: ... and the number of lines before it
    scanned_to: int = 0  #: bytes read in full (a line start) ...
    scanned_lines: int = 0  #: ... the lines before that point ...
    min_ms: int | None = None  #: ... and the time span of their events
    max_ms: int | None = None

    def span_misses(self, span: Span) -> bool:
        """True when what was read in full holds no event that can be in ``span``."""
        if self.min_ms is None or self.max_ms is None:
            return True  # no timed event at all
        return self.max_ms < span.lo or self.min_ms > span.hi


class PositionStore(Protocol):
    """Where :class:`InputState` rows live (the run store)."""

    def input_state(self, path: str, fields: str) -> InputState | None:
        """The stored state, if any."""
        ...

    def save_input_state(self, state: InputState) -> None:
        """Store ``state`` (replacing the previous one)."""
        ...


def head_crc(path: str, length: int) -> int:
    """CRC-32 of the first ``length`` bytes of ``path``."""
    with open(path, "rb") as fh:
        return zlib.crc32(fh.read(length))


def count_lines(fh: io.BufferedReader, start: int, end: int) -> int:
    """Newlines in ``[start, end)`` of a seekable file, read in reused 8 MB chunks."""
    fh.seek(start)
    buf = bytearray(_COUNT_CHUNK)
    view = memoryview(buf)
    n, left = 0, end - start
    while left > 0:
        got = fh.readinto(view[: min(left, _COUNT_CHUNK)])
        if not got:
            break
        n += buf.count(b"\n", 0, got)
        left -= got
    return n


def complete_prefix(fh: io.BufferedReader, size: int, lines: int) -> tuple[int, int]:
    """``(offset, lines before it)`` just past the file's last newline within ``size`` bytes.

    A last line still being written (no newline yet) is read again next time.
    """
    if size == 0:
        return 0, 0
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        return size, lines
    tail = max(0, size - TAIL_BYTES)
    fh.seek(tail)
    last = fh.read(size - tail).rfind(b"\n")
    if last < 0:
        return 0, 0  # no newline near the end: keep nothing
    return tail + last + 1, lines - 1


class LineCounter:
    """The number of lines before ``end``, counted on from ``lines`` lines before ``start``.

    Large counts run in a forked child (another core reads while this process
    decodes the window); :meth:`result` waits for it. Where forking is not
    possible, or the child fails, the count is done in place.
    """

    def __init__(self, path: str, start: int, lines: int, end: int, *,
                 fork_min: int = FORK_MIN_BYTES) -> None:
        self.lines = lines
        self._args = (path, start, end)
        self._value: int | None = None
        self._pid = 0
        self._fd = -1
        if end - start < fork_min or not sys.platform.startswith("linux"):
            self._value = lines + _count_path(path, start, end)
            return
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: count, report, leave without running any cleanup
            code = 0
            try:
                os.close(read_fd)
                os.write(write_fd, struct.pack("<q", _count_path(path, start, end)))
            except BaseException:  # anything at all: the parent counts again
                code = 1
            os._exit(code)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd

    @property
    def ready(self) -> bool:
        """True when :meth:`result` will not wait."""
        return self._value is not None

    def result(self) -> int:
        """The line count (waits for the child)."""
        if self._value is None:
            data = b""
            try:
                while len(data) < 8 and (chunk := os.read(self._fd, 8 - len(data))):
                    data += chunk
            finally:
                os.close(self._fd)
                os.waitpid(self._pid, 0)
            counted = struct.unpack("<q", data)[0] if len(data) == 8 else _count_path(*self._args)
            self._value = self.lines + counted
        return self._value


def _count_path(path: str, start: int, end: int) -> int:
    with open(path, "rb") as fh:
        return count_lines(fh, start, end)


class LineFilter:
    """The literal prefilter: can a raw NDJSON line hold an event the rule matches?"""

    def __init__(self, literals: frozenset[str] | None) -> None:
        self.literals = literals
        if literals is not None:
            alternation = "|".join(re.escape(lit) for lit in sorted(literals)) or r"(?!)"
            self._bytes = re.compile(alternation.encode("utf-8"))

    def could_match(self, raw: bytes) -> bool:
        """False only when no literal of the rule is in the line.

        A line with a backslash may spell a literal with JSON escapes: the
        matcher decides (about one line in a hundred in the benchmark data).
        """
        return self.literals is None or b"\\" in raw or self._bytes.search(raw) is not None


def spool(stream: IO[bytes], limit: int) -> str:
    """Copy ``stream`` (standard input) to a new private file; at most ``limit`` bytes."""
    folder = tempfile.mkdtemp(prefix="credwatch-stdin-")  # mode 0700
    path = os.path.join(folder, "stdin")
    with open(path, "wb") as out:
        copied = 0
        while chunk := stream.read(1 << 20):
            copied += len(chunk)
            if copied > limit:
                remove_spool(path)
                raise SourceError(f"standard input is over {limit} bytes", "-")
            out.write(chunk)
    return path


def remove_spool(path: str) -> None:
    """Remove a file made by :func:`spool`, and its folder."""
    shutil.rmtree(os.path.dirname(path), ignore_errors=True)
