"""The shared field index: one flattening per event, equal to get_values whenever it is used."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from credwatch.alerts.ids import content_id, field_index
from credwatch.normalize.flatten import flatten, get_values
from credwatch.triage.context import first, memoized, values

NESTED = {"process": {"args": ["cat", "/root/.aws/credentials"], "parent": {"name": "bash"},
                      "pid": 7, "title": None},
          "host": [{"name": "a"}, {"name": ["b", None, "c"]}], "user": {"name": "root"}}
FLAT = {"process.args": ["cat", "/root/.kube/config"], "process.parent.name": "sh",
        "host.name": "n1", "event.action": "exec"}
# Both spellings of one field: get_values orders them its own way, the index must not be used.
MIXED = {"process": {"name": "nested"}, "process.name": "dotted",
         "user": {"name": "u", "id.x": 1}}


@pytest.mark.parametrize("event", [NESTED, FLAT])
def test_a_single_spelling_event_is_indexed_exactly_as_get_values_reads_it(
        event: dict[str, Any]) -> None:
    index = field_index(event)
    assert index.unique
    for field in [*index.flat, "process.name", "missing.field", "process"]:
        assert index.flat.get(field, []) == get_values(event, field)
        with memoized(event):
            assert values(event, field) == get_values(event, field)
            want = get_values(event, field)
            assert first(event, field) == (want[0] if want else None)


def test_a_mixed_event_falls_back_to_get_values() -> None:
    assert not field_index(MIXED).unique
    assert not field_index({"a": {"b.c": 1}}).unique
    int_key: dict[Any, str] = {1: "x", "a": "y"}  # decoded JSON-like data need not have str keys
    assert not field_index(int_key).unique
    assert not field_index({"a": [{2: "x"}]}).unique
    with memoized(MIXED):
        assert values(MIXED, "process.name") == get_values(MIXED, "process.name")
        assert first(MIXED, "process.name") == get_values(MIXED, "process.name")[0]


def test_the_index_follows_the_event_it_was_built_for() -> None:
    a, b = {"x": 1}, {"x": 2}
    assert field_index(a).flat == {"x": [1]}
    assert field_index(b).flat == {"x": [2]}
    assert field_index(a).event is a
    assert content_id(a) != content_id(b)


@pytest.mark.parametrize("event", [NESTED, FLAT, MIXED, {"": {"a": 1, "": [2, {"b": None}]}},
                                   {"a": [[1, [2]], {"b": [{"c": 3}, None]}], "a.b": 4}])
def test_the_index_is_the_content_id_flattening(event: dict[str, Any]) -> None:
    assert field_index(event).flat == flatten(event)


@pytest.mark.parametrize("event", [
    NESTED, FLAT, MIXED,
    {"s": "".join(chr(i) for i in range(0x30)) + "\x7f\u2028é😀\"\\", "n": [-5, 2**63 - 1, True]},
    {"f": [1.0, 1e16, 1e-7, 2.5], "big": 2**70},
    {"odd": {"set": frozenset({1})}, "t": (1, 2)},
])
def test_content_id_is_the_sha256_of_the_canonical_json(event: dict[str, Any]) -> None:
    flat = sorted(flatten(event).items())
    text = json.dumps(flat, ensure_ascii=False, separators=(",", ":"), default=str)
    assert content_id(event) == hashlib.sha256(text.encode("utf-8")).hexdigest()
