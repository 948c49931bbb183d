"""Decide how to read an input from its first bytes, without betting the file on its first line.

The first non-blank bytes are looked at after a UTF-8 byte order mark and blank lines
(which are skipped, and counted so that line numbers stay true):

* ``[``, or a ``{`` whose line does not end with ``}`` (a pretty-printed object, a
  truncated first object, a single line longer than the look-ahead): the *document*
  reader (:mod:`credwatch.sources.jsondoc`), which reads a JSON array, concatenated
  values, ``_search`` responses, and recovers from garbage between values;
* a ``{...}`` line: the *line* reader (:mod:`credwatch.sources.ndjson`), which decides
  per line: a line that is not JSON is reported as ``file:line`` and the rest is read;
* audit records (``type=``, ``node=``, ``msg=audit(``, ``----``) outnumbering JSON lines
  among the first lines: the raw audit reader.

Leading lines that are none of these (garbage) do not decide: the first line that is
one does.
"""

from __future__ import annotations

import io
import re
from typing import IO, Any

#: Bytes looked at to decide (after the blank prefix).
HEAD_BYTES = 64 * 1024
#: Non-blank lines of the head looked at.
HEAD_LINES = 20
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_AUDIT_LINE = re.compile(rb"(?:\A|\s)(?:node=\S+ )?type=\S+ (?:msg=)?audit\(|\A----")


def detect(head: bytes) -> str:
    """``empty``, ``json`` (document reader), ``ndjson`` (line reader) or ``auditd``."""
    text = head.removeprefix(_BOM).lstrip(_WHITESPACE)
    if not text:
        return "empty"
    lines = [ln for ln in text.split(b"\n", HEAD_LINES + 1)[:HEAD_LINES] if ln.strip()]
    audit = sum(1 for ln in lines if _AUDIT_LINE.search(ln))
    jsonish = sum(1 for ln in lines if ln.lstrip()[:1] in (b"{", b"["))
    if audit > jsonish:
        return "auditd"
    for line in lines:
        first = line.lstrip()[:1]
        if first == b"[":
            return "json"
        if first == b"{":
            # A line cut by the look-ahead does not end with "}" either: a huge one-line
            # value (say a _search response) goes to the document reader, which streams it.
            return "ndjson" if line.rstrip(_WHITESPACE).endswith(b"}") else "json"
    return "auditd" if audit else "ndjson"


def prepare(stream: IO[bytes], input_format: str = "auto") -> tuple[IO[bytes], int, str]:
    """Skip a BOM and blank lines, then detect; returns ``(stream, lines skipped, format)``.

    The returned stream starts at the first non-blank line; ``input_format`` other
    than ``auto`` is kept as given (the BOM and blank lines are still skipped).
    Reads as much as the blank prefix is long, keeping at most one look-ahead in memory.
    """
    data = stream.read(HEAD_BYTES)
    data = data.removeprefix(_BOM)
    skipped = 0
    while data and not data.lstrip(_WHITESPACE):
        cut = data.rfind(b"\n") + 1
        skipped += data.count(b"\n", 0, cut)
        data = data[cut:]
        more = stream.read(HEAD_BYTES)
        if not more:
            break
        data += more
    first = len(data) - len(data.lstrip(_WHITESPACE))
    cut = data.rfind(b"\n", 0, first) + 1
    skipped += data.count(b"\n", 0, cut)
    data = data[cut:]
    if len(data) < HEAD_BYTES:
        data += stream.read(HEAD_BYTES - len(data))
    fmt = detect(data) if input_format == "auto" else input_format
    return io.BufferedReader(_Chain(data, stream), buffer_size=1 << 20), skipped, fmt


class _Chain(io.RawIOBase):
    """The bytes already read for detection, then the rest of the stream (which it does not close)."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head = memoryview(head)
        self.rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self.head:
            n = min(len(buf), len(self.head))
            buf[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.rest.read(len(buf))
        n = len(data)
        buf[:n] = data
        return n
