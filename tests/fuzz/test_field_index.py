"""Fuzz: the shared field index never disagrees with get_values, and content ids keep their form."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from credwatch.alerts.ids import content_id, field_index
from credwatch.normalize.flatten import flatten, get_values
from credwatch.triage.context import first, memoized, values

from . import fuzz

_KEYS = st.sampled_from(["a", "b", "a.b", "b.c", "", "x.y.z", "é", "c"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                     st.floats(allow_nan=True), st.text(max_size=6))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_KEYS, inner, max_size=3)), max_leaves=12)
_EVENTS = st.dictionaries(_KEYS, _VALUES, max_size=5)
_FIELDS = ["a", "b", "a.b", "b.c", "a.b.c", "x.y.z", "c", "a.a", "é", "b.a.b"]


@fuzz
@given(_EVENTS)
def test_index_reads_equal_get_values_and_content_id_keeps_its_canonical_form(
        event: dict[str, Any]) -> None:
    index = field_index(event)
    assert index.flat == flatten(event)
    with memoized(event):
        for field in _FIELDS + list(index.flat):
            want = get_values(event, field)
            assert values(event, field) == want
            assert first(event, field) == (want[0] if want else None) or want[0] != want[0]
    flat = sorted(flatten(event).items())
    text = json.dumps(flat, ensure_ascii=False, separators=(",", ":"), default=str)
    assert content_id(event) == hashlib.sha256(text.encode("utf-8")).hexdigest()
