"""JSON escapes and the literal fast path: only escapes that can spell a literal cost a decode.

A literal found in a line's decoded text is either spelled in raw bytes (its slashes
as ``/``, ``\\/`` or ``\\u002f``: the finder looks for all three) or uses an escape of
one of the literals' characters. Escapes of other characters (``\\"``, ``\\\\``,
``\\n``, ``\\u00e9`` for literals without them) cannot, so those lines are neither
decoded nor candidates. Checked per escape kind, with both finders, and by a
hypothesis differential of random spellings against the full path.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credwatch.rules.loader import default_rule
from credwatch.sources import literal_filter, prefiltered
from credwatch.sources.literal_filter import LiteralFilter, hiding_escape
from credwatch.sources.prefiltered import _HyperscanFinder, _RegexFinder
from tests.sources.test_prefiltered import _run

LITERALS = frozenset({"/etc/shadow", "/.kube/config"})
_SHORT = {'"': b'\\"', "\\": b"\\\\", "/": b"\\/", "\b": b"\\b", "\f": b"\\f", "\n": b"\\n",
          "\r": b"\\r", "\t": b"\\t"}


def _finders() -> list[type[Any]]:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return [_RegexFinder]
    return [_HyperscanFinder, _RegexFinder]


def _scanner(finder: type[Any], literals: frozenset[str] = LITERALS) -> prefiltered.RangeScanner:
    scanner = prefiltered.RangeScanner(literals)
    scanner.finder = finder(literals)
    return scanner


def _scan(finder: type[Any], lines: list[bytes],
          literals: frozenset[str] = LITERALS) -> prefiltered.Scanned:
    buf = b"\n".join(lines) + b"\n"
    return _scanner(finder, literals).scan_block(buf, 0, len(buf))


def _obj(value: bytes, key: bytes = b"a") -> bytes:
    return b'{"' + key + b'": "' + value + b'"}'


@pytest.mark.parametrize("finder", _finders())
@pytest.mark.parametrize("value", [
    b'say \\"hi\\"', b"C:\\\\Users", b"one\\ntwo", b"tab\\there", b"\\b\\f\\r",
    b"j\\u00fcrgen \\u00E9", b"\\ud83d\\ude00", b"\\/bin\\/ls", b"\\u002fbin\\u002Fls",
    b'\\"\\/etc\\/sha\\"dow',
])
def test_an_escape_that_spells_no_literal_is_not_decoded(finder: type[Any], value: bytes) -> None:
    scanned = _scan(finder, [_obj(b"x"), _obj(value), _obj(b"y")])
    assert scanned.candidates == []
    assert scanned.unescaped == 0
    assert (scanned.lines, scanned.passed) == (3, 3)


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The pieces :class:`LiteralFilter` decodes (the real decoder runs)."""
    seen: list[bytes] = []
    real = literal_filter.json_unescape

    def counting(raw: bytes) -> str | None:
        seen.append(raw)
        return real(raw)

    monkeypatch.setattr(literal_filter, "json_unescape", counting)
    return seen


@pytest.mark.parametrize("value", [b'say \\"hi\\"', b"one\\ntwo", b"j\\u00fcrgen", b"\\/bin\\/ls", b"\\u002fbin"])
def test_the_document_filter_decodes_no_escape_that_spells_no_literal(value: bytes, decoded: list[bytes]) -> None:
    assert not LiteralFilter(LITERALS).may_match(_obj(value))
    assert decoded == []


def test_the_document_filter_finds_escaped_literals(decoded: list[bytes]) -> None:
    filt = LiteralFilter(LITERALS)
    assert filt.may_match(_obj(b"\\/etc\\u002Fshadow")) and decoded == []  # slashes: found as spelled
    assert filt.may_match(_obj(b"/\\u0065tc/shadow")) and len(decoded) == 1  # a letter: decoded
    assert not filt.may_match(_obj(b"/\\u0065tc/passwd")) and len(decoded) == 2
    buf = b"[" + _obj(b"x") + b"," + _obj(b"\\/.kube\\/config") + b"]"
    assert not filt.may_match_in(buf, 0, len(_obj(b"x")) + 1)
    assert filt.may_match_in(buf, len(_obj(b"x")) + 2, len(buf) - 1)


