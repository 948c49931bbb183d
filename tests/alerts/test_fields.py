"""--fields and --format csv: compact output with exactly the chosen columns; full documents elsewhere."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from credwatch.cli.env import Env
from credwatch.cli.main import program
from credwatch.normalize.flatten import get_values
from credwatch.sinks.output.fields import (
    DEFAULT_CSV_FIELDS,
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


# -- through `credwatch scan` ---------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
DEFEND = str(EXAMPLES / "ecs" / "defend.ndjson")
COLUMNS = "kibana.alert.uuid,process.name,host.name,credwatch.triage.priority"


def _scan(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(b""), stdout=out, stderr=err, environ={},
              clock=lambda: datetime(2026, 12, 1, 12, tzinfo=UTC), stdout_isatty=False,
              stderr_isatty=False)
    code = program(["scan", "--query", "event.action:exec", "--no-store", "-q", *argv], env)
    return code, out.getvalue(), err.getvalue()


def test_scan_fields_prints_exactly_those_columns_of_the_same_alerts() -> None:
    code, full, _ = _scan("--format", "ndjson", DEFEND)
    assert code == 0
    docs = [json.loads(line) for line in full.splitlines()]
    code, compact, _ = _scan("--format", "ndjson", "--fields", COLUMNS, DEFEND)
    assert code == 0
    rows = [json.loads(line) for line in compact.splitlines()]
    assert len(rows) == len(docs) > 0
    for row, doc in zip(rows, docs, strict=True):
        assert list(row) == COLUMNS.split(",")
        assert row["kibana.alert.uuid"] == doc["kibana.alert.uuid"]
        assert row["process.name"] == get_values(doc, "process.name")[0]
        assert row["credwatch.triage.priority"] == doc["credwatch.triage.priority"]


def test_scan_csv_is_compact_while_bulk_stays_full(tmp_path: Path) -> None:
    bulk = tmp_path / "alerts.bulk"
    code, out, _ = _scan("--format", "csv", "--fields", COLUMNS, "--bulk", str(bulk), DEFEND)
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == COLUMNS.split(",")
    assert all(len(r) == 4 for r in rows[1:]) and len(rows) > 1
    docs = [json.loads(line) for line in bulk.read_text().splitlines()[1::2]]
    assert [d["kibana.alert.uuid"] for d in docs] == [r[0] for r in rows[1:]]
    assert all("kibana.alert.rule.parameters" in d and "credwatch.triage.next_steps" in d
               for d in docs)


def test_scan_csv_without_fields_has_the_default_columns() -> None:
    code, out, _ = _scan("--format", "csv", DEFEND)
    assert code == 0
    assert next(csv.reader(io.StringIO(out))) == list(DEFAULT_CSV_FIELDS)


@pytest.mark.parametrize("argv", [["--format", "table", "--fields", "host.name"],
                                  ["--format", "ndjson", "--fields", "a,,b"]])
def test_scan_fields_misuse_is_a_usage_error(argv: list[str]) -> None:
    code, out, err = _scan(*argv, DEFEND)
    assert code == 2 and out == ""
    assert "Traceback" not in err and "field" in err
