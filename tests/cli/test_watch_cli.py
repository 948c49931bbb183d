"""`credwatch watch` from the command line: format detection on data, table, --no-store, terminal default."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import orjson
from rich.cells import cell_len

from credwatch.alerts.store import AlertStore
from credwatch.cli.commands.watch import DetectingWatcher, _detect
from credwatch.cli.env import Env
from credwatch.cli.main import program
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.rules.loader import default_rule
from credwatch.sources.diagnostics import Diagnostics

from .helpers import FIXED_NOW, run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "credwatch" / "examples"
DEFEND = EXAMPLES / "ecs" / "defend.ndjson"
AUDIT_LOG = EXAMPLES / "auditd" / "audit.log"


def expected_alerts(path: Path) -> int:
    res = run_cli("scan", "--no-store", "--format", "ndjson", str(path))
    return len(res.alerts())


def test_a_new_empty_ndjson_file_is_detected_when_data_arrives(tmp_path: Path) -> None:
    log = tmp_path / "events.ndjson"
    log.write_bytes(b"")
    detected = _detect(str(log), "auto")
    assert detected is None  # nothing tells yet: not guessed as audit
    alerts: list[dict[str, Any]] = []
    store = AlertStore(tmp_path / "a.db")
    scanner = Scanner(compile_rules([default_rule()]), diagnostics=Diagnostics())
    watcher = DetectingWatcher(str(log), scanner, store, [], detected=detected, start="beginning",
                               on_alert=lambda a: alerts.append(dict(a)))
    watcher.step()
    log.write_bytes(DEFEND.read_bytes())
    watcher.step()
    store.close()
    assert watcher.input_format == "ndjson"
    assert len(alerts) == expected_alerts(DEFEND) > 0


class _Signal(io.StringIO):
    """A stderr that tells when something was written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.written = threading.Event()

    def write(self, s: str) -> int:
        n = super().write(s)
        self.written.set()
        return n


def test_watch_of_a_file_that_appears_later_detects_its_format(tmp_path: Path) -> None:
    log = tmp_path / "later.ndjson"
    out, err = io.StringIO(), _Signal()
    env = Env(stdin=io.BytesIO(), stdout=out, stderr=err, environ={}, clock=lambda: FIXED_NOW,
              stdout_isatty=False, stderr_isatty=False)
    codes: list[int] = []
    argv = ["watch", str(log), "--db", str(tmp_path / "a.db"), "--from", "beginning",
            "--max-idle", "3", "--poll-interval", "0.05"]
    thread = threading.Thread(target=lambda: codes.append(program(argv, env)))
    thread.start()
    assert err.written.wait(30)  # "waiting for ... to appear"
    log.write_bytes(DEFEND.read_bytes())
    thread.join(60)
    assert codes == [0], err.getvalue()
    assert "waiting for" in err.getvalue()
    alerts = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert len(alerts) == expected_alerts(DEFEND)


def test_table_on_a_terminal_is_one_line_per_alert_that_fits(tmp_path: Path) -> None:
    n = expected_alerts(AUDIT_LOG)
    for extra in ((), ("--format", "table")):
        res = run_cli("watch", str(AUDIT_LOG), "--db", str(tmp_path / f"a{len(extra)}.db"),
                      "--from", "beginning", "--max-idle", "0", "--idle-close", "0", *extra,
                      environ={"COLUMNS": "80"}, tty=True)
        assert res.code == 0, res.err
        lines = res.out.splitlines()
        assert len(lines) == n + 1  # a header, then one line per alert
        assert lines[0].split()[:3] == ["time", "prio", "host"]
        assert max(cell_len(line) for line in lines) <= 80
        assert all("k8s-node-1" in line for line in lines[1:])


def test_no_store_writes_no_store_and_still_alerts(tmp_path: Path) -> None:
    data = tmp_path / "xdg"
    res = run_cli("watch", str(AUDIT_LOG), "--no-store", "--from", "beginning", "--max-idle", "0",
                  "--idle-close", "0",
                  "--format", "ndjson", environ={"XDG_DATA_HOME": str(data)})
    assert res.code == 0, res.err
    assert len(res.alerts()) == expected_alerts(AUDIT_LOG)
    assert not data.exists()
    again = run_cli("watch", str(AUDIT_LOG), "--no-store", "--from", "beginning", "--idle-close", "0", "--max-idle",
                    "0", "--format", "ndjson", environ={"XDG_DATA_HOME": str(data)})
    assert len(again.alerts()) == len(res.alerts())  # nothing remembered between runs
    refused = run_cli("watch", str(AUDIT_LOG), "--no-store", "--sink", "x", "--max-idle", "0")
    assert refused.code == 2 and "--no-store cannot be combined with --sink" in refused.err


def test_input_format_takes_the_same_names_in_compile_scan_and_watch(tmp_path: Path) -> None:
    for name in ("auditd", "audit", "AUDITD"):
        assert run_cli("compile", "--target", "prefilter", "--input-format", name).code == 0
        assert run_cli("scan", "--no-store", "--format", "ndjson", "--input-format", name,
                       str(AUDIT_LOG)).code == 0
        assert run_cli("watch", str(AUDIT_LOG), "--db", str(tmp_path / "w.db"), "--input-format",
                       name, "--max-idle", "0", "--format", "ndjson").code in (0, 1)
    ndjson = run_cli("compile", "--target", "prefilter", "--input-format", "ndjson")
    assert ndjson.code == 0
    bad = run_cli("watch", str(AUDIT_LOG), "--input-format", "search", "--max-idle", "0")
    assert bad.code == 2 and "watch follows line-based logs" in bad.err
    unknown = run_cli("scan", "--input-format", "xml", str(AUDIT_LOG))
    assert unknown.code == 2 and "unknown input format 'xml'" in unknown.err
