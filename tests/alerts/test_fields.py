"""--fields and --format csv: compact output with exactly the chosen columns; full documents elsewhere."""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import Any

import pytest

from credwatch.alerts.sinks.fields import (
    CsvSink,
    FieldsNdjsonSink,
    csv_cell,
    field_value,
    parse_fields,
)

ALERT: dict[str, Any] = {
    "kibana.alert.uuid": "u1", "kibana.alert.severity": "high",
    "process": {"name": "cat", "args": ["cat", "/root/.aws/credentials"]},
    "host.name": "n1", "credwatch.triage.user": {"name": "root"},
}


def test_field_values_come_from_flat_keys_then_the_source() -> None:
    assert field_value(ALERT, "kibana.alert.uuid") == "u1"
    assert field_value(ALERT, "process.name") == "cat"
    assert field_value(ALERT, "process.args") == ["cat", "/root/.aws/credentials"]
    assert field_value(ALERT, "host.name") == "n1"
    assert field_value(ALERT, "credwatch.triage.user") == {"name": "root"}
    assert field_value(ALERT, "user.name") is None


def test_ndjson_lines_hold_exactly_the_fields_in_order() -> None:
    out = io.StringIO()
    sink = FieldsNdjsonSink(out, ("process.name", "kibana.alert.uuid", "missing"))
    sink.write(ALERT)
    sink.close()
    doc = json.loads(out.getvalue())
    assert list(doc) == ["process.name", "kibana.alert.uuid", "missing"]
    assert doc == {"process.name": "cat", "kibana.alert.uuid": "u1", "missing": None}


def test_csv_has_a_header_and_one_row_per_alert_with_formulas_defused() -> None:
    out = io.StringIO()
    sink = CsvSink(out, ("process.args", "host.name", "process.name", "user.name"))
    sink.write(ALERT)
    sink.write({"process": {"name": "=HYPERLINK(\"http://x\")", "args": "-la"}})
    sink.close()
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["process.args", "host.name", "process.name", "user.name"]
    assert rows[1] == ['["cat","/root/.aws/credentials"]', "n1", "cat", ""]
    assert rows[2] == ["'-la", "", "'=HYPERLINK(\"http://x\")", ""]
    assert csv_cell(True) == "true" and csv_cell(3) == "3" and csv_cell(None) == ""


@pytest.mark.parametrize("bad", ["", "a,,b", "a,a", ",".join(f"f{i}" for i in range(129)),
                                 "x" * 257])
def test_bad_field_lists_are_usage_errors(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_fields(bad)


def test_parse_fields_strips_spaces() -> None:
    assert parse_fields(" host.name , process.args") == ("host.name", "process.args")
