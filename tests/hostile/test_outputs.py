"""Hostile cases for what credwatch writes and shows (issue #12, classes 10, 11 and 12).

10. one store, many writers; 11. private output files, no symlink following, no
output over an input, a clear error for a --db in a missing folder; 12. event
text is not markup (terminal escapes, rich markup, HTML).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from credwatch.alerts.store import AlertStore
from credwatch.triage.report import render_report

from ..cli.helpers import run_cli
from ..triage.helpers import defend, run_triage

EVENT = defend(["cat", "/root/.aws/credentials"])


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """The most permissive umask: any mode below 0600 proves credwatch set it itself."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "events.ndjson"
    path.parent.mkdir()
    path.write_bytes(orjson.dumps(EVENT) + b"\n")
    return path


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


# -- 10. one store, many writers ---------------------------------------------------------------

_OPEN_AND_INSERT = """
import sys
from credwatch.alerts.store import AlertStore
from credwatch.engine.runs import RunStore
with AlertStore(sys.argv[1]) as store:
    RunStore(store)
    new = store.insert([{"kibana.alert.uuid": "u" * 64, "kibana.alert.rule.rule_id": "r",
                         "kibana.alert.rule.name": "R", "@timestamp": "2026-12-01T00:00:00Z"}])
print(int(new[0]))
"""


def test_class10_eight_processes_create_one_new_store_and_one_alert(tmp_path: Path) -> None:
    db = str(tmp_path / "new.db")
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AND_INSERT, db],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    results = [(p.communicate(timeout=120), p.returncode) for p in procs]
    assert all(code == 0 and not err for (_, err), code in results), results
    assert sorted(out.strip() for (out, _), _ in results) == ["0"] * 7 + ["1"]
    with AlertStore(db) as store:
        assert store.count() == 1
        rows = store.conn.execute("SELECT component, COUNT(*) FROM credwatch_schema "
                                  "GROUP BY component").fetchall()
        assert dict(rows)["alerts"] == 1


# -- 11. what credwatch writes -----------------------------------------------------------------

@pytest.mark.usefixtures("umask_zero")
def test_class11_outputs_and_store_are_0600(tmp_path: Path, events: Path) -> None:
    out, bulk, db = tmp_path / "alerts.ndjson", tmp_path / "alerts.bulk", tmp_path / "a.db"
    res = run_cli("scan", "--db", str(db), "--output", str(out), "--bulk", str(bulk),
                  str(events))
    assert res.code == 0, res.err
    assert (_mode(out), _mode(bulk), _mode(db)) == (0o600, 0o600, 0o600)
    # -wal and -shm exist while a connection is open (the last close removes them).
    with AlertStore(db) as store:
        store.insert([{"kibana.alert.uuid": "x" * 64, "@timestamp": "2026-12-01T00:00:00Z"}])
        for suffix in ("-wal", "-shm"):
            assert _mode(Path(f"{db}{suffix}")) == 0o600, suffix


@pytest.mark.usefixtures("umask_zero")
def test_class11_existing_loose_output_is_tightened(tmp_path: Path, events: Path) -> None:
    out = tmp_path / "alerts.ndjson"
    out.write_text("PREVIOUS-CONTENT")
    out.chmod(0o644)
    res = run_cli("scan", "--no-store", "--output", str(out), str(events))
    assert res.code == 0 and _mode(out) == 0o600 and "PREVIOUS-CONTENT" not in out.read_text()


@pytest.mark.usefixtures("umask_zero")
def test_class11_default_store_folder_is_created_private(tmp_path: Path, events: Path) -> None:
    data = tmp_path / "xdg"
    res = run_cli("scan", "--format", "ndjson", str(events),
                  environ={"XDG_DATA_HOME": str(data), "HOME": str(tmp_path)})
    assert res.code == 0, res.err
    assert _mode(data) == 0o700 and _mode(data / "credwatch") == 0o700
    assert _mode(data / "credwatch" / "alerts.db") == 0o600


