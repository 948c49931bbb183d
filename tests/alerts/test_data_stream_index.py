"""The index named by ``data_stream.*``: the direct reading of the usual shapes equals the general one."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from credwatch.alerts.ids import _data_stream_index, data_stream_index

_PART = st.one_of(st.none(), st.sampled_from(["", "logs", "a", "default"]), st.integers(0, 3),
                  st.lists(st.sampled_from(["logs", ""]), max_size=2),
                  st.dictionaries(st.sampled_from(["x"]), st.text(max_size=2), max_size=1))
_KEYS = st.sampled_from(["type", "dataset", "namespace", "other"])
_NESTED = st.one_of(st.none(), st.text(max_size=2),
                    st.dictionaries(_KEYS, _PART, max_size=4),
                    st.lists(st.dictionaries(_KEYS, _PART, max_size=4), max_size=2))
_FLAT = st.dictionaries(st.sampled_from(["data_stream.type", "data_stream.dataset",
                                         "data_stream.namespace", "host.name"]), _PART, max_size=4)


@settings(max_examples=600, deadline=None)
@given(nested=_NESTED, flat=_FLAT, has_nested=st.booleans())
def test_the_direct_reading_equals_the_general_lookup(nested: Any, flat: dict[str, Any],
                                                      has_nested: bool) -> None:
    event: dict[str, Any] = dict(flat)
    if has_nested:
        event["data_stream"] = nested
    assert data_stream_index(event) == _data_stream_index(event)


def test_the_usual_shapes() -> None:
    parts = {"type": "logs", "dataset": "endpoint.events.process", "namespace": "default"}
    assert data_stream_index({"data_stream": parts}) == "logs-endpoint.events.process-default"
    assert data_stream_index({f"data_stream.{k}": v for k, v in parts.items()}) == \
        "logs-endpoint.events.process-default"
    assert data_stream_index({"data_stream": {**parts, "namespace": ""}}) is None
    assert data_stream_index({"host": {"name": "a"}}) is None
