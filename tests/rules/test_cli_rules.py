"""`credwatch rules list|show|lint|test` through the real CLI entry points."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from credwatch.cli.env import Env
from credwatch.cli.main import program
from credwatch.rules import default_rule
from credwatch.rules.ndjson_format import rule_from_export_object

FIXTURES = Path(__file__).parent.parent / "fixtures" / "rules"
SEED_ID = "5f0fff18-f340-444b-9a98-c49ade766ff4"
CREDWATCH = Path(sys.executable).parent / "credwatch"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = program(list(argv), Env(stdout=out, stderr=err, stdout_isatty=False,
                                   stderr_isatty=False))
    return code, out.getvalue(), err.getvalue()


def seed_text() -> str:
    source = default_rule().source
    assert source is not None
    return Path(source).read_text(encoding="utf-8")


def test_show_json_prints_the_whole_rule() -> None:
    code, out, _ = run("rules", "show", SEED_ID, "--format", "json")
    assert code == 0
    obj = json.loads(out)
    for key in ("rule_id", "name", "description", "query", "index", "interval", "from",
                "max_signals", "timestamp_override", "severity", "risk_score", "threat", "tags",
                "author", "license", "references", "false_positives", "note", "setup", "version"):
        assert key in obj, key
    assert obj["from"] == "now-9m" and obj["risk_score"] == 73
    assert len(obj["meta"]["credwatch"]["tests"]) == len(default_rule().tests.tests)
    # the JSON is the rule itself: reading it back gives the same rule
    assert rule_from_export_object(obj) == default_rule()


def test_show_text_toml_and_ndjson() -> None:
    code, out, _ = run("rules", "show", "Kubernetes and Cloud Credential Path Access via "
                       "Process Arguments")
    assert code == 0
    for text in ("rule_id", SEED_ID, "every 5m, window now-9m..now (look-back 4m)",
                 "TA0006 Credential Access", "T1552.001", "investigation guide", "setup",
                 '"/etc/shadow" or'):
        assert text in out, text
    code, out, _ = run("rules", "show", SEED_ID, "--format", "toml")
    assert code == 0 and "[[rule.threat.technique.subtechnique]]" in out
    code, out, _ = run("rules", "show", SEED_ID, "--format", "ndjson")
    assert code == 0 and json.loads(out.splitlines()[-1])["exported_count"] == 1


def test_list_includes_builtin_and_reports_skips(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    code, out, err = run("rules", "list", str(tmp_path), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["rules"][0]["rule_id"] == SEED_ID and data["rules"][0]["builtin"] is True
    assert data["rules"][0]["tests"] == len(default_rule().tests.tests)
    assert "notes.txt" in err and "not a rule file" in err
    code, out, _ = run("rules", "list")
    assert code == 0 and "built-in" in out and "Kubernetes and Cloud" in out


def test_rules_test_passes_on_the_builtin_rule() -> None:
    code, out, _ = run("rules", "test")
    n = len(default_rule().tests.tests)
    assert code == 0, out
    assert f"{n} passed, 0 failed" in out and "FAIL" not in out
    assert "fired: host.os.type:linux" in out and 'process.args:"/etc/shadow"' in out


def test_rules_test_fails_clearly_on_a_broken_copy(tmp_path: Path) -> None:
    broken = seed_text().replace('"/etc/kubernetes/admin.conf" or', '"/etc/kubernetes/admin.cnf" or')
    assert broken != seed_text()
    path = tmp_path / "broken.toml"
    path.write_text(broken)
    code, out, _ = run("rules", "test", str(path))
    assert code == 2
    assert "FAIL  path \"/etc/kubernetes/admin.conf\" read by" in out
    assert "expected a match, but the rule did not match" in out
    assert "PASS" in out
    # admin.conf is the path of the path test and of the extra process.name tool tests
    expected_failures = sum(1 for t in default_rule().tests.tests
                            if t.expect and "/etc/kubernetes/admin.conf" in
                            default_rule().tests.event_for(t).get("process.args", []))
    assert expected_failures > 1
    assert out.count("  FAIL  ") == expected_failures
    assert f", {expected_failures} failed" in out


def test_rules_test_fails_when_the_named_clause_does_not_fire(tmp_path: Path) -> None:
    text = seed_text().replace('clause = "process.name:python*"', 'clause = "process.name:toybox"')
    path = tmp_path / "clause.toml"
    path.write_text(text)
    code, out, _ = run("rules", "test", str(path), "--format", "json")
    assert code == 2
    (report,) = json.loads(out)
    (bad,) = [t for t in report["tests"] if not t["passed"]]
    assert bad["matched"] is True and "clause process.name:toybox did not fire" in bad["problem"]


def test_lint_flags_the_v2_merged_pattern() -> None:
    code, out, _ = run("rules", "lint", str(FIXTURES / "v2_merged_pattern.toml"))
    assert code == 2
    text = (FIXTURES / "v2_merged_pattern.toml").read_text().splitlines()
    lineno = next(i for i, ln in enumerate(text, 1) if ln.strip() == "*confluence/conf/server.xml")
    assert f"v2_merged_pattern.toml:{lineno}:3: error[KQL001]" in out
    assert "1 error(s)" in out


def test_lint_builtin_is_clean_and_hints_do_not_fail(tmp_path: Path) -> None:
    code, out, _ = run("rules", "lint")
    assert code == 0 and out.strip().endswith("0 error(s), 0 warning(s)/hint(s)")
    hinty = seed_text().replace("risk_score = 73", "risk_score = 70").replace(
        'id = "T1528"', 'id = "T-1528"')
    path = tmp_path / "hints.toml"
    path.write_text(hinty)
    code, out, _ = run("rules", "lint", str(path))
    assert code == 0
    assert "hint[RULE024]" in out and "warning[RULE031]" in out and "0 error(s)" in out


@pytest.mark.parametrize(("old", "new", "code"), [
    ('from = "now-9m"', 'from = "now-3m"', "warning[RULE013]"),
    ('interval = "5m"', 'interval = "5 min"', "error[RULE010]"),
    ('from = "now-9m"', 'from = "now+9m"', "error[RULE012]"),
    ("risk_score = 73", "risk_score = 173", "error[LOAD]"),
    ('severity = "high"', 'severity = "severe"', "error[LOAD]"),
    ('type = "query"', 'type = "eql"', "error[RULE001]"),
])
def test_lint_metadata_checks(tmp_path: Path, old: str, new: str, code: str) -> None:
    path = tmp_path / "r.toml"
    path.write_text(seed_text().replace(old, new, 1))
    status, out, _ = run("rules", "lint", str(path))
    assert code in out
    assert status == (2 if code.startswith("error") else 0)


def test_unsupported_type_names_type_and_file(tmp_path: Path) -> None:
    path = tmp_path / "eql_rule.toml"
    path.write_text(seed_text().replace('type = "query"', 'type = "eql"'))
    code, out, err = run("rules", "show", str(path))
    assert code == 2 and out == ""
    assert "unsupported rule type 'eql'" in err and str(path) in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["rules"], ["rules", "list"], ["rules", "show"],
                                  ["rules", "lint"], ["rules", "test"]])
def test_help_for_each_subcommand(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert program([*argv, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: credwatch rules") and "example" in out


def test_real_console_script() -> None:
    proc = subprocess.run([str(CREDWATCH), "rules", "show", SEED_ID, "--format", "json"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rule_id"] == SEED_ID
    proc = subprocess.run([str(CREDWATCH), "rules", "test", "--help"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0 and "true-positive" in proc.stdout


def test_lint_json_output() -> None:
    code, out, _ = run("rules", "lint", str(FIXTURES / "v2_merged_pattern.toml"), "--format",
                       "json")
    assert code == 2
    findings = json.loads(out)
    (err,) = [f for f in findings if f["severity"] == "error"]
    assert err["code"] == "KQL001" and err["column"] == 3
    assert err["rule"] == "Credential Path Access (v2 merged-pattern reproduction)"
