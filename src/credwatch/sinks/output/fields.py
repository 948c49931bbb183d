"""Compact output for big hunts: only the chosen fields of each alert (``--fields``), and CSV.

The alert documents themselves stay whole: the store and ``--bulk`` receive
Elastic's full alert schema, only the printed (or ``--output``) lines are
projected. A field is looked up as a flat key of the alert first (``kibana.*``,
``credwatch.*``), then in the copied source event, nested or dotted
(``process.args``, ``host.name``). One value is written as itself, several as a
list, none as null (an empty CSV cell).
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Mapping, Sequence
from typing import IO, Any

import orjson

from credwatch.normalize.flatten import get_values
from credwatch.sinks.output.base import Sink

#: Bounds on ``--fields`` (the argument is user input like any other).
MAX_FIELDS = 128
MAX_FIELD_NAME = 256
#: CSV columns when ``--format csv`` is given without ``--fields``.
DEFAULT_CSV_FIELDS = (
    "kibana.alert.original_time", "credwatch.triage.priority", "kibana.alert.severity",
    "host.name", "user.name", "process.name", "process.args", "kibana.alert.rule.name",
    "kibana.alert.uuid",
)
#: A spreadsheet runs a cell starting with one of these as a formula; arguments are
#: attacker-controlled, so such cells are written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_OPTS = orjson.OPT_NON_STR_KEYS


def parse_fields(text: str) -> tuple[str, ...]:
    """``a,b,c`` as field names; an argparse type (bad lists are usage errors)."""
    fields = tuple(f.strip() for f in text.split(","))
    if len(fields) > MAX_FIELDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_FIELDS} fields, got {len(fields)}")
    for name in fields:
        if not name:
            raise argparse.ArgumentTypeError(f"empty field name in {text[:80]!r}")
        if len(name) > MAX_FIELD_NAME:
            raise argparse.ArgumentTypeError(f"field name longer than {MAX_FIELD_NAME} characters")
    if len(set(fields)) != len(fields):
        raise argparse.ArgumentTypeError("a field is named twice")
    return fields


def field_value(alert: Mapping[str, Any], field: str) -> Any:
    """The alert's value of ``field``: its flat key, else the source's values (None when absent)."""
    if field in alert:
        return alert[field]
    found = get_values(alert, field)
    if not found:
        return None
    return found[0] if len(found) == 1 else found


def project(alert: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """``{field: value}`` for exactly ``fields``, in that order."""
    return {f: field_value(alert, f) for f in fields}


class FieldsNdjsonSink:
    """One JSON line per alert holding exactly the chosen fields."""

    def __init__(self, stream: IO[str], fields: Sequence[str], *, owns: bool = False) -> None:
        self.stream = stream
        self.fields = tuple(fields)
        self.owns = owns

    def write(self, alert: Mapping[str, Any]) -> None:
        self.stream.write(orjson.dumps(project(alert, self.fields), option=_OPTS).decode("utf-8"))
        self.stream.write("\n")

    def close(self) -> None:
        self.stream.flush()
        if self.owns:
            self.stream.close()


def csv_cell(value: Any) -> str:
    """A CSV cell: text as is, JSON for lists and objects, empty for null, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        cell = "true" if value else "false"
    elif isinstance(value, str):
        cell = value
    elif isinstance(value, (int, float)):
        cell = str(value)
    else:
        cell = orjson.dumps(value, option=_OPTS, default=str).decode("utf-8")
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


class CsvSink:
    """RFC 4180 CSV: a header of the chosen fields, then one row per alert."""

    def __init__(self, stream: IO[str], fields: Sequence[str], *, owns: bool = False) -> None:
        self.stream = stream
        self.fields = tuple(fields)
        self.owns = owns
        self.writer = csv.writer(stream, lineterminator="\r\n")
        self.writer.writerow(self.fields)

    def write(self, alert: Mapping[str, Any]) -> None:
        self.writer.writerow([csv_cell(field_value(alert, f)) for f in self.fields])

    def close(self) -> None:
        self.stream.flush()
        if self.owns:
            self.stream.close()


def add_fields_args(parser: argparse.ArgumentParser | Any) -> None:
    """``--fields a,b,c`` (compact ndjson/json/csv output)."""
    parser.add_argument("--fields", type=parse_fields, metavar="A,B,C",
                        help="compact ndjson/json/csv output with only these fields (the store "
                             "and --bulk still get full alert documents)")


class ProjectedSink:
    """Hands each alert's chosen fields to another sink (the JSON array)."""

    def __init__(self, inner: Sink, fields: Sequence[str]) -> None:
        self.inner = inner
        self.fields = tuple(fields)

    def write(self, alert: Mapping[str, Any]) -> None:
        self.inner.write(project(alert, self.fields))

    def close(self) -> None:
        self.inner.close()
