"""One linear-time wildcard matcher for every pattern event data is matched against.

Two pattern languages share it:

* KQL wildcards (:func:`wildcard_matcher`): the parser already split the value
  at its unescaped ``*`` into literal parts; nothing else is special (``?`` is a
  plain character in KQL).
* Elasticsearch ``wildcard`` queries, as exception entries of type
  ``wildcard`` use them (:func:`es_wildcard_matcher`): ``*`` matches any run of
  characters, ``?`` exactly one, and ``\\`` makes the next character literal (a
  trailing lone ``\\`` is a literal backslash).

Both are anchored at both ends and match newlines and ``/`` like any other
character. A pattern is a list of fixed-length *segments* separated by ``*``.
Because every segment has a fixed length, placing each inner segment at its
leftmost possible position is always correct (a match that places a segment
further right can be shifted left without hurting the segments after it), so
matching never backtracks: each segment is searched once, from where the
previous one ended. A segment without ``?`` is found with ``str.find``; one
with ``?`` with a fixed-length regex of literals and ``.`` (no repetition, so
no backtracking beyond its own length). The cost is O(len(value) *
len(pattern)) at worst, linear in the value, where a ``.*`` chain is
exponential in the number of stars.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

__all__ = ["Segment", "es_wildcard_matcher", "parse_es_wildcard", "wildcard_matcher"]

StrMatcher = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Segment:
    """A fixed-length run of pattern text between two stars.

    ``pieces`` are the literal runs between ``?`` positions, each with its
    offset in the segment; ``length`` counts every character, ``?`` included.
    """

    length: int
    pieces: tuple[tuple[int, str], ...]
    #: For a segment with ``?``: the same fixed-length pattern as a regex of
    #: literals and ``.`` only (no repetition), so a scan costs O(length) per
    #: position and runs in C.
    _rx: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def literal(cls, text: str) -> Segment:
        """A segment without ``?``."""
        return cls(len(text), ((0, text),) if text else ())

    @classmethod
    def with_holes(cls, length: int, pieces: tuple[tuple[int, str], ...]) -> Segment:
        """A segment of ``length`` characters where only ``pieces`` are fixed (``?`` elsewhere)."""
        if sum(len(p) for _, p in pieces) == length:
            return cls(length, pieces)
        body: list[str] = []
        at = 0
        for off, piece in pieces:
            body.append("." * (off - at) + re.escape(piece))
            at = off + len(piece)
        body.append("." * (length - at))
        return cls(length, pieces, re.compile("".join(body), re.DOTALL))

    @property
    def is_literal(self) -> bool:
        """True when the segment has no ``?`` (so it is one plain string)."""
        return self._rx is None

    def text(self) -> str:
        """The literal text of a segment without ``?``."""
        return self.pieces[0][1] if self.pieces else ""

    def at(self, s: str, i: int) -> bool:
        """True when the segment matches ``s`` starting at index ``i``."""
        if self._rx is None:
            return s.startswith(self.text(), i)
        return self._rx.match(s, i) is not None

    def find(self, s: str, start: int, end: int) -> int:
        """Leftmost ``i`` in ``[start, end - length]`` where the segment matches, or -1."""
        if self._rx is None:
            return s.find(self.text(), start, end)
        m = self._rx.search(s, start, end)
        return -1 if m is None else m.start()


def parse_es_wildcard(pattern: str) -> list[Segment]:
    """Split an Elasticsearch wildcard pattern into its segments (one more than its stars)."""
    segments: list[Segment] = []
    pieces: list[tuple[int, str]] = []
    run: list[str] = []
    length = 0

    def close_run() -> None:
        if run:
            pieces.append((length - len(run), "".join(run)))
            run.clear()

    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            run.append(pattern[i + 1])
            length += 1
            i += 2
            continue
        if ch == "*":
            close_run()
            segments.append(Segment.with_holes(length, tuple(pieces)))
            pieces = []
            length = 0
        elif ch == "?":
            close_run()
            length += 1
        else:
            run.append(ch)
            length += 1
        i += 1
    close_run()
    segments.append(Segment.with_holes(length, tuple(pieces)))
    return segments


def es_wildcard_matcher(pattern: str) -> StrMatcher:
    """Return a linear-time, anchored matcher for an Elasticsearch wildcard pattern."""
    return _compile(parse_es_wildcard(pattern))


def wildcard_matcher(parts: Sequence[str]) -> StrMatcher:
    """Return a linear-time matcher for a KQL ``*``-only pattern split into ``parts``.

    ``a*b*`` arrives as ``("a", "b", "")``. The pattern is anchored at both
    ends, and ``*`` matches any run of characters (``/`` and newlines included).
    """
    return _compile([Segment.literal(p) for p in parts])


def _compile(segments: Sequence[Segment]) -> StrMatcher:
    if all(seg.is_literal for seg in segments):
        return _compile_literal([seg.text() for seg in segments])
    if len(segments) == 1:
        only = segments[0]
        return lambda s: len(s) == only.length and only.at(s, 0)
    first, last = segments[0], segments[-1]
    middle = [seg for seg in segments[1:-1] if seg.length]
    min_len = sum(seg.length for seg in segments)

    def match(s: str) -> bool:
        n = len(s)
        if n < min_len or not first.at(s, 0) or not last.at(s, n - last.length):
            return False
        pos = first.length
        end = n - last.length
        for seg in middle:
            i = seg.find(s, pos, end)
            if i < 0:
                return False
            pos = i + seg.length
        return True

    return match


def _compile_literal(parts: Sequence[str]) -> StrMatcher:
    """The common case without ``?``: plain ``str`` operations only."""
    if len(parts) == 1:
        exact = parts[0]
        return lambda s: s == exact
    first, last = parts[0], parts[-1]
    middle = [p for p in parts[1:-1] if p]
    min_len = len(first) + len(last) + sum(len(p) for p in middle)
    if not middle:
        if not first and not last:
            return lambda s: True
        return lambda s: len(s) >= min_len and s.startswith(first) and s.endswith(last)

    def match(s: str) -> bool:
        if len(s) < min_len or not s.startswith(first) or not s.endswith(last):
            return False
        pos = len(first)
        end = len(s) - len(last)
        for part in middle:
            i = s.find(part, pos, end)
            if i < 0:
                return False
            pos = i + len(part)
        return True

    return match
