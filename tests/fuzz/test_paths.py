"""Fuzz target: deriving credwatch.normalized.* never raises and stays bounded on any event."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from credwatch.normalize.paths import FIELD, MAX_PATHS, READ_FIELD, derived_fields, path_origins

from . import corpus, fuzz

_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(max_size=60),
                    st.text(alphabet=st.sampled_from(list("/.~$-=@<>|;&()'\"`\\ \x00\n*")), max_size=80))
_value = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=5)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
_keys = st.sampled_from(["process.args", "process.working_directory", "process.pid", "user.name",
                         "user.id", "process.executable", "process.name", "process.command_line",
                         "process.title", "process", "credwatch", "user"])
_events = st.dictionaries(_keys, _value, max_size=8)


def _check(event: Any) -> None:
    fields = derived_fields(event)
    for name in (FIELD, READ_FIELD):
        assert len(fields[name]) <= MAX_PATHS
        assert all(isinstance(p, str) and p.startswith("/") for p in fields[name])
    for origin in path_origins(event):
        assert isinstance(origin.argument, str)


@fuzz
@given(_events)
def test_derived_fields_never_raise(event: dict[str, Any]) -> None:
    _check(event)


def test_saved_crashes_replay() -> None:
    for data in corpus("paths"):
        _check(json.loads(data))
