"""Everyday hunting: time/severity/host filters, exceptions on a hunt, rotated logs, run's counts."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import pytest

from ..triage.helpers import defend
from .helpers import run_cli, write_ndjson

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "src" / "credwatch" / "examples"
ROTATION = ROOT / "tests" / "fixtures" / "auditd" / "rotation"
EXPORT = ROOT / "tests" / "fixtures" / "exceptions" / "kibana_export.ndjson"


@pytest.fixture
def spread(tmp_path: Path) -> Path:
    """Matching execs at 11:33:14, 11:43:14 and 11:53:14 (the CLI's clock says 12:00) on two hosts."""
    return write_ndjson(tmp_path / "spread.ndjson", [
        defend(["cat", "/root/.aws/credentials"], t=0, host="node-a", pid=5001),
        defend(["cat", "/root/.kube/config"], t=600, host="node-b", pid=5002),
        defend(["cat", "/root/.ssh/id_rsa"], t=1200, host="node-a", pid=5003),
    ])


def hosts_of(res: Any) -> list[str]:
    return sorted(a["host"]["name"] if "host" in a else a["host.name"] for a in res.alerts())


def scan(*argv: str) -> Any:
    return run_cli("scan", "--no-store", "--format", "ndjson", *argv)


@pytest.mark.parametrize(("since", "count"), [
    ("10m", 1), ("now-10m", 1), ("20m", 2), ("now-20m", 2), ("2026-12-01T11:40:00Z", 2),
    ("2026-12-01", 3), ("now-1h/h", 3)])
def test_since_is_the_event_time_in_every_spelling(spread: Path, since: str, count: int) -> None:
    res = scan("--since", since, str(spread))
    assert res.code == (0 if count else 1), res.err
    assert len(res.alerts()) == count
    assert f"{3 - count} left out by filters" in res.err or count == 3


def test_until_is_the_event_time_not_the_alert_creation(spread: Path) -> None:
    # Every alert is created at 12:00 (the clock); the events are earlier.
    res = scan("--until", "2026-12-01T11:45:00Z", str(spread))
    assert len(res.alerts()) == 2
    assert all(a["@timestamp"].startswith("2026-12-01T12:00") for a in res.alerts())
    whole_day = scan("--until", "2026-12-01", str(spread))
    assert len(whole_day.alerts()) == 3  # a date alone includes that whole day, as ES's lte


def test_severity_and_host(spread: Path) -> None:
    both = scan("--query", "process.name:cat", "--rule", "5f0fff18-f340-444b-9a98-c49ade766ff4",
                str(spread))
    assert {a["kibana.alert.severity"] for a in both.alerts()} == {"medium", "high"}
    high = scan("--query", "process.name:cat", "--rule", "5f0fff18-f340-444b-9a98-c49ade766ff4",
                "--severity", "high", str(spread))
    assert {a["kibana.alert.severity"] for a in high.alerts()} == {"high"}
    assert len(high.alerts()) == 3
    assert hosts_of(scan("--host", "node-a", str(spread))) == ["node-a", "node-a"]
    assert hosts_of(scan("--host", "node-a", "--host", "node-b", str(spread))) == [
        "node-a", "node-a", "node-b"]


def test_alerts_list_and_report_take_the_same_words_with_the_same_meaning(
        spread: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    assert run_cli("scan", "--db", db, "--format", "ndjson", str(spread)).code == 0
    for since in ("20m", "now-20m"):
        listed = run_cli("alerts", "--db", db, "list", "--since", since, "--host", "node-a",
                         "--format", "ndjson")
        assert listed.code == 0, listed.err
        assert [a["host.name"] if "host.name" in a else a["host"]["name"]
                for a in listed.alerts()] == ["node-a"]
        out = tmp_path / "r.html"
        rep = run_cli("report", "--db", db, "--since", since, "-o", str(out))
        assert "wrote 2 alert(s)" in rep.err
    alerts_file = tmp_path / "alerts.ndjson"
    alerts_file.write_text(run_cli("alerts", "--db", db, "list", "--format", "ndjson").out)
    rep = run_cli("report", "--input", str(alerts_file), "--until", "2026-12-01T11:45:00Z",
                  "--severity", "high", "-o", str(tmp_path / "f.html"))
    assert "wrote 2 alert(s)" in rep.err


@pytest.mark.parametrize("command", [
    ("scan", "--no-store", "EVENTS"), ("alerts", "--db", "DB", "list"),
    ("report", "--db", "DB", "-o", "OUT")])
@pytest.mark.parametrize("value", ["garbage", "24 hours", "now-24x", "2026-13-01", "yesterday"])
def test_a_time_that_does_not_parse_is_a_usage_error(spread: Path, tmp_path: Path,
                                                      command: tuple[str, ...], value: str) -> None:
    subst = {"EVENTS": str(spread), "DB": str(tmp_path / "a.db"), "OUT": str(tmp_path / "o.html")}
    argv = [subst.get(a, a) for a in command]
    res = run_cli(*argv, "--since", value)
    assert res.code == 2
    assert f"--since {value!r} is not a time" in res.err
    assert res.out == "" and not (tmp_path / "o.html").exists()


def test_scan_exceptions_file_excludes_matching_events(tmp_path: Path) -> None:
    events = write_ndjson(tmp_path / "ci.ndjson", [
        defend(["cat", "/root/.kube/config"], pid=5001, **{"user.name": "ci",
               "process.parent.executable": "/opt/ci/bin/runner"}),
        defend(["cat", "/root/.kube/config"], pid=5002, **{"user.name": "mallory",
               "process.parent.executable": "/opt/ci/bin/runner"}),
    ])
    assert len(scan(str(events)).alerts()) == 2
    res = scan("--exceptions", str(EXPORT), str(events))
    assert res.code == 0, res.err
    assert [a["user.name"] for a in res.alerts()] == ["mallory"]
    assert "1 excluded by exceptions" in res.err


def test_an_imported_list_no_rule_references_is_reported_unused(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    assert run_cli("exceptions", "--db", db, "import", str(EXPORT)).code == 0
    events = write_ndjson(tmp_path / "ci.ndjson", [defend(
        ["cat", "/root/.kube/config"], **{"user.name": "ci",
                                          "process.parent.executable": "/opt/ci/bin/runner"})])
    res = run_cli("scan", "--db", db, "--format", "ndjson", str(events))
    assert res.code == 0 and len(res.alerts()) == 1  # not applied: the seed rule references no list
    assert ("warning: exception list 'k8s-cred-automation' (single, 2 item(s)) is imported in "
            "the store but no rule here references it") in res.err
    ran = run_cli("run", "--db", db, "--once", "--now", "2026-12-01T11:35:00Z", "--format",
                  "ndjson", str(events))
    assert "'k8s-cred-automation'" in ran.err and "no rule here references it" in ran.err


@pytest.fixture
def rotated(tmp_path: Path) -> Path:
    """A real auditd rotation plus an older compressed copy holding the same events as .1."""
    folder = tmp_path / "audit"
    folder.mkdir()
    shutil.copy(ROTATION / "audit.log", folder / "audit.log")
    shutil.copy(ROTATION / "audit.log.1", folder / "audit.log.1")
    (folder / "audit.log.2.gz").write_bytes(gzip.compress((ROTATION / "audit.log.1").read_bytes()))
    return folder


def test_rotated_logs_are_read_oldest_first_and_a_copied_event_alerts_once(rotated: Path) -> None:
    res = scan("--prefilter", "never", str(rotated))
    assert res.code == 0, res.err
    alerts = res.alerts()
    # One alert per `cat` of the capture (one in each generation), not one per copy.
    assert [Path(a["credwatch.source.path"]).name for a in alerts] == ["audit.log.2.gz", "audit.log"]
    times = [a["kibana.alert.original_time"] for a in alerts]
    assert times == sorted(times)
    assert "1 duplicate(s) of an event already read" in res.err


def test_rotation_order_with_dates_and_other_files(tmp_path: Path) -> None:
    from credwatch.sources.diagnostics import Diagnostics
    from credwatch.sources.inputs import expand_inputs

    names = ["audit.log", "audit.log.1", "audit.log.10.gz", "audit.log.2.gz", "b.ndjson",
             "syslog-20261201.gz", "syslog", "syslog-20261130", "a.ndjson"]
    for n in names:
        (tmp_path / n).write_bytes(b"")
    order = [Path(i.path).name for i in expand_inputs([str(tmp_path)], Diagnostics())]
    assert order == ["a.ndjson", "audit.log.10.gz", "audit.log.2.gz", "audit.log.1", "audit.log",
                     "b.ndjson", "syslog-20261130", "syslog-20261201.gz", "syslog"]


def test_run_says_how_many_alerts_were_new_and_how_many_already_stored(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    log = str(EXAMPLES / "auditd" / "audit.log")
    argv = ("run", "--db", db, "--once", "--now", "2026-12-01T11:35:00Z", "--format", "ndjson", log)
    first = run_cli(*argv)
    assert first.code == 0, first.err
    assert "3 new alert(s), 0 already stored" in first.err.splitlines()[-1]
    second = run_cli(*argv)
    assert "0 new alert(s), 3 already stored" in second.err.splitlines()[-1]


def test_alerts_list_counts_in_the_store_and_lists_the_newest_events_first(
        spread: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    assert run_cli("scan", "--db", db, "--format", "ndjson", str(spread)).code == 0
    listed = run_cli("alerts", "--db", db, "list", "--limit", "1", "--since", "20m", "--format",
                     "table")
    assert "1 of 2 alert(s)" in listed.out
    newest = run_cli("alerts", "--db", db, "list", "--limit", "1", "--format", "ndjson").alerts()
    assert [a["kibana.alert.original_time"] for a in newest] == ["2026-12-01T11:53:14.643Z"]
    by_host = run_cli("alerts", "--db", db, "list", "--host", "node-b", "--host", "node-a",
                      "--severity", "critical", "--format", "ndjson")
    assert by_host.code == 0 and by_host.out == ""  # the seed rule's alerts are high


def test_alerts_takes_db_before_or_after_the_action(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    run_cli("scan", "--db", db, "--format", "ndjson", str(EXAMPLES / "auditd" / "audit.log"))
    before = run_cli("alerts", "--db", db, "list", "--format", "ndjson")
    after = run_cli("alerts", "list", "--db", db, "--format", "ndjson")
    assert after.code == 0, after.err
    assert after.out == before.out and len(after.alerts()) == 3
    shown = run_cli("alerts", "show", "33d4d7e69ce7", "--db", db)
    assert shown.code == 0 and "/root/.aws/credentials" in shown.out
