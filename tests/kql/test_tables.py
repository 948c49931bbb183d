"""The parser's tables: shipped as Python literals, never read from a cache file."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lark import Lark, Token, Tree
from lark.exceptions import LarkError

from credwatch.kql import tables

_QUERIES = [
    "",
    "a:b",
    'a:"b c" and not (d:e or f:*)',
    "process.args:(cat or */.ssh/id_rsa) and x >= 3",
    "a:{ b:c and d < 4 }",
    "a:(b or c and not d)",
    "a:\\*b\\:c",
    "not not not x:y",
    "a:b or",
    "a:(b",
    "(a:b",
    "a:{b:c",
    "a:b c:d",
    'a:"unterminated',
    ">= 3",
]


def _shape(node: Tree[Token] | Token) -> object:
    if isinstance(node, Token):
        return (node.type, str(node), node.start_pos)
    # A built parser names rules with Tokens, a loaded one with str: compare the names.
    return (str(node.data), [_shape(c) for c in node.children])


def _outcome(parser: Lark, query: str) -> object:
    try:
        return _shape(parser.parse(query))
    except LarkError as exc:
        return type(exc).__name__


def test_shipped_tables_match_the_grammar_and_lark() -> None:
    assert tables.main(["--check"]) == 0


def test_shipped_tables_parse_exactly_like_freshly_built_ones() -> None:
    shipped, built = tables.load_parser(), tables.build_parser()
    for query in _QUERIES:
        assert _outcome(shipped, query) == _outcome(built, query), query


def test_stale_tables_are_rebuilt_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "grammar_digest", lambda text: "not-the-shipped-digest")
    assert tables.main(["--check"]) == 1
    parser = tables.load_parser()
    assert _outcome(parser, "a:b") == _outcome(tables.build_parser(), "a:b")


class _Payload:
    """Unpickling this runs ``open(marker, 'w')``: proof that a planted cache was loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def _run(code: str, tmpdir: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, check=True)


def test_a_planted_grammar_cache_in_the_temp_folder_is_never_loaded(tmp_path: Path) -> None:
    # Find every file name lark's own cache would use for our grammar (with the options
    # credwatch once used), then plant a pickle that runs code under each name.
    probe = tmp_path / "probe"
    probe.mkdir()
    _run(
        """
        from lark import Lark, Token, Tree
        from credwatch.kql.tables import grammar_text
        Lark(grammar_text(), parser="lalr", lexer="contextual", propagate_positions=True,
             maybe_placeholders=False, cache=True)
        """,
        probe,
    )
    caches = list(probe.iterdir())
    assert caches, "lark's cache should have written a file to find the name from"
    names = [p.name for p in caches]
    shared = tmp_path / "shared"
    shared.mkdir()
    marker = tmp_path / "pwned"
    for cache in caches:
        # lark's cache file: a digest line, then pickles; keep the digest an attacker
        # can compute too, and replace the rest.
        digest_line = cache.read_bytes().split(b"\n", 1)[0] + b"\n"
        (shared / cache.name).write_bytes(digest_line + pickle.dumps(_Payload(str(marker))))
    _run(
        """
        from credwatch.kql import parse
        assert parse("process.args:/etc/shadow") is not None
        """,
        shared,
    )
    assert not marker.exists(), "credwatch unpickled a file from the shared temp folder"
    assert sorted(p.name for p in shared.iterdir()) == sorted(names), "nothing new is written"
