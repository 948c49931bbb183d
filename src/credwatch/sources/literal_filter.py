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
#: ``/`` as a JSON string may spell it in raw bytes (a regex): itself, ``\/`` or ``\u002f``.
#: Encoders escape slashes often (PHP, Java, Go's HTML-safe mode), so literals are looked
#: for in every spelling of their slashes rather than by decoding each such line.
SLASH_SPELLINGS = rb"(?:/|\\/|\\u002[fF])"
_SURROGATE_ESCAPE = rb"u[dD][89a-fA-F][0-9a-fA-F]{2}"


def spelled_literal(literal: str) -> bytes:
    """A regex over raw bytes matching ``literal`` with each ``/`` in any JSON spelling."""
    return SLASH_SPELLINGS.join(re.escape(part.encode("utf-8")) for part in literal.split("/"))


def _hex_escape(char: str) -> bytes:
    """``\\uXXXX`` for ``char`` (a regex, either case of each hex digit), after the backslash."""
    code = ord(char)
    if code > 0xFFFF or 0xD800 <= code <= 0xDFFF:
        return _SURROGATE_ESCAPE  # any surrogate escape: the pair may decode to ``char``
    digits = b"%04x" % code
    return b"u" + b"".join(b"[%c%c]" % (d, d - 32) if d >= 0x61 else bytes([d]) for d in digits)


def hiding_escape(literals: frozenset[str]) -> bytes:
    """A regex matching each JSON escape that can spell a character of ``literals`` other than ``/``.

    A line whose escapes all decode to characters no literal holds (``\\"``, ``\\n``,
    ``\\u00e9``...) holds a literal in its decoded text only where the raw bytes spell it
    without an escape; ``/``'s escapes are part of :func:`spelled_literal`. So only the
    lines this matches need their escapes decoded. ``"hits"`` counts by its letters only:
    its quotes are those of a JSON key, which are never escaped.
    """
    chars = sorted((set("".join(literals)) | set(HITS_NEEDLE.strip('"'))) - {"/"})
    alternatives = {_hex_escape(c) for c in chars}
    for char in chars:
        short = next((k for k, v in _SIMPLE_ESCAPES.items() if v == char and k != "/"), None)
        if short is not None:
            alternatives.add(re.escape(short.encode()))
    return rb"\\(?:" + b"|".join(sorted(alternatives)) + b")"


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


def text_needles(literals: frozenset[str]) -> re.Pattern[str]:
    """The literals and ``"hits"`` as one pattern over decoded text."""
    return re.compile("|".join(re.escape(n) for n in sorted(literals | {HITS_NEEDLE})))


def decoded_holds(raw: bytes, needles: re.Pattern[str]) -> bool:
    """True when ``raw`` with its JSON escapes decoded holds a needle (or cannot be decoded)."""
    text = json_unescape(raw)
    return text is None or needles.search(text) is not None


@dataclass
class LiteralFilter:
    """``may_match(raw)``: False only when ``raw`` holds none of ``literals``, escaped or not.

    The literals are looked for with their slashes in every JSON spelling; a piece
    is decoded only when it holds an escape that can spell another character of
    theirs (:func:`hiding_escape`).
    """

    literals: frozenset[str]
    #: Pieces passed over (each counted as one event by the reader).
    passed_over: int = 0
    _bytes: re.Pattern[bytes] = field(init=False, repr=False)
    _hiding: re.Pattern[bytes] = field(init=False, repr=False)
    _text: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._text = text_needles(self.literals)
        self._bytes = re.compile(b"|".join(spelled_literal(n) for n in sorted(self.literals | {HITS_NEEDLE})))
        self._hiding = re.compile(hiding_escape(self.literals))

    def may_match_in(self, buf: bytes | bytearray, lo: int, hi: int) -> bool:
        """:meth:`may_match` of ``buf[lo:hi]`` without copying it unless it must be decoded."""
        if self._bytes.search(buf, lo, hi) is not None:
            return True
        if self._hiding.search(buf, lo, hi) is None:
            return False
        return decoded_holds(bytes(buf[lo:hi]), self._text)

    def may_match(self, raw: bytes) -> bool:
        """True when ``raw`` must be decoded: it holds a literal, or may hide one in an escape."""
        return self.may_match_in(raw, 0, len(raw))
