"""The literal filter: a strategy the engine hands to a reader to pass over what cannot match.

Every event a rule set can match holds one of the rules' literals
(:func:`credwatch.backends.prefilter.derive_literals`). A piece of raw input (a line,
an array element, a hit) that holds none of them, not even behind a JSON escape, is
counted as an event without being decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Always a candidate: a ``_search`` response holds many events behind this key.
HITS_NEEDLE = '"hits"'
_JSON_ESCAPE = re.compile(r'\\(?:u([0-9a-fA-F]{4})|(["\\/bfnrt]))')
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def json_unescape(line: bytes) -> str | None:
    """Decode every JSON escape in ``line`` (``None`` if the line is not valid UTF-8)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None

    def repl(m: re.Match[str]) -> str:
        hexa = m.group(1)
        return chr(int(hexa, 16)) if hexa is not None else _SIMPLE_ESCAPES[m.group(2)]

    out = _JSON_ESCAPE.sub(repl, text)
    # `\ud83d\ude00` decodes to two surrogates; join them into one code point.
    return out.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


@dataclass
class LiteralFilter:
    """``may_match(raw)``: False only when ``raw`` holds none of ``literals``, escaped or not."""

    literals: frozenset[str]
    #: Pieces passed over (each counted as one event by the reader).
    passed_over: int = 0
    _bytes: re.Pattern[bytes] = field(init=False, repr=False)
    _text: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        needles = sorted(self.literals | {HITS_NEEDLE})
        self._text = re.compile("|".join(re.escape(n) for n in needles))
        self._bytes = re.compile(b"|".join(re.escape(n.encode("utf-8")) for n in needles))

    def may_match_in(self, buf: bytes | bytearray, lo: int, hi: int) -> bool:
        """:meth:`may_match` of ``buf[lo:hi]`` without copying it when it holds no escape."""
        if self._bytes.search(buf, lo, hi) is not None:
            return True
        return buf.find(b"\\", lo, hi) >= 0 and self.may_match(bytes(buf[lo:hi]))

    def may_match(self, raw: bytes) -> bool:
        """True when ``raw`` must be decoded: it holds a literal, or may hide one in an escape."""
        if self._bytes.search(raw) is not None:
            return True
        if b"\\" not in raw:
            return False
        text = json_unescape(raw)
        return text is None or self._text.search(text) is not None
