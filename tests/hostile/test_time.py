"""Hostile times through the CLI: out-of-range dates, huge epochs and amounts, huge schedules.

Each case either evaluates (exit 0/1) or is a clear error naming the value and
where it is (exit 2); never a traceback or exit 70 (INTERNAL).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

import credwatch
from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.main import program

BUILTIN_RULE = Path(credwatch.__file__).parent / "rules" / "builtin" / "credential_path_access.toml"


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(b""), stdout=out, stderr=err, environ={"HOME": "/nonexistent"},
              stdout_isatty=False, stderr_isatty=False)
    return program(list(argv), env), out.getvalue(), err.getvalue()


def _event(ts: Any, pid: int) -> dict[str, Any]:
    return {"@timestamp": ts, "host": {"name": "h1", "os": {"type": "linux"}},
            "event": {"category": ["process"], "action": "exec"},
            "process": {"name": "cat", "pid": pid, "args": ["cat", "/root/.kube/config"]}}


#: @timestamp values at and beyond the edges, each with what an alert's original_time is.
EDGE_TIMES: list[tuple[Any, str | None]] = [
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
    ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
    (99999999999999999, None),  # year 3170843: a valid ES date, not a datetime
    ("99999999999999999", None),
    (-99999999999999999, None),
    ("1" + "0" * 5000, None),  # beyond a Java long: not a date at all
    ("2024-01-01T00:00:00+99:00", None),  # no such zone offset
]


def _write(tmp_path: Path, events: list[dict[str, Any]]) -> str:
    path = tmp_path / "events.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return str(path)


def _no_traceback(code: int, err: str) -> None:
    assert code != ExitStatus.INTERNAL, err
    assert "Traceback" not in err and "internal error" not in err, err


def test_events_at_the_edges_of_time_are_evaluated_and_alerted(tmp_path: Path) -> None:
    src = _write(tmp_path, [_event(ts, i) for i, (ts, _) in enumerate(EDGE_TIMES)])
    code, out, err = _cli("scan", src, "--no-store", "--format", "ndjson")
    _no_traceback(code, err)
    assert code == ExitStatus.OK, err
    alerts = {a["process"]["pid"]: a for a in map(json.loads, out.splitlines())}
    assert sorted(alerts) == list(range(len(EDGE_TIMES)))  # every one evaluated and alerted
    for pid, (_, original) in enumerate(EDGE_TIMES):
        assert alerts[pid].get("kibana.alert.original_time") == original


@pytest.mark.parametrize(("query", "matched"), [
    ("@timestamp:9999", [1]),  # ES: 9999-01-01T00:00 .. 9999-01-01T23:59:59.999
    ("@timestamp <= 9999", [0, 1]),
    ("@timestamp > now-9999y", [0, 1, 2, 3]),  # year -7973: every date
    ("@timestamp < now+9000y", [0, 1, 2]),
    ("@timestamp >= 99999999999999999", [3]),
    ("@timestamp < 0001-01-01", []),
])
def test_queries_at_the_edges_are_evaluated(tmp_path: Path, query: str,
                                            matched: list[int]) -> None:
    src = _write(tmp_path, [_event("0001-01-01T00:00:00Z", 0),
                            _event("9999-01-01T12:00:00Z", 1),
                            _event("9999-12-31T23:59:59.999Z", 2),
                            _event(99999999999999999, 3)])
    # @timestamp:9999 is 9999-01-01 only for gte/lte bounds; the 12:00 event is within it.
    code, out, err = _cli("scan", src, "--no-store", "--format", "ndjson", "--query", query)
    _no_traceback(code, err)
    got = sorted(a["process"]["pid"] for a in map(json.loads, out.splitlines()))
    assert got == matched, err
    assert code == (ExitStatus.OK if matched else ExitStatus.NO_ALERTS)


@pytest.mark.parametrize(("query", "value", "where"), [
    ("@timestamp > now-99999999999y", "now-99999999999y", "character 5"),
    ("@timestamp > now-" + "9" * 5000 + "y", "now-999", "character 5"),
    ("@timestamp < now+300000000y", "now+300000000y", "character"),
    ("@timestamp:now/2d", "now/2d", "character 4"),
    ("@timestamp >= now-1x", "now-1x", "character 6"),
    ('@timestamp:"2024-01-01T00:00:00+99:00"', "2024-01-01T00:00:00+99:00", "character 1"),
    ('@timestamp >= "||+1d"', "||+1d", "character 1"),
])
def test_bad_date_math_is_a_clear_error(tmp_path: Path, query: str, value: str,
                                        where: str) -> None:
    src = _write(tmp_path, [_event("2024-01-01T00:00:00Z", 1)])
    code, _, err = _cli("scan", src, "--no-store", "--query", query)
    _no_traceback(code, err)
    assert code == ExitStatus.ERROR, err
    assert value in err and where in err, err
    assert len(err) < 2000  # a 5000-digit amount is not echoed whole


def _rule_file(tmp_path: Path, **fields: str) -> str:
    text = BUILTIN_RULE.read_text(encoding="utf-8")
    for key, value in fields.items():
        text, n = re.subn(rf'(?m)^{key} = ".*"$', f'{key} = "{value}"', text)
        assert n == 1, key
    path = tmp_path / "rule.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("fields", "named"), [
    ({"interval": "99999999999999999999d"}, "[rule.interval]"),
    ({"interval": "9" * 5000 + "s"}, "[rule.interval]"),
    ({"interval": "36501d"}, "[rule.interval]"),
    ({"from": "now-99999999999y"}, "[rule.from]"),
    ({"from": "now-9000y"}, "[rule.from]"),  # before year 1: not a window credwatch can search
    ({"from": "now-" + "9" * 3000 + "m"}, "[rule.from]"),
    ({"from": "now-99999999999999999999s"}, "[rule.from]"),  # was OverflowError
])
@pytest.mark.parametrize("command", ["run", "scan"])
def test_huge_rule_schedules_are_rule_errors(tmp_path: Path, fields: dict[str, str], named: str,
                                             command: str) -> None:
    rule = _rule_file(tmp_path, **fields)
    src = _write(tmp_path, [_event("2024-01-01T00:00:00Z", 1)])
    extra = ["--once", "--now", "2026-03-01T10:00:00Z"] if command == "run" else []
    code, _, err = _cli(command, *extra, "--rule", rule, "--db", str(tmp_path / "a.db"), src)
    _no_traceback(code, err)
    assert code == ExitStatus.ERROR, err
    assert named in err and "rule.toml" in err, err
