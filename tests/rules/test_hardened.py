"""The built-in hardened rule: identity, embedded tests, prefilter soundness, alerts, SQL engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from credwatch.backends.prefilter import (
    AUDIT_VERBATIM_FIELDS,
    QUOTE_ROUTES,
    Prefilter,
    derive_literals,
)
from credwatch.backends.python import compile_query
from credwatch.engine.ruletests import run_rule_tests
from credwatch.kql.ast import Is, Not
from credwatch.kql.parser import parse
from credwatch.kql.passes import walk
from credwatch.normalize.paths import FIELD, METADATA_TOOLS, READ_FIELD, add_derived_fields
from credwatch.rules import DEFAULT_RULE_ID, builtin_rules, default_rule, load_rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import read_records
from tests.cli.helpers import run_cli

HARDENED = "credwatch-credential-path-hardened"
CORPUS_LOG = Path(__file__).resolve().parents[1] / "fixtures" / "quality" / "host_execs.log"
SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def test_built_in_beside_the_faithful_rule() -> None:
    ids = [r.rule_id for r in builtin_rules()]
    assert ids[0] == DEFAULT_RULE_ID == default_rule().rule_id and HARDENED in ids
    rule = load_rule(HARDENED)
    assert rule.name != default_rule().name and "hardened" in rule.name
    assert rule.note is not None
    assert rule.description.strip() and "Possible investigation steps" in rule.note
    techniques = {t.id for threat in rule.threat for t in threat.technique}
    subs = {s.id for threat in rule.threat for t in threat.technique for s in t.subtechnique}
    assert techniques == {"T1552", "T1528"} and subs == {"T1552.001"}
    assert {threat.tactic.id for threat in rule.threat} == {"TA0006"}


def test_embedded_tests_pass_and_cover_every_kind() -> None:
    rule = load_rule(HARDENED)
    report = run_rule_tests(rule)
    assert report.failed == 0, [r.problem for r in report.results if not r.passed]
    assert report.passed >= 30
    assert sum(1 for t in rule.tests.tests if not t.expect) >= 8


def test_query_uses_only_the_derived_field_and_process_fields() -> None:
    fields = {n.field.text for n in walk(parse(load_rule(HARDENED).query))
              if isinstance(n, Is) and n.field is not None}
    assert READ_FIELD in fields
    assert fields <= {READ_FIELD, "host.os.type", "event.category", "event.action", "process.name",
                      "process.executable", "process.args"}


def test_metadata_tools_in_the_query_are_the_normalizer_list() -> None:
    """The KQL exclusion and the shell-code exclusion in normalize/paths name the same tools."""
    ast = parse(load_rule(HARDENED).query)
    names: set[str] = set()
    for node in walk(ast):
        if isinstance(node, Not):
            names |= {n.value.text for n in walk(node.child)
                      if isinstance(n, Is) and n.field is not None and n.field.text == "process.name"}
    assert names == METADATA_TOOLS


def test_prefilter_literals_of_derived_fields() -> None:
    # The raw line holds `cd /root/.aws && cat cred''entials`, never the canonical path: a
    # derived comparison gives one piece of its path plus "'" (lines with shell quotes).
    assert derive_literals(f'{READ_FIELD}:"/root/.aws/credentials"') == frozenset({"credentials"} | QUOTE_ROUTES)
    assert derive_literals(f"{FIELD}:*/.kube/config") == frozenset({"config"} | QUOTE_ROUTES)  # longest piece
    assert derive_literals(f"{FIELD}:/root/*") is None  # "root" may come from home expansion
    assert derive_literals(f"{FIELD}:*") is None
    query = load_rule(HARDENED).query
    assert derive_literals(query, fields=AUDIT_VERBATIM_FIELDS) is None  # audit: hex, no quotes seen
    literals = derive_literals(query)
    assert literals is not None and "'" in literals and "process" not in literals
    assert {"shadow", "credentials", "secrets"} <= literals


def test_prefiltered_scan_still_finds_respelled_paths(tmp_path: Path) -> None:
    event = {"@timestamp": "2026-12-04T10:00:00Z", "host": {"os": {"type": "linux"}},
             "event": {"category": ["process"], "action": "exec"},
             "process": {"name": "bash", "executable": "/usr/bin/bash", "working_directory": "/",
                         "args": ["bash", "-c", "cd /root/.aws && cat cred''entials"]}}
    other = {**event, "process": {"name": "ls", "executable": "/usr/bin/ls", "args": ["ls", "/"]}}
    path = tmp_path / "e.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in [other] * 50 + [event] + [other] * 50))
    pre = Prefilter.for_query(load_rule(HARDENED).query)
    assert pre.may_match(json.dumps(event).encode())
    assert not pre.may_match(json.dumps(other).encode())
    res = run_cli("scan", str(path), "--rule", HARDENED, "--prefilter", "always", "--no-store",
                  "--format", "ndjson")
    assert res.code == 0, res.err
    (alert,) = res.alerts()
    assert alert[READ_FIELD] == ["/root/.aws/credentials"]


def test_alert_explains_the_original_argument_and_its_normalised_form() -> None:
    res = run_cli("scan", str(CORPUS_LOG), "--rule", HARDENED, "--no-store", "--format", "ndjson")
    assert res.code == 0, res.err
    wanted = f"\"sh -c 'cat ../token'\" → {SA}/token"
    hits = [a for a in res.alerts() if any(wanted in line for line in a["credwatch.explanation"])]
    assert hits, "the issue's example is explained with its original argument"
    alert = hits[0]
    assert f"{SA}/token" in alert[FIELD] and f"{SA}/token" in alert[READ_FIELD]
    assert alert["process"]["args"] == ["sh", "-c", "cat ../token"]
    derived = [e for e in alert["credwatch.explain"] if e["field"] == READ_FIELD]
    assert derived and derived[0]["argument"] == "sh -c 'cat ../token'"


def test_faithful_alerts_carry_no_derived_field() -> None:
    res = run_cli("scan", str(CORPUS_LOG), "--no-store", "--format", "ndjson")
    assert res.code == 0 and res.alerts()
    assert all(FIELD not in a and READ_FIELD not in a for a in res.alerts())


def _corpus_events() -> list[dict[str, Any]]:
    """The corpus as ECS events that already carry the derived fields (as a converter writes them)."""
    diag = Diagnostics()
    events = [add_derived_fields(dict(r.event)) for r in read_records([str(CORPUS_LOG)], diag)]
    for e in events:
        e.pop("event.original", None)
        if isinstance(e.get("event"), dict):
            e["event"] = {k: v for k, v in e["event"].items() if k != "original"}
    return events


def test_duckdb_gives_the_python_verdicts(tmp_path: Path) -> None:
    from credwatch.backends.duckdb import connect, duckdb_scan

    events = _corpus_events()
    path = tmp_path / "derived.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    query = load_rule(HARDENED).query
    matcher = compile_query(query)
    expected = [i for i, e in enumerate(events) if matcher.matches(e)]
    assert len(expected) > 100
    assert duckdb_scan(path, query, con=connect()) == expected


def test_spark_gives_the_python_verdicts(tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    from credwatch.backends.spark import local_session, read_ndjson, spark_filter

    events = _corpus_events()
    for i, e in enumerate(events):
        e["row"] = i
    path = tmp_path / "derived.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    query = load_rule(HARDENED).query
    matcher = compile_query(query)
    expected = [i for i, e in enumerate(events) if matcher.matches(e)]
    df = read_ndjson(local_session("credwatch-tests"), path)
    got = sorted(int(r["row"]) for r in spark_filter(df, query).select("row").collect())
    assert got == expected


def test_scheduled_run_alerts_carry_the_derived_fields(tmp_path: Path) -> None:
    """`credwatch run` (engine/execute.py) derives and explains like scan."""
    import re
    from datetime import UTC, datetime, timedelta

    first = re.search(r"msg=audit\((\d+)\.", CORPUS_LOG.read_text().splitlines()[0])
    assert first is not None
    now = datetime.fromtimestamp(int(first.group(1)), UTC) + timedelta(minutes=1)
    res = run_cli("run", "--once", "--now", now.strftime("%Y-%m-%dT%H:%M:%SZ"), str(CORPUS_LOG),
                  "--rule", HARDENED, "--db", str(tmp_path / "s.db"), "--format", "ndjson", "--quiet")
    assert res.code == 0, res.err
    alerts = res.alerts()
    assert alerts and all(a[READ_FIELD] for a in alerts)
    assert any("→" in line for a in alerts for line in a["credwatch.explanation"])


_TRICKY = [
    ["bash", "-c", "cd /root/.aws && cat cred''entials"],
    ["bash", "-c", 'cat /etc/sha"do"w'],
    ["bash", "-c", "cat /etc/sha\\dow"],
    ["sh", "-c", "cat ../token"],
    ["cat", "/proc/self/cwd/config"],
    ["python3", "-c", "open('/root/.ssh/id_' + 'rsa')"],
    ["cat", "/run/secrets/kubernetes.io/serviceaccount/..data/token"],
    ["tac", "/étc/shadow"],
    ["cat", "credentials"],
]


def test_prefiltered_and_full_scans_agree(tmp_path: Path) -> None:
    """Differential: with the derived-field literals, --prefilter always finds what never finds."""
    base: dict[str, dict[str, Any]] = {"host": {"os": {"type": "linux"}}, "event": {"category": ["process"], "action": "exec"},
            "user": {"name": "root"}}
    lines = []
    for i, args in enumerate(_TRICKY * 3):
        cwd = ["/root/.aws", f"{SA}/..data", "/root/.kube", "/"][i % 4]
        event = {**base, "@timestamp": f"2026-12-04T10:00:{i % 60:02d}Z", "event": {**base["event"], "id": f"t{i}"},
                 "process": {"name": args[0], "executable": f"/usr/bin/{args[0]}", "pid": 7,
                             "working_directory": cwd, "args": args}}
        line = json.dumps(event, ensure_ascii=i % 2 == 0)
        # A writer may spell a double quote or backslash as \u0022 / \u005c.
        lines.append(line.replace('\\"', "\\u0022").replace("\\\\", "\\u005c") if i % 3 == 0 else line)
    path = tmp_path / "mixed.ndjson"
    path.write_text("\n".join(lines) + "\n")
    ids = {}
    for mode in ("always", "never"):
        res = run_cli("scan", str(path), "--rule", HARDENED, "--prefilter", mode, "--no-store",
                      "--format", "ndjson", "--quiet")
        assert res.code in (0, 1), res.err
        ids[mode] = sorted(a["kibana.alert.uuid"] for a in res.alerts())
    assert ids["always"] == ids["never"] and len(ids["never"]) >= 15
