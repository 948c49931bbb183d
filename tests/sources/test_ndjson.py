"""The NDJSON line reader: records with true line numbers; bad and too-long lines are counted."""

from __future__ import annotations

import io

import pytest

from credwatch.sources import inputs
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.ndjson import ndjson_records


def test_lines_are_numbered_from_first_line_and_bad_ones_do_not_stop_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "MAX_LINE_BYTES", 64)
    data = b'{"a": 1}\nnot json\n{"m": "' + b"x" * 100 + b'"}\n\n{"b": 2}'
    diag = Diagnostics()
    records = list(ndjson_records(io.BytesIO(data), "in.ndjson", diag, first_line=3))
    assert [(r.event, r.source, r.line) for r in records] == [({"a": 1}, "in.ndjson", 3),
                                                              ({"b": 2}, "in.ndjson", 7)]
    assert diag.skipped["line-too-long"] == 1
    assert any(s.startswith("in.ndjson:5: line-too-long") for s in diag.samples)
    assert sum(diag.skipped.values()) == 2  # the non-JSON line (4) too