@pytest.mark.parametrize("finder", _finders())
@pytest.mark.parametrize("value", [
    b"\\/etc\\/shadow", b"\\u002fetc\\u002Fshadow", b"/etc\\/shadow", b"x \\u002F.kube/config y",
])
def test_a_literal_with_escaped_slashes_is_found_without_decoding(finder: type[Any], value: bytes) -> None:
    scanned = _scan(finder, [_obj(b"x"), _obj(value)])
    assert scanned.candidates == [(2, _obj(value))]
    assert scanned.unescaped == 0


@pytest.mark.parametrize("finder", _finders())
def test_an_escape_of_a_literal_character_is_decoded_and_rechecked(finder: type[Any]) -> None:
    behind = _obj(b"/\\u0065tc/shad\\u006Fw")  # /etc/shadow with two letters escaped
    nothing = _obj(b"/\\u0065tc/passwd")  # an escaped literal letter, but no literal
    key = b'{"hi\\u0074s": {"total": 0}}'  # a `_search` response's key, spelled with an escape
    scanned = _scan(finder, [behind, nothing, key])
    assert scanned.candidates == [(1, behind), (3, key)]
    assert scanned.unescaped == 3
    assert scanned.passed == 1


@pytest.mark.parametrize("finder", _finders())
def test_escapes_of_characters_a_literal_holds_are_decoded(finder: type[Any]) -> None:
    literals = frozenset({'say "hi"', "tab\there", "jürgen"})
    lines = [_obj(b'say \\"hi\\"'), _obj(b"tab\\there"), _obj(b"j\\u00fcrgen"), _obj(b'one \\"two'),
             _obj(b"one\\ntwo")]
    scanned = _scan(finder, lines, literals)
    assert scanned.candidates == [(1, lines[0]), (2, lines[1]), (3, lines[2])]
    # The fourth line is decoded too (a `"` may be a literal's), then passed over; the
    # fifth is not: no literal holds a newline.
    assert scanned.unescaped == 4


def test_the_hiding_escapes_follow_the_literals_characters() -> None:
    slash_only = hiding_escape(frozenset({"/"}))
    assert b'"' not in slash_only and b"u002" not in slash_only  # `"hits"`'s quotes: never escaped
    assert b"u0068" in slash_only  # but its letters may be
    assert b'"' in hiding_escape(frozenset({'a"b'}))
    assert b"u[dD][89a-fA-F]" in hiding_escape(frozenset({"\U0001f600"}))


# --- random spellings -----------------------------------------------------------------------

def _spellings(char: str) -> list[bytes]:
    """Every way JSON can spell ``char`` inside a string."""
    out = [char.encode()] if char not in '"\\' and ord(char) >= 0x20 else []
    if char in _SHORT:
        out.append(_SHORT[char])
    code = ord(char)
    units = [code] if code <= 0xFFFF else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + (code & 0x3FF)]
    out.append(b"".join(b"\\u%04x" % u for u in units))
    out.append(b"".join(b"\\u%04X" % u for u in units))
    return out


_PIECES = ["/etc/shadow", "/.kube/config", "/etc/sha", "dow", "/", "é", "\U0001f600", '"', "\\", "\n",
           "\t", "u002f", "hits", " ", "x"]


def _spell(char: str, style: int, pick: int) -> bytes:
    """``char`` in one of its JSON spellings: ``style`` 0 raw, 1 slashes short, 2 slashes
    ``\\u``, 3 ``\\u``, 4 as ``pick`` chooses."""
    options = _spellings(char)
    raw = char.encode() if options[0] == char.encode() else options[0]
    if style == 4:
        return options[pick % len(options)]
    if style == 3:
        return options[-1 - pick % 2]
    if char == "/" and style in (1, 2):
        return b"\\/" if style == 1 else options[-1 - pick % 2]
    return raw


