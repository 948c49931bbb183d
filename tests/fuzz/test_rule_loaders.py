"""Fuzz: random bytes, NDJSON and TOML into the rule and exception loaders.

Whatever the file holds, loading it raises nothing but credwatch's own errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given
from hypothesis import strategies as st

from credwatch.engine.exceptions import ExceptionFilter, load_export
from credwatch.errors import CredwatchError
from credwatch.rules.loader import load_file, validate
from tests.fuzz import corpus, fuzz

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["rule_id", "name", "query", "type", "list_id", "item_id", "entries",
                         "field", "operator", "value", "meta", "from", "interval", "index",
                         "risk_score", "severity", "language", "exported_count"]),
        kids, max_size=6),
    max_leaves=20)
_DEEP = st.integers(1, 3000).map(lambda n: "[" * n + "]" * n)
_TOML_PIECES = ['[rule]\n', 'name = "x"\n', 'query = "a:b"\n', "x = [", "]", "{a=", "}", "\n",
                '"', "'''", "=", "[[credwatch.tests]]\n", "type = 'query'\n", "1", ","]
_TOML = st.lists(st.sampled_from(_TOML_PIECES), max_size=30).map("".join)


def _load(suffix: str, data: bytes) -> None:
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(data)
        try:
            for rule in load_file(path) if suffix != ".exc" else ():
                validate(rule)
            if suffix == ".exc":
                for lst in load_export(path):
                    ExceptionFilter(lst.items).excluded_by({"a": "b"})
        except CredwatchError:
            pass


@fuzz
@given(st.sampled_from([".ndjson", ".json", ".toml", ".exc"]),
       st.one_of(st.binary(max_size=200),
                 st.lists(_JSON, max_size=3).map(
                     lambda objs: "\n".join(json.dumps(o) for o in objs).encode()),
                 _DEEP.map(lambda s: ('{"rule_id":"r","meta":' + s + "}").encode()),
                 _TOML.map(str.encode)))
def test_loaders_raise_only_credwatch_errors(suffix: str, data: bytes) -> None:
    _load(suffix, data)


def test_corpus() -> None:
    for data in corpus("rule_loaders"):
        for suffix in (".ndjson", ".json", ".toml", ".exc"):
            _load(suffix, data)
