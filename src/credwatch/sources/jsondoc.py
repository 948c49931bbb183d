"""The document reader: JSON arrays, concatenated (pretty-printed) values and ``_search`` responses.

The input is never parsed as one whole document (a 30 MB ``[{},{},...]`` would become
ten million Python objects at once). A linear splitter walks the bytes, skipping strings,
and cuts out *units* that are parsed one by one:

* every top-level value (concatenated JSON, jq's pretty output, NDJSON);
* every element of a top-level array;
* every hit of a top-level object's ``hits.hits`` array (a ``_search`` response of any
  size, even on a single line); the rest of the response is not kept.

Memory is bounded by :data:`MAX_UNIT_BYTES` plus one read: a unit larger than that is
skipped (walked without being kept) and reported. Bad data never loses the rest:

* garbage between values (a stray line, ``]``, a number) is reported as ``file:line``
  and reading resumes at the next line;
* a value that does not parse is reported at the line where it starts;
* an unfinished value followed by a ``{`` or ``[`` at the start of a line (which a
  pretty-printer only writes for a new top-level value) is reported as truncated and
  reading resumes there, so a truncated first object does not swallow the file;
* an unfinished value at the end of the input is reported as truncated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import orjson

from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import (
    check_types,
    documents_to_records,
    hit_to_record,
    skip_undecodable,
)
from credwatch.sources.literal_filter import LiteralFilter
from credwatch.sources.record import Record

#: The largest unit (value, array element, hit) held in memory.
MAX_UNIT_BYTES = 16 * 1024 * 1024
#: Bytes read at a time.
READ_BYTES = 1 << 20
_TOKEN = re.compile(rb'["{}\[\]]')
_NON_BLANK = re.compile(rb"[^ \t\r\n]")
_OPEN, _CLOSE = b"{[", b"}]"
#: An object without nested objects or arrays, and a run of them (array elements).
_FLAT = rb'\{[^"{}\[\]]*(?:"[^"\\]*(?:\\.[^"\\]*)*"[^"{}\[\]]*)*\}'
_FLAT_ONE = re.compile(_FLAT)
_LANE_BYTES = 64 * 1024
_FLAT_RUN = re.compile(rb"(?:[ \t\r\n,]*" + _FLAT + rb")+")
_PAIRS = {ord("}"): ord("{"), ord("]"): ord("[")}
_NEWLINE = 0x0A
#: :meth:`_Splitter._string_end` results at or below this encode a raw newline's offset.
_NEWLINE_IN_STRING = -(1 << 62)
#: Between top-level values, commas are tolerated (the rest of an array whose start was lost).
_TOP_NON_BLANK = re.compile(rb"[^ \t\r\n,]")


@dataclass(slots=True)
class _Unit:
    start: int  #: offset of the unit's first byte in the buffer (-1 once it is too large)
    line: int
    kind: str  #: "value", "element" or "hit"


@dataclass(slots=True)
class _State:
    """Where the splitter is: the open containers, the unit being cut, the keys on the way."""

    stack: bytearray = field(default_factory=bytearray)
    keys: list[bytes | None] = field(default_factory=list)
    unit: _Unit | None = None
    #: Depth whose elements are units: 0 for top-level values, 1 in a top-level array,
    #: 3 in the ``hits.hits`` array of a ``_search`` response.
    unit_depth: int = 0
    #: Offset after the last element at ``unit_depth`` (scalars between elements are reported).
    gap: int = 0


class _Splitter:
    """Cut a byte stream into JSON units; see the module docstring."""

    def __init__(self, stream: IO[bytes], source: str, diag: Diagnostics, first_line: int = 1,
                 max_unit: int = MAX_UNIT_BYTES, literal_filter: LiteralFilter | None = None) -> None:
        self.stream = stream
        self.filter = literal_filter
        #: Array elements passed over in runs by the literal filter, not yet counted.
        self.dismissed = 0
        self._lane_until = -1
        self.source = source
        self.diag = diag
        self.max_unit = max_unit
        # A bytearray: dropping its front and appending to it reuse one allocation (a bytes
        # rebuilt for every read fragments the heap: 180 MB RSS for a 2 GB string).
        self.buf = bytearray()
        #: Bytes dropped from the front of the buffer so far (buffer offset + dropped = input offset).
        self.dropped = 0
        self.eof = False
        self.pos = 0
        #: Line numbers: ``lines`` newlines lie before buffer offset ``counted``.
        self.counted = 0
        self.lines = first_line - 1
        self.st = _State()

    # --- buffer ------------------------------------------------------------------------

    def line_at(self, offset: int) -> int:
        """The 1-based line of buffer ``offset`` (offsets asked for never go backwards)."""
        if offset > self.counted:
            self.lines += self.buf.count(b"\n", self.counted, offset)
            self.counted = offset
        return self.lines + 1

    def more(self) -> bool:
        """Read more input, dropping what is no longer needed; False at the end."""
        if self.eof:
            return False
        unit = self.st.unit
        keep = self.pos - 1 if unit is None or unit.start < 0 else min(unit.start, self.pos) - 1
        keep = max(keep, 0)
        if keep:
            self.line_at(keep)
            del self.buf[:keep]
            self.dropped += keep
            self.pos -= keep
            self.counted -= keep
            self.st.gap = max(self.st.gap - keep, 0)
            if unit is not None and unit.start >= 0:
                unit.start -= keep
        chunk = self.stream.read(READ_BYTES)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    # --- the walk ----------------------------------------------------------------------

    def units(self) -> Iterator[tuple[_Unit, bytes | None]]:
        """``(unit, bytes)`` in input order (``None`` bytes: the unit was too large to keep)."""
        while True:
            if self.filter is not None and self._lane():
                continue
            if not self.st.stack:
                found = self._top()
                if found is None:
                    return
                continue
            m = _TOKEN.search(self.buf, self.pos)
            if m is None:
                self._check_size(len(self.buf))
                self.pos = len(self.buf)
                if not self.more():
                    self._truncated()
                    return
                continue
            at = m.start()
            char = self.buf[at]
            if char == 0x22:
                if not self._string(at):
                    self._truncated()
                    return
                continue
            self.pos = at + 1
            if char in _OPEN:
                self._open(at, char)
            else:
                done = self._close(at, char)
                if done is not None:
                    yield done

    def _lane(self) -> bool:
        """Pass over a run of flat array elements that hold no literal at once (the filter's lane).

        Ten million ``{}`` elements cost one regex pass instead of ten million units.
        """
        st = self.st
        if st.unit is not None or not st.unit_depth or len(st.stack) != st.unit_depth:
            return False
        if self.dropped + self.pos < self._lane_until:
            return False
        # A bounded window: re keeps backtracking state for every repetition of a run.
        m = _FLAT_RUN.match(self.buf, self.pos, self.pos + _LANE_BYTES)
        if m is None:
            return False
        end = m.end()
        assert self.filter is not None
        if self.filter.may_match_in(self.buf, self.pos, end):
            self._lane_until = self.dropped + end  # these elements go one by one
            return False
        self.dismissed += len(_FLAT_ONE.findall(self.buf, self.pos, end))
        self.pos = st.gap = end
        return True

    def _top(self) -> bool | None:
        """Find the next top-level value; report garbage lines. None at the end."""
        while True:
            m = _TOP_NON_BLANK.search(self.buf, self.pos)
            if m is not None:
                break
            self.pos = len(self.buf)
            if not self.more():
                return None
        at = m.start()
        char = self.buf[at]
        if char in _OPEN:
            self.pos = at + 1
            self._open(at, char)
            return True
        # Garbage at the top level: report its line, resume at the next one.
        line = self.line_at(at)
        while (nl := self.buf.find(b"\n", at)) < 0:
            self.pos = len(self.buf)
            if not self.more():
                break
            at = self.pos
        else:
            self.pos = nl + 1
        self.diag.skip("malformed-json", self.source, line, "not a JSON object or array")
        return True

    def _string(self, at: int) -> bool:
        """Skip the string opening at ``at`` (noting object keys); False if the input ends in it."""
        pos = at + 1
        while True:
            end = self._string_end(pos)
            if end >= 0:
                break
            if end <= _NEWLINE_IN_STRING:
                self._broken(_NEWLINE_IN_STRING - end, "a string runs past the end of its line")
                return True
            # The string goes on past the buffer: read on from where the search stopped
            # (never from the string's start again, so a huge string costs linear time).
            self._check_size(len(self.buf))
            resume = -end - 1 + self.dropped
            start = at + self.dropped
            self.pos = resume - self.dropped
            if not self.more():
                return False
            pos, at = resume - self.dropped, start - self.dropped
        st = self.st
        depth = len(st.stack)
        if depth == st.unit_depth and st.unit is None:
            # A string where an element is expected: not an event.
            self.diag.skip("not-an-object", self.source, self.line_at(end - 1),
                           "JSON str, expected an event object")
            st.gap = end
        elif st.unit_depth == 0 and depth <= 2 and at >= 0 and end - at <= 64 and st.stack[-1] == ord("{"):
            end = self._note_key(at, end)
        self.pos = end
        return True

    def _string_end(self, pos: int) -> int:
        """Offset just past the closing quote of the string whose body starts at ``pos``.

        ``-1 - resume`` when the buffer ends first (``resume``: where to search on), and
        ``-2 - offset`` of a raw newline met first: JSON strings hold none, so the quote
        was garbage (say half a line) and the reader resumes at the next line.
        Uses ``bytes.find`` (memchr) rather than a regex: a multi-gigabyte string is
        walked at memory speed; each byte is looked at a bounded number of times.
        """
        buf = self.buf
        quote = buf.find(b'"', pos)
        while True:
            limit = len(buf) if quote < 0 else quote
            newline = buf.find(b"\n", pos, limit)
            if newline >= 0:
                limit = newline
            slash = buf.find(b"\\", pos, limit)
            if slash >= 0:
                if slash + 1 >= len(buf):
                    return -1 - slash  # the escaped byte is not read yet
                pos = slash + 2
                if quote >= 0 and pos > quote:
                    quote = buf.find(b'"', pos)
                continue
            if newline >= 0:
                return _NEWLINE_IN_STRING - newline
            if quote < 0:
                return -1 - len(buf)
            return quote + 1

    def _note_key(self, at: int, end: int) -> int:
        """Remember the string ``buf[at:end]`` if a ``:`` follows (a key); returns ``end`` (moved)."""
        key = self.buf[at:end]
        while (m := _NON_BLANK.search(self.buf, end)) is None:
            self.pos = end
            end_abs = end + self.dropped
            if not self.more():
                return end_abs - self.dropped
            end = end_abs - self.dropped
        if self.buf[m.start()] == ord(":"):
            self.st.keys[-1] = bytes(key)
        return end

    def _open(self, at: int, char: int) -> None:
        st = self.st
        depth = len(st.stack)
        if depth and at and self.buf[at - 1] == _NEWLINE and not (
                depth == st.unit_depth and st.stack[-1] == ord("[")):
            # A value starting a line inside another: the one before was truncated.
            self._restart(at)
            depth = len(st.stack)
        if depth == 0:
            st.unit_depth = 1 if char == ord("[") else 0
            if char == ord("{"):
                st.unit = _Unit(at, self.line_at(at), "value")
        elif depth == st.unit_depth and st.unit is None:
            self._report_gap(at)
            st.unit = _Unit(at, self.line_at(at), "hit" if depth == 3 else "element")
        elif (char == ord("[") and depth == 2 and st.unit_depth == 0
              and st.keys[0] == b'"hits"' and st.keys[1] == b'"hits"' and st.stack[1] == ord("{")):
            # A _search response: its hits become the units, the envelope is dropped.
            st.unit, st.unit_depth, st.gap = None, 3, at + 1
        st.stack.append(char)
        st.keys.append(None)
        if char == ord("[") and depth + 1 == st.unit_depth:
            st.gap = at + 1

    def _close(self, at: int, char: int) -> tuple[_Unit, bytes | None] | None:
        st = self.st
        if st.stack[-1] != _PAIRS[char]:
            self._broken(at, "brackets do not match")
            return None
        st.stack.pop()
        st.keys.pop()
        depth = len(st.stack)
        if depth + 1 == st.unit_depth and char == ord("]"):
            self._report_gap(at)
            # The top-level array ended, or the hits array (the rest of the envelope is not an event).
            st.unit_depth = 0
            return None
        unit = st.unit
        if depth != st.unit_depth or unit is None:
            return None
        st.unit = None
        st.gap = at + 1
        if unit.start < 0 or at + 1 - unit.start > self.max_unit:
            return unit, None
        return unit, bytes(self.buf[unit.start:at + 1])

    def _report_gap(self, at: int) -> None:
        gap = self.buf[self.st.gap:at] if 0 <= self.st.gap <= at else b""
        for piece in gap.split(b","):
            if piece.strip():
                self.diag.skip("not-an-object", self.source, self.line_at(at),
                               "a JSON scalar, expected an event object")

    def _check_size(self, end: int) -> None:
        unit = self.st.unit
        if unit is not None and unit.start >= 0 and end - unit.start > self.max_unit:
            unit.start = -1  # walked on without being kept; reported when it ends

    def _restart(self, at: int) -> None:
        st = self.st
        unit = st.unit
        line = unit.line if unit is not None else self.line_at(at)
        self.diag.skip("malformed-json", self.source, line, "truncated: a new value starts before it ends")
        keep = st.unit_depth if st.unit_depth and st.stack[:1] == b"[" and st.unit_depth == 1 else 0
        del st.stack[keep:]
        del st.keys[keep:]
        st.unit = None
        if keep == 0:
            st.unit_depth = 0

    def _broken(self, at: int, why: str) -> None:
        unit = self.st.unit
        line = unit.line if unit is not None else self.line_at(at)
        self.diag.skip("malformed-json", self.source, line, why)
        self.st = _State()
        nl = self.buf.find(b"\n", at)
        self.pos = len(self.buf) if nl < 0 else nl + 1

    def _truncated(self) -> None:
        if self.st.stack:
            unit = self.st.unit
            line = unit.line if unit is not None else self.lines + 1
            self.diag.skip("malformed-json", self.source, line, "truncated: the input ends inside a value")
            self.st = _State()


def document_records(stream: IO[bytes], source: str, diag: Diagnostics, first_line: int = 1,
                     max_unit: int = MAX_UNIT_BYTES,
                     literal_filter: LiteralFilter | None = None) -> Iterator[Record]:
    """Records of a JSON document input (array, concatenated values, ``_search`` response).

    With ``literal_filter``, units that hold none of its literals are counted as events
    (``diag.prefiltered``) without being decoded.
    """
    splitter = _Splitter(stream, source, diag, first_line, max_unit, literal_filter)
    try:
        for unit, raw in splitter.units():
            if splitter.dismissed:
                _count_passed_over(diag, splitter.dismissed)
                splitter.dismissed = 0
            if raw is not None and literal_filter is not None and not literal_filter.may_match(raw):
                _count_passed_over(diag, 1)
                continue
            yield from _unit_records(unit, raw, source, diag, max_unit)
    finally:
        _count_passed_over(diag, splitter.dismissed)


def _count_passed_over(diag: Diagnostics, n: int) -> None:
    if n:
        diag.events += n
        diag.prefiltered += n
        diag.tick()


def _unit_records(unit: _Unit, raw: bytes | None, source: str, diag: Diagnostics,
                  max_unit: int) -> Iterator[Record]:
    """The records of one unit (none if it is too large, undecodable or not an event)."""
    if raw is None:
        diag.skip("value-too-large", source, unit.line, f"over {max_unit} bytes")
        return
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        skip_undecodable(raw, exc, source, unit.line, diag)
        return
    if unit.kind == "hit":
        rec = hit_to_record(doc, source, unit.line) if isinstance(doc, dict) else None
        if rec is None:
            diag.skip("bad-hit", source, unit.line, "hit without _source or fields")
            return
        records: Iterator[Record] = iter((rec,))
    else:
        records = documents_to_records(doc, source, unit.line, diag)
    for rec in records:
        if check_types(rec, diag):
            yield rec
