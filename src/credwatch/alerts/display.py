"""Event text on a terminal: control characters and invisible formatting shown escaped.

Arguments, paths, host and user names in alerts come from monitored machines
and are chosen by whoever ran the command. Printed raw, ``\\x1b]0;...\\x07``
retitles the analyst's terminal, ``\\x1b[2J`` clears it, a carriage return or
``\\x1b[1A`` overwrites earlier lines, and a right-to-left override (U+202E)
makes ``cat /root/.aws/credentials`` read as something else. Every place
that prints event-derived text to a terminal passes it through
:func:`terminal_text`, which shows such characters as Python-style escapes
(``\\x1b``, ``\\u202e``, ``\\n``) and leaves everything else untouched.

:func:`terminal_cell` also makes the text inert for rich (``[bold]`` is not
markup) by returning a :class:`rich.text.Text`, which rich never parses.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["terminal_cell", "terminal_lines", "terminal_text", "visible_text"]

# Every character of Unicode's Cc (controls: C0, DEL, C1), Cf (format: soft hyphen, Arabic
# number signs and letter mark, zero-width spaces and joiners, LRM/RLM, the bidi embeddings
# and overrides U+202A-202E and isolates U+2066-2069, invisible operators, BOM, interlinear
# annotation, Egyptian/shorthand/musical format controls, language tags), Zl and Zp (line
# and paragraph separators) and Cs (lone surrogates, from undecodable bytes: printing one
# would raise), as of Unicode 14 (Python 3.11); tests/fuzz/test_outputs.py checks the list
# against unicodedata.
_FORMAT_AND_SEPARATORS = (
    "\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f"
)
_UNSAFE = re.compile(f"[\x00-\x1f{_FORMAT_AND_SEPARATORS}]")
# The same without tab and newline, for HTML (where they are plain white space).
_UNSAFE_IN_PAGE = re.compile(f"[\x00-\x08\x0b-\x1f{_FORMAT_AND_SEPARATORS}]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def terminal_text(value: Any) -> str:
    """``value`` as text safe to print on a terminal (None is the empty string).

    Linear in the length of the text (one regular-expression pass).
    """
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)


def visible_text(value: Any) -> str:
    """``value`` with invisible and control characters (NUL, bidi overrides, ...) escaped.

    Tab and newline are kept: this is for markup output (the HTML report), which
    escapes ``<&>"'`` itself.
    """
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return _UNSAFE_IN_PAGE.sub(_escape, text)


def terminal_lines(value: str) -> str:
    """:func:`terminal_text` for each line of a multi-line message (its newlines kept)."""
    return "\n".join(terminal_text(line) for line in value.split("\n"))


def terminal_cell(value: Any, style: str = "") -> Text:
    """:func:`terminal_text` as a rich ``Text``: printed literally, never read as markup."""
    # Imported here: only tables use it, and rich costs a plain scan ~40 ms of start-up.
    from rich.text import Text

    return Text(terminal_text(value), style=style)
