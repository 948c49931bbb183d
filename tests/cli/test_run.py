"""``credwatch run``, ``runs`` and ``exceptions`` through the CLI entry point."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

import credwatch
from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.main import program
from tests.engine.daygen import DAY, generate_day, iso, make_event, write_ndjson

AUDIT_LOG = Path(credwatch.__file__).parent / "examples" / "auditd" / "audit.log"
CREDWATCH = Path(sys.executable).parent / "credwatch"


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(b""), stdout=out, stderr=err, environ={"HOME": "/nonexistent"},
              stdout_isatty=False, stderr_isatty=False)
    code = program(list(argv), env)
    return code, out.getvalue(), err.getvalue()


def alerts(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("command", [["run"], ["runs"], ["exceptions"], ["exceptions", "add"],
                                     ["exceptions", "list"], ["exceptions", "import"]])
def test_help_exists(command: list[str]) -> None:
    code, out, _ = cli(*command, "--help")
    assert code == 0 and "usage: credwatch" in out


def test_once_with_now_prints_the_alerts_of_that_execution(tmp_path: Path) -> None:
    import random
    rng = random.Random(1)
    at = DAY.replace(hour=10)
    events = [make_event(1, at, positive=True, rng=rng, ingested=at),
              make_event(2, at, positive=False, rng=rng, ingested=at),
              make_event(3, at - timedelta(hours=1), positive=True, rng=rng,
                         ingested=at - timedelta(hours=1))]
    src = write_ndjson(tmp_path / "e.ndjson", events)
    db = str(tmp_path / "a.db")
    code, out, err = cli("run", "--once", "--now", iso(at + timedelta(minutes=1)), "--db", db,
                         "--format", "ndjson", str(src))
    assert code == ExitStatus.OK
    assert [a["labels"]["seq"] for a in alerts(out)] == [1]  # type: ignore[index]
    assert "execution at 2026-03-01T10:01:00.000Z: succeeded" in err
    # the same execution time again: nothing new, exit status says so
    code, out, _ = cli("run", "--once", "--now", iso(at + timedelta(minutes=2)), "--db", db,
                       "--format", "ndjson", str(src))
    assert code == ExitStatus.NO_ALERTS and out == ""


def test_replayed_day_and_run_history(tmp_path: Path) -> None:
    day = generate_day(seed=5, events=600)
    src = write_ndjson(tmp_path / "day.ndjson", day)
    db = str(tmp_path / "a.db")
    code, out, _ = cli("run", "--now", iso(DAY), "--until", iso(DAY + timedelta(days=1)),
                       "--db", db, "--format", "ndjson", "--quiet", str(src))
    positives = sorted(e["labels"]["seq"] for e in day if e["labels"]["truth"] == "positive")
    assert code == ExitStatus.OK
    assert sorted(a["labels"]["seq"] for a in alerts(out)) == positives  # type: ignore[index]
    code, out, _ = cli("runs", "--db", db, "--format", "json", "--limit", "0", "--oldest-first")
    rows = json.loads(out)
    assert len(rows) == 289 and {r["status"] for r in rows} == {"succeeded"}
    assert rows[0]["started_at"] == "2026-03-01T00:00:00.000Z"
    assert rows[0]["windows"] == [{"from": "2026-02-28T23:51:00.000Z",
                                   "to": "2026-03-01T00:00:00.000Z", "max_signals": 100}]
    assert sum(r["alerts_created"] for r in rows) == len(positives)
    code, out, _ = cli("runs", "--db", db, "--limit", "3")
    assert out.splitlines()[0].startswith("STARTED") and len(out.splitlines()) == 4
    # restarting the replay resumes after the last execution: nothing more to do
    code, out, err = cli("run", "--now", iso(DAY), "--until", iso(DAY + timedelta(days=1)),
                         "--db", db, "--format", "ndjson", str(src))
    assert code == ExitStatus.NO_ALERTS and out == "" and "execution at" not in err


def test_gap_failure_shows_in_run_and_runs(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", [])
    db = str(tmp_path / "a.db")
    cli("run", "--once", "--now", iso(DAY.replace(hour=10)), "--db", db, str(src))
    code, _, err = cli("run", "--once", "--now", iso(DAY.replace(hour=11)), "--db", db, str(src))
    msg = ("31 minutes (1860000ms) were not queried between this rule execution and the last "
           "execution, so signals may have been missed. Consider increasing your look behind "
           "time or adding more Kibana instances")
    assert code == ExitStatus.NO_ALERTS and "failed; 5 window(s)" in err and msg in err
    _, out, _ = cli("runs", "--db", db, "--status", "failed")
    assert f"error: {msg}" in out


def test_raw_audit_log_gives_the_same_alerts_as_scan(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    code, out, _ = cli("run", "--once", "--now", "2026-12-01T11:35:00Z", "--db", db,
                       "--format", "ndjson", str(AUDIT_LOG))
    assert code == ExitStatus.OK
    _, scanned, _ = cli("scan", "--no-store", "--format", "ndjson", str(AUDIT_LOG))
    ids = sorted(str(a["kibana.alert.uuid"]) for a in alerts(out))
    assert ids and ids == sorted(str(a["kibana.alert.uuid"]) for a in alerts(scanned))


def test_the_tuning_loop_exceptions_add_then_run(tmp_path: Path) -> None:
    import random
    rng = random.Random(3)
    at = DAY.replace(hour=10)
    ci = ("runner", "/opt/ci/bin/runner")
    first = make_event(1, at, positive=True, rng=rng, ingested=at, user="ci", parent=ci)
    src = write_ndjson(tmp_path / "e.ndjson", [first])
    db = str(tmp_path / "a.db")
    _, out, _ = cli("run", "--once", "--now", iso(at + timedelta(minutes=1)), "--db", db,
                    "--format", "ndjson", str(src))
    (alert,) = alerts(out)
    tuning = tmp_path / "tuning.ndjson"
    code, out, _ = cli("exceptions", "add", str(alert["kibana.alert.uuid"])[:12], "--db", db,
                       "--field", "process.parent.executable", "--field", "user.name",
                       "--file", str(tuning), "--comment", "CI deploy job")
    assert code == 0 and 'process.parent.executable is "/opt/ci/bin/runner"' in out
    lines = [json.loads(x) for x in tuning.read_text().splitlines()]
    assert lines[0]["list_id"] == "credwatch-tuning" and lines[1]["type"] == "simple"
    assert lines[-1]["exported_exception_list_item_count"] == 1
    # adding the same item again changes nothing
    cli("exceptions", "add", str(alert["kibana.alert.uuid"]), "--db", db, "--field",
        "process.parent.executable", "--field", "user.name", "--file", str(tuning))
    assert len(tuning.read_text().splitlines()) == 3
    # the next CI run is excluded; the same command by someone else still alerts
    later = at + timedelta(minutes=20)
    again = make_event(2, later, positive=True, rng=rng, ingested=later, user="ci", parent=ci)
    other = make_event(3, later, positive=True, rng=rng, ingested=later, user="dev", parent=ci)
    write_ndjson(tmp_path / "e.ndjson", [first, again, other])
    code, out, _ = cli("run", "--once", "--now", iso(later + timedelta(minutes=1)), "--db", db,
                       "--format", "ndjson", "--exceptions", str(tuning), str(src))
    assert [a["labels"]["seq"] for a in alerts(out)] == [3]  # type: ignore[index]
    _, out, _ = cli("runs", "--db", db, "--format", "json", "--limit", "1")
    # catch-up windows (20 minutes since the last execution) also saw the first CI event
    row = json.loads(out)[0]
    assert row["events_excluded"] == 2 and len(row["windows"]) == 4
    _, out, _ = cli("exceptions", "list", str(tuning))
    assert "credwatch-tuning" in out and 'user.name is "ci"' in out
    code, out, _ = cli("exceptions", "import", str(tuning), "--db", db)
    assert out == "imported 1 list(s) and 1 item(s)\n"
    _, out, _ = cli("exceptions", "list", "--db", db)
    assert 'user.name is "ci"' in out


def test_exceptions_add_errors_are_clear(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    code, _, err = cli("exceptions", "add", "deadbeefdeadbeef", "--db", db, "--file",
                       str(tmp_path / "t.ndjson"))
    assert code == ExitStatus.ERROR and "no stored alert with uuid 'deadbeefdeadbeef'" in err
    bad = tmp_path / "bad.ndjson"
    bad.write_text(json.dumps({"item_id": "i1", "list_id": "l1", "type": "simple",
                               "entries": [{"field": "user.name", "type": "match",
                                            "operator": "included"}]}) + "\n")
    code, _, err = cli("run", "--once", "--db", db, "--exceptions", str(bad), str(bad))
    assert code == ExitStatus.ERROR
    assert "list 'l1', item 'i1', field 'user.name'" in err and "Traceback" not in err


def test_console_script_runs_once(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "e.ndjson", generate_day(seed=2, events=50, hours=0.1))
    proc = subprocess.run([str(CREDWATCH), "run", "--once", "--now", iso(DAY.replace(minute=7)),
                           "--db", str(tmp_path / "a.db"), "--format", "ndjson", str(src)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    assert "execution at 2026-03-01T00:07:00.000Z" in proc.stderr


def test_rule_exceptions_list_resolves_against_imported_lists(tmp_path: Path) -> None:
    import dataclasses
    import random

    from credwatch.rules.loader import default_rule
    from credwatch.rules.model import ExceptionListRef
    from credwatch.rules.toml_format import dumps_toml

    export = Path(__file__).parent.parent / "fixtures" / "exceptions" / "kibana_export.ndjson"
    refs = (ExceptionListRef(id="7d1b5c60-0e9b-11f0-9a9e-3f1f1c0b6a01",
                             list_id="k8s-cred-automation"),
            ExceptionListRef(id="x", list_id="not-imported"),
            ExceptionListRef(id="endpoint_list", list_id="endpoint_list", type="endpoint",
                             namespace_type="agnostic"))
    rule_file = tmp_path / "rule.toml"
    rule_file.write_text(dumps_toml(dataclasses.replace(default_rule(), exceptions_list=refs)))
    rng = random.Random(8)
    at = DAY.replace(hour=10)
    ci = make_event(1, at, positive=True, rng=rng, ingested=at, user="ci",
                    parent=("runner", "/opt/ci/bin/runner"))
    dev = make_event(2, at, positive=True, rng=rng, ingested=at, user="dev",
                     parent=("runner", "/opt/ci/bin/runner"))
    src = write_ndjson(tmp_path / "e.ndjson", [ci, dev])
    db = str(tmp_path / "a.db")
    assert cli("exceptions", "import", str(export), "--db", db)[0] == 0
    code, out, err = cli("run", "--once", "--now", iso(at + timedelta(minutes=1)), "--db", db,
                         "--format", "ndjson", "--rule", str(rule_file), str(src))
    assert code == ExitStatus.OK
    assert [a["labels"]["seq"] for a in alerts(out)] == [2]  # type: ignore[index]
    assert "exception list 'not-imported' (single) referenced by the rule was not found" in err
    assert "endpoint_list" not in err