def test_class11_output_symlink_is_refused(tmp_path: Path, events: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    for option in ("--output", "--bulk"):
        link = tmp_path / f"link{option}"
        link.symlink_to(victim)
        res = run_cli("scan", "--no-store", option, str(link), str(events))
        assert res.code == 2 and "symbolic link" in res.err and "Traceback" not in res.err
        assert victim.read_text() == "precious" and link.is_symlink()


@pytest.mark.parametrize("option", ["--output", "--bulk", "--db"])
def test_class11_output_that_is_an_input_is_refused_before_truncation(
        tmp_path: Path, events: Path, option: str) -> None:
    before = events.read_bytes()
    extra = [] if option == "--db" else ["--no-store"]
    for target in (str(events), str(events.parent / ".." / "in" / "events.ndjson")):
        res = run_cli("scan", *extra, option, target, str(events))
        assert res.code == 2, res.err
        assert "refusing to overwrite an input" in res.err
        assert events.read_bytes() == before


def test_class11_hard_link_and_run_inputs_are_refused(tmp_path: Path, events: Path) -> None:
    alias = tmp_path / "alias.ndjson"
    os.link(events, alias)  # same inode, different name
    before = events.read_bytes()
    res = run_cli("scan", "--no-store", "-o", str(alias), str(events))
    assert res.code == 2 and "refusing to overwrite an input" in res.err
    res = run_cli("run", "--once", "--db", str(tmp_path / "a.db"), "-o", str(events),
                  str(events))
    assert res.code == 2 and "refusing to overwrite an input" in res.err
    assert events.read_bytes() == before


def test_class11_watched_log_and_rule_file_are_inputs(tmp_path: Path, events: Path) -> None:
    before = events.read_bytes()
    res = run_cli("watch", "--db", str(tmp_path / "a.db"), "-o", str(events), str(events))
    assert res.code == 2 and "refusing to overwrite an input" in res.err
    rule = tmp_path / "rule.toml"
    rule.write_text(Path(__file__).parents[2].joinpath(
        "src/credwatch/rules/builtin/credential_path_access.toml").read_text())
    res = run_cli("scan", "--no-store", "--rule", str(rule), "--bulk", str(rule), str(events))
    assert res.code == 2 and "refusing to overwrite an input" in res.err
    assert events.read_bytes() == before and "credwatch" in rule.read_text()


def test_class11_output_inside_an_input_folder(tmp_path: Path, events: Path) -> None:
    folder = events.parent
    res = run_cli("scan", "--no-store", "-o", str(folder / "alerts.ndjson"), str(folder))
    assert res.code == 2 and "is inside the input" in res.err
    assert not (folder / "alerts.ndjson").exists()
    # Files the folder walk skips (dot files, names outside --glob) are fine.
    res = run_cli("scan", "--no-store", "-o", str(folder / ".alerts"), str(folder))
    assert res.code == 0, res.err
    res = run_cli("scan", "--no-store", "--glob", "*.ndjson", "-o", str(folder / "alerts.out"),
                  str(folder))
    assert res.code == 0, res.err


def test_class11_db_in_a_missing_folder_is_a_clear_error(tmp_path: Path, events: Path) -> None:
    db = tmp_path / "no" / "such" / "dir" / "x.db"
    for argv in (["scan", "--db", str(db), str(events)], ["alerts", "--db", str(db), "list"]):
        res = run_cli(*argv)
        assert res.code == 2 and f"{db}: folder does not exist" in res.err, res.err
    assert not (tmp_path / "no").exists()


def test_class11_dangling_db_link_is_refused(tmp_path: Path, events: Path) -> None:
    link = tmp_path / "a.db"
    link.symlink_to(tmp_path / "elsewhere.db")
    res = run_cli("scan", "--db", str(link), str(events))
    assert res.code == 2 and "dangling symbolic link" in res.err
    assert not (tmp_path / "elsewhere.db").exists()


# -- 12. event data is not markup ----------------------------------------------------------------

PAYLOADS = ["\x1b]0;pwned\x07", "\x1b[2J", "\u202e", "[bold red]x[/]", "\x00"]
RAW = ("\x1b]0;", "\x1b[2J", "\x07", "\u202e", "\x00")


def test_class12_terminal_views_show_payloads_escaped(tmp_path: Path) -> None:
    ev = defend(["cat", "/root/.aws/credentials", *PAYLOADS], host="h" + PAYLOADS[0],
                **{"process.parent.name": PAYLOADS[3]})
    src = tmp_path / "e.ndjson"
    src.write_bytes(orjson.dumps(ev) + b"\n")
    db = str(tmp_path / "a.db")
    outputs = [run_cli("scan", "--db", db, "--format", "table", str(src), tty=True)]
    [alert] = run_cli("alerts", "--db", db, "list", "--format", "ndjson").alerts()
    outputs += [run_cli("alerts", "--db", db, "list", "--format", "table", tty=True),
                run_cli("alerts", "--db", db, "show", alert["kibana.alert.uuid"])]
    for res in outputs:
        assert res.code == 0, res.err
        for raw in RAW:
            assert raw not in res.out, (raw, res.out)
    assert "\\x1b]0;pwned\\x07 \\x1b[2J \\u202e [bold red]x[/] \\x00" in outputs[-1].out


def test_class12_file_names_in_messages_are_escaped(tmp_path: Path) -> None:
    res = run_cli("scan", "--no-store", "--rule", str(tmp_path / "r\x1b]0;pwned\x07.toml"),
                  str(tmp_path))
    assert res.code == 2 and "\x1b" not in res.err and "\\x1b]0;pwned\\x07" in res.err


@pytest.mark.parametrize("command", ["scan", "run"])
def test_class12_file_names_in_input_problems_are_escaped(tmp_path: Path, command: str) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "x\x1b[2J\u202ey.ndjson").write_bytes(b"{broken\n")
    res = run_cli(command, "--once" if command == "run" else "--no-store", "--db",
                  str(tmp_path / "a.db"), str(folder))
    assert "x\\x1b[2J\\u202ey.ndjson:1" in res.err, res.err
    assert "\x1b" not in res.err and "\u202e" not in res.err


