"""Output formats analysts use: csv and timeline everywhere alerts print, an 80-column table, --limit."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.text import Text

from credwatch.cli.common import human_out, say
from credwatch.cli.env import Env

from ..triage.helpers import defend
from .helpers import run_cli, write_ndjson

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
AUDIT_LOG = EXAMPLES / "auditd" / "audit.log"


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """Three matching execs, written out of time order, with formula-looking values."""
    return write_ndjson(tmp_path / "events.ndjson", [
        defend(["cat", "=HYPERLINK(\"http://evil\")/.aws/credentials"], t=30, host="@SUM(1+1)",
               **{"user.name": "+cmd|' /C calc'!A0"}),
        defend(["cat", "/root/.aws/credentials"], t=10, host="node-a", pid=5001),
        defend(["head", "/root/.kube/config"], t=20, host="-node-b", pid=5002),
    ])


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


FORMULA = ("=", "+", "-", "@", "\t", "\r")


def test_csv_and_timeline_are_formats_of_every_command_that_prints_alerts(
        hostile: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    assert run_cli("scan", "--db", db, "--format", "ndjson", str(hostile)).code == 0
    for fmt in ("csv", "timeline"):
        listed = run_cli("alerts", "--db", db, "list", "--format", fmt)
        assert listed.code == 0, listed.err
        assert len(rows(listed.out)) == 3
        watched = run_cli("watch", "--db", str(tmp_path / f"w-{fmt}.db"), "--from", "beginning",
                          "--max-idle", "0", "--format", fmt, str(hostile))
        assert watched.code == 0, watched.err
        assert len(rows(watched.out)) == 3
        ran = run_cli("run", "--db", str(tmp_path / f"r-{fmt}.db"), "--once", "--now",
                      "2026-12-01T11:35:00Z", "--format", fmt, str(hostile))
        assert ran.code == 0, ran.err
        assert len(rows(ran.out)) == 3


@pytest.mark.parametrize("fmt", ["csv", "timeline"])
def test_cells_that_a_spreadsheet_would_run_as_formulas_are_defused(hostile: Path, fmt: str) -> None:
    res = run_cli("scan", "--no-store", "--format", fmt, str(hostile))
    assert res.code == 0, res.err
    cells = [c for row in csv.reader(io.StringIO(res.out)) for c in row]
    assert not [c for c in cells if c.startswith(FORMULA)]
    assert "'@SUM(1+1)" in cells and "'+cmd|' /C calc'!A0" in cells and "'-node-b" in cells


def test_timeline_is_one_row_per_alert_in_event_time_order_with_timesketch_columns(
        hostile: Path) -> None:
    res = run_cli("scan", "--no-store", "--format", "timeline", str(hostile))
    assert res.code == 0, res.err
    table = rows(res.out)
    for column in ("datetime", "timestamp_desc", "message", "timestamp", "host", "user", "process",
                   "matched_arg", "rule", "severity"):
        assert column in table[0]
    times = [r["datetime"] for r in table]
    assert times == sorted(times) and len(set(times)) == 3
    assert [r["host"] for r in table] == ["node-a", "'-node-b", "'@SUM(1+1)"]
    assert table[0]["matched_arg"] == "/root/.aws/credentials"
    assert int(table[0]["timestamp"]) // 1000 == 1796124804643  # epoch µs of 11:33:24.643Z
    assert all(r["message"] and r["timestamp_desc"] for r in table)
    assert table[0]["message"].startswith("root ran cat /root/.aws/credentials on node-a: AWS")
    assert table[0]["command_line"] == "cat /root/.aws/credentials"


def test_table_fits_80_columns_and_shows_what_matched_and_why() -> None:
    res = run_cli("scan", "--no-store", str(EXAMPLES), environ={"COLUMNS": "80"}, tty=True)
    assert res.code == 0, res.err
    plain = Text.from_ansi(res.out).plain
    widths = [cell_len(line) for line in plain.splitlines()]
    assert max(widths) <= 80
    header = next(line for line in plain.splitlines() if "prio" in line)
    for col in ("prio", "host", "user", "process", "matched", "reason"):
        assert col in header
    assert "P1" in plain and "AWS shared" in plain


def test_limit_says_n_of_m(tmp_path: Path) -> None:
    res = run_cli("scan", "--no-store", "--format", "table", "--limit", "2", str(AUDIT_LOG))
    assert res.code == 0, res.err
    assert "2 of 3 alerts shown" in res.out
    assert res.out.count("k8s-node-1") == 2
    nd = run_cli("scan", "--no-store", "--format", "ndjson", "--limit", "1", str(AUDIT_LOG))
    assert len(nd.alerts()) == 1 and "1 of 3 shown" in nd.err
    db = str(tmp_path / "a.db")
    run_cli("scan", "--db", db, "--format", "ndjson", str(AUDIT_LOG))
    listed = run_cli("alerts", "--db", db, "list", "--limit", "2", "--format", "table")
    assert "2 of 3 alert(s)" in listed.out


def test_messages_and_text_fold_to_the_terminal_width() -> None:
    err, out = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(), stdout=out, stderr=err, environ={"COLUMNS": "40"},
              stdout_isatty=True, stderr_isatty=True)
    say(env, "225 events read from 4 input(s) (19 ruled out by the literal prefilter); 98 alert(s)")
    assert all(len(line) <= 40 for line in err.getvalue().splitlines())
    assert err.getvalue().startswith("credwatch: 225 events") and "\n  " in err.getvalue()
    text = human_out(env)
    text.write("  reason:    process event with process cat, by root on k8s-node-1 created\n")
    text.flush()
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert lines[1].startswith(" " * 13)  # continued under the value, not the label
