"""Decoding KQL literal tokens the way Kibana's grammar does.

Escapes, wildcards and the unquoted keywords ``true``/``false``/``null``. Kept
apart from the grammar so that the parser module loads lark only when a query
is actually parsed (start-up of the command line, issue #15).
"""

from __future__ import annotations

import re

from credwatch.kql.ast import Literal, Value, Wildcard

# One escape or one plain character, in Kibana's order of alternatives:
# \t \r \n first (so `\not` is a newline followed by "ot"), then \<special>,
# then \uXXXX, then \or \and \not.
_UNQUOTED_PIECE = re.compile(
    r"\\(?P<ws>[trn])|\\(?P<special>[\\():<>\"*{}])|\\u(?P<uni>[0-9a-fA-F]{4})"
    r"|\\(?P<kw>(?i:or|and|not))|(?P<star>\*)|(?P<char>.)",
    re.DOTALL,
)
_QUOTED_PIECE = re.compile(
    r"\\(?P<ws>[trn])|\\u(?P<uni>[0-9a-fA-F]{4})|\\(?P<special>[\\\"])|(?P<char>.)", re.DOTALL
)
_WS_ESCAPES = {"t": "\t", "r": "\r", "n": "\n"}


def decode_quoted(raw: str, pos: int = -1) -> Literal:
    """Decode a ``"..."`` token (with its quotes) into a quoted literal."""
    out: list[str] = []
    for m in _QUOTED_PIECE.finditer(raw[1:-1]):
        if m.group("ws"):
            out.append(_WS_ESCAPES[m.group("ws")])
        elif m.group("uni"):
            out.append(chr(int(m.group("uni"), 16)))
        elif m.group("special"):
            out.append(m.group("special"))
        else:
            out.append(m.group("char"))
    return Literal("".join(out), quoted=True, pos=pos)


# JavaScript's String.prototype.trim: WhiteSpace (incl. U+FEFF and the Zs
# category) and LineTerminators. Python's str.strip also strips U+001C..U+001F
# and U+0085, which JavaScript keeps, so the set is spelled out.
JS_WHITESPACE = ("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")


def _js_trim(text: str) -> str:
    return text.strip(JS_WHITESPACE)


def decode_unquoted(raw: str, pos: int = -1) -> Value:
    """Decode an unquoted token into a literal or a wildcard pattern.

    Stars are kept as separators so that an escaped ``\\*`` stays a plain
    character. The text is trimmed after decoding, as Kibana trims the joined
    characters (so an escaped trailing ``\\n`` is trimmed too).
    """
    segments: list[list[str]] = [[]]
    for m in _UNQUOTED_PIECE.finditer(raw):
        if m.group("ws"):
            segments[-1].append(_WS_ESCAPES[m.group("ws")])
        elif m.group("special"):
            segments[-1].append(m.group("special"))
        elif m.group("uni"):
            segments[-1].append(chr(int(m.group("uni"), 16)))
        elif m.group("kw"):
            segments[-1].append(m.group("kw"))
        elif m.group("star"):
            segments.append([])
        else:
            segments[-1].append(m.group("char"))
    parts = ["".join(s) for s in segments]
    if len(parts) == 1:
        text = _js_trim(parts[0])
        if text == "null":
            return Literal(None, pos=pos)
        if text == "true":
            return Literal(True, pos=pos)
        if text == "false":
            return Literal(False, pos=pos)
        return Literal(text, pos=pos)
    # Trim the whole sequence: only the outer ends of the first and last parts.
    parts[0] = parts[0].lstrip(JS_WHITESPACE)
    parts[-1] = parts[-1].rstrip(JS_WHITESPACE)
    return Wildcard(tuple(parts), pos=pos)


def line_col(text: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col