def test_class12_run_history_warnings_are_escaped(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    run_cli("run", "--once", "--db", db, str(tmp_path / "gone\x1b]0;pwned\x07.ndjson"))
    res = run_cli("runs", "--db", db)
    assert "gone\\x1b]0;pwned\\x07.ndjson" in res.out, res.out
    assert "\x1b" not in res.out and "\x07" not in res.out


def test_class12_rules_test_output_is_escaped(tmp_path: Path) -> None:
    builtin = Path(__file__).parents[2] / "src/credwatch/rules/builtin/credential_path_access.toml"
    rule = tmp_path / "rule.toml"
    rule.write_text(builtin.read_text() + """
[[credwatch.tests]]
name = "evil \\u001b]0;pwned\\u0007"
expect = true
event = { "process.name" = "cat", "process.args" = ["cat", "/tmp/x\\u001b[2J"] }
""")
    res = run_cli("rules", "test", "--verbose", str(rule))
    assert "FAIL  evil \\x1b]0;pwned\\x07" in res.out, res.out[-500:]
    assert "\x1b" not in res.out and "\x07" not in res.out


def test_class12_html_report_neutralises_markup_nul_and_bidi() -> None:
    ev = defend(["cat", "/root/.aws/credentials", "</pre><script>alert(1)</script>", *PAYLOADS],
                host="<img src=x onerror=alert(1)>\u202e")
    page = render_report(run_triage([ev]))
    assert "<script>alert" not in page and "<img src" not in page
    for raw in ("\x00", "\u202e", "\x1b"):
        assert raw not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "\\u202e" in page