@st.composite
def _spelled(draw: st.DrawFn, pieces: list[str] = _PIECES, raw_only: str = "") -> tuple[str, bytes]:
    """A text and one random JSON spelling of it (the characters in ``raw_only`` unescaped)."""
    chosen = draw(st.lists(st.tuples(st.sampled_from(pieces), st.integers(0, 5)), max_size=8))
    text, raw = "", b""
    for piece, style in chosen:
        text += piece
        # Style 5: one character of the piece escaped (``\\u``), the others raw.
        alone = draw(st.integers(0, len(piece) - 1)) if style == 5 else -1
        for i, char in enumerate(piece):
            how = (3 if i == alone else 0) if style == 5 else style
            raw += char.encode() if char in raw_only else _spell(char, how, draw(st.integers(0, 3)))
    return text, raw


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@settings(max_examples=300, deadline=None)
@given(st.lists(_spelled(), min_size=1, max_size=12))
def test_every_line_with_a_literal_behind_any_escape_is_a_candidate(values: list[tuple[str, bytes]]) -> None:
    lines = [_obj(raw) for _text, raw in values]
    for finder in _finders():
        scanned = _scan(finder, lines)
        flagged = {n for n, _line in scanned.candidates}
        for n, line in enumerate(lines, 1):
            decoded = orjson.loads(line)
            if any(lit in s for s in _strings(decoded) for lit in LITERALS):
                assert n in flagged, line
                assert LiteralFilter(LITERALS).may_match(line), line
        assert scanned.lines == len(lines)
        assert scanned.passed == len(lines) - len(flagged)


#: The characters of the literals and of `hits`, but `/` (whose escapes the finder spells out).
_LITERAL_CHARS = "".join(sorted(set("".join(LITERALS) + "hits") - {"/"}))


@settings(max_examples=300, deadline=None)
@given(st.lists(_spelled(["/etc/sha", "/.kube", "é", "\U0001f600", '"', "\\", "\n", "\t", "dow", " "],
                         raw_only=_LITERAL_CHARS), min_size=1, max_size=12))
def test_escapes_of_other_characters_are_never_decoded(values: list[tuple[str, bytes]]) -> None:
    # Lines without a literal whose escapes spell only `/` or characters no literal holds.
    lines = [_obj(raw) for text, raw in values if not any(lit in text for lit in LITERALS)]
    for finder in _finders():
        scanned = _scan(finder, lines)
        assert (scanned.candidates, scanned.unescaped) == ([], 0)


_POSITIVE = (b'{"host": {"os": {"type": "linux"}}, "event": {"category": "process", "action": "exec"},'
             b' "process": {"name": "cat", "args": ["cat", "%s"]}}')


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_spelled(["/etc/shadow", "/.kube/config", "/", "\\", '"', "é", "x"]),
                          st.booleans()), min_size=1, max_size=10))
def test_random_spellings_give_the_full_path_alerts(events: list[tuple[tuple[str, bytes], bool]]) -> None:
    lines = []
    for (_text, raw), search in events:
        line = _POSITIVE.replace(b"%s", raw)
        if search:  # a `_search` response whose keys are spelled with escapes
            line = b'{"hi\\u0074s": {"h\\u0069ts": [{"_source": ' + line + b"}]}}"
        lines.append(line)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.ndjson"
        path.write_bytes(b"\n".join(lines) + b"\n")
        full, fdiag = _run(path, [default_rule()], None)
        fast, diag = _run(path, [default_rule()], "always", 1)
    assert fast == full
    assert (diag.events, diag.skipped) == (fdiag.events, fdiag.skipped)
