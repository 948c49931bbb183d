"""ECS type checks: a non-numeric string in a numeric field skips the event, in any key shape."""

from __future__ import annotations

from typing import Any

import pytest

from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import check_types
from credwatch.sources.record import Record


@pytest.mark.parametrize(("event", "field"), [
    ({"process": {"pid": "abc"}}, "process.pid"),
    ({"process.pid": "abc"}, "process.pid"),
    ({"process": {"parent.pid": "x1"}}, "process.parent.pid"),
    ({"process": {"parent": {"pid": ["7", "oops"]}}}, "process.parent.pid"),
    ({"destination": [{"port": 80}, {"port": "http"}]}, "destination.port"),
    ({"host": {"name": "n"}, "source.bytes": "many", "process": {"pid": "zz"}}, "source.bytes"),
])
def test_wrong_type_is_skipped_with_the_first_field(event: dict[str, Any], field: str) -> None:
    diag = Diagnostics()
    assert not check_types(Record(event, "f.ndjson", 3), diag)
    assert diag.skipped["wrong-type"] == 1
    assert diag.samples[0].startswith(f"f.ndjson:3: wrong-type ({field} is ")


@pytest.mark.parametrize("event", [
    {"process": {"pid": "42", "args": ["cat", "abc"], "name": "cat"}},
    {"process.pid": 42.0, "process.parent.pid": "1e3"},
    {"user": {"id": "abc"}, "labels": {"pid": "x"}},
    {"process": {"pid": None}},
    {"process.pid.": "x", "process..pid": "y", "": {"": "z"}, "process": {"": "w", "pid": {"": "v"}}},
])
def test_numbers_and_non_numeric_fields_pass(event: dict[str, Any]) -> None:
    diag = Diagnostics()
    assert check_types(Record(event, "f.ndjson", 1), diag)
    assert not diag.skipped
