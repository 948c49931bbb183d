"""Event text on the terminal: escape sequences, controls and bidi overrides shown escaped."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import pytest

from credwatch.alerts.display import terminal_cell, terminal_lines, terminal_text
from credwatch.sinks.output.table import TableSink

from ..cli.helpers import run_cli
from ..triage.helpers import defend, run_triage

TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J"
RLO = "\u202e"
MARKUP = "[bold red]x[/]"
NUL = "\x00"
#: Raw forms that must never reach a terminal.
RAW = (TITLE, CLEAR, "\x07", RLO, NUL, "\x9b")


@pytest.mark.parametrize(("raw", "shown"), [
    (TITLE, "\\x1b]0;pwned\\x07"),
    (CLEAR, "\\x1b[2J"),
    ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
    (NUL + "\x7f", "\\x00\\x7f"),
    ("\x9b31m", "\\x9b31m"),  # C1 CSI: a one-byte escape sequence on some terminals
    ("cat " + RLO + "slaitnederc", "cat \\u202eslaitnederc"),
    ("\u2066x\u2069\u200b\u200f\u2028\u2029\ufeff", "\\u2066x\\u2069\\u200b\\u200f\\u2028\\u2029\\ufeff"),
    ("\U000e0041", "\\U000e0041"),  # a language tag: invisible
    ("\udcff", "\\udcff"),  # a lone surrogate from an undecodable byte would not even print
])
def test_terminal_text_escapes_each_class(raw: str, shown: str) -> None:
    assert terminal_text(raw) == shown


def test_ordinary_text_is_untouched() -> None:
    text = "cat /root/.aws/credentials naïve 日本 [x] \\x1b émoji 🙂"
    assert terminal_text(text) == text
    assert terminal_text(None) == "" and terminal_text(42) == "42"
    assert terminal_lines("one\x1b[2J\ntwo") == "one\\x1b[2J\ntwo"


def test_cell_is_never_markup() -> None:
    console_out = io.StringIO()
    from rich.console import Console
    Console(file=console_out, force_terminal=False, width=80).print(terminal_cell(MARKUP))
    assert console_out.getvalue().strip() == MARKUP


def _hostile_alerts() -> list[dict[str, Any]]:
    ev = defend(["cat", "/root/.aws/credentials", TITLE, CLEAR, RLO, MARKUP, NUL],
                host="node" + CLEAR, **{"user.name": "root" + TITLE,
                                        "process.parent.name": MARKUP + RLO,
                                        "process.parent.executable": "/bin/" + MARKUP + NUL})
    found = run_triage([ev])
    assert len(found) == 1
    return found


def _assert_inert(text: str) -> None:
    for raw in RAW:
        assert raw not in text, repr(raw)


def test_table_sink_renders_payloads_escaped_with_real_rich() -> None:
    out = io.StringIO()
    sink = TableSink(out, color=True, width=400)
    for alert in _hostile_alerts():
        sink.write(alert)
    sink.close()
    text = out.getvalue()
    _assert_inert(text)
    assert "node\\x1b[2J" in text and "root\\x1b]0;pwned\\x07" in text
    assert "/bin/" + MARKUP + "\\x00" in text  # markup shown literally, not applied


@pytest.fixture
def hostile_events(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.ndjson"
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n"
                              for d in [defend(["cat", "/root/.aws/credentials", TITLE, CLEAR,
                                                RLO, MARKUP, NUL],
                                               host="node" + CLEAR,
                                               **{"user.name": "root" + TITLE})]))
    return path


def test_scan_table_list_and_show_escape_event_text(tmp_path: Path, hostile_events: Path) -> None:
    db = str(tmp_path / "a.db")
    scan = run_cli("scan", "--db", db, "--format", "table", str(hostile_events))
    assert scan.code == 0, scan.err
    _assert_inert(scan.out)
    assert "node\\x1b[2J" in scan.out and "root\\x1b]0;pwned\\x07" in scan.out

    listed = run_cli("alerts", "--db", db, "list", "--format", "table")
    assert listed.code == 0, listed.err
    _assert_inert(listed.out)
    assert "node\\x1b[2J" in listed.out
    full = run_cli("alerts", "--db", db, "list", "--format", "ndjson").alerts()[0]

    shown = run_cli("alerts", "--db", db, "show", full["kibana.alert.uuid"])
    assert shown.code == 0, shown.err
    _assert_inert(shown.out)
    command = next(line for line in shown.out.splitlines() if "command:" in line)
    assert command.endswith("cat /root/.aws/credentials \\x1b]0;pwned\\x07 \\x1b[2J "
                            "\\u202e [bold red]x[/] \\x00")


def test_json_output_stays_exact(tmp_path: Path, hostile_events: Path) -> None:
    res = run_cli("scan", "--no-store", "--format", "ndjson", str(hostile_events))
    [alert] = res.alerts()
    host = alert["host.name"] if "host.name" in alert else alert["host"]["name"]
    assert host == "node" + CLEAR
    args = alert["process.args"] if "process.args" in alert else alert["process"]["args"]
    assert args[2:] == [TITLE, CLEAR, RLO, MARKUP, NUL]
