"""The built-in seed rule carries every fact of semantics §1, and its query is v1's."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import credwatch.kql as kql
from credwatch.engine.ruletests import run_rule_tests
from credwatch.kql.ast import And, Is, Or
from credwatch.kql.passes import walk
from credwatch.kql.printer import print_value
from credwatch.rules import DEFAULT_RULE_ID, builtin_rules, default_rule, load_rule

FIXTURES = Path(__file__).parent.parent / "fixtures"
# sha256 of v1's query with all whitespace runs collapsed to one space, recorded
# from the reference text when the rule was written.
V1_QUERY_SHA256 = "2f9c615f267545f689cbf2be295d9175f597ef18c8ff4bde6bc4ef52040f5df5"


def _norm(text: str) -> str:
    return " ".join(text.split())


def test_default_rule_is_the_seed() -> None:
    rule = default_rule()
    assert rule.rule_id == DEFAULT_RULE_ID == "5f0fff18-f340-444b-9a98-c49ade766ff4"
    assert load_rule() is rule or load_rule() == rule
    assert builtin_rules()[0] == rule


def test_query_is_v1_byte_for_byte_apart_from_whitespace() -> None:
    rule = default_rule()
    assert hashlib.sha256(_norm(rule.query).encode()).hexdigest() == V1_QUERY_SHA256
    # the KQL suite's own copy of v1 must agree with the shipped rule
    assert _norm(rule.query) == _norm((FIXTURES / "seed_v1.kql").read_text())


def test_identity_schedule_and_severity() -> None:
    r = default_rule()
    assert r.name == "Kubernetes and Cloud Credential Path Access via Process Arguments"
    assert (r.type, r.language, r.version) == ("query", "kuery", 1)
    assert r.index == ("auditbeat-*", "logs-auditd_manager.auditd-*",
                       "logs-endpoint.events.process*")
    assert r.timestamp_override == "event.ingested"
    assert (r.severity, r.risk_score) == ("high", 73)
    assert (r.interval, r.from_, r.to, r.max_signals) == ("5m", "now-9m", "now", 100)


def test_threat_mapping() -> None:
    (threat,) = default_rule().threat
    assert threat.framework == "MITRE ATT&CK"
    assert (threat.tactic.id, threat.tactic.name) == ("TA0006", "Credential Access")
    assert threat.tactic.reference == "https://attack.mitre.org/tactics/TA0006/"
    t1552, t1528 = threat.technique
    assert (t1552.id, t1552.name) == ("T1552", "Unsecured Credentials")
    assert t1552.reference == "https://attack.mitre.org/techniques/T1552/"
    (sub,) = t1552.subtechnique
    assert (sub.id, sub.name) == ("T1552.001", "Credentials In Files")
    assert sub.reference == "https://attack.mitre.org/techniques/T1552/001/"
    assert (t1528.id, t1528.name) == ("T1528", "Steal Application Access Token")
    assert t1528.reference == "https://attack.mitre.org/techniques/T1528/"


def test_tags_attribution_references_and_false_positives() -> None:
    r = default_rule()
    assert r.tags == (
        "Data Source: Auditd Manager", "Data Source: Elastic Defend", "Domain: Endpoint",
        "Domain: Kubernetes", "OS: Linux", "Use Case: Threat Detection",
        "Tactic: Credential Access", "Resources: Investigation Guide",
    )
    assert r.author == ("Elastic",)
    assert r.license == "Elastic License v2"
    assert r.references == ("https://attack.mitre.org/techniques/T1552/",
                            "https://kubernetes.io/docs/concepts/security/service-accounts/")
    (fp,) = r.false_positives
    for phrase in ("backup", "compliance scanners", "admin scripts", "/home",
                   "/var/run/secrets", "parent process", "image", "automation identity"):
        assert phrase in fp


def test_investigation_guide_and_setup() -> None:
    r = default_rule()
    assert r.note is not None and r.setup is not None
    for phrase in ("parent process chain", "CI job", "bootstrap script", "kubelet",
                   "full command line", "piping", "encoding", "exfiltration", "identity",
                   "jump hosts", "service-account tokens mounted", "Kubernetes audit",
                   "rotate the affected service-account tokens", "kubeconfigs",
                   "cloud keys", "RBAC", "secret-mount policy"):
        assert phrase in r.note, phrase
    for phrase in ("Elastic Defend", "Auditd Manager", "execve", "process.args",
                   "process.executable"):
        assert phrase in r.setup, phrase


def test_file_keeps_attribution_and_licence_header() -> None:
    text = (resources.files("credwatch.rules") / "builtin" /
            "credential_path_access.toml").read_text(encoding="utf-8")
    header = text.split("[metadata]")[0]
    assert "Elastic" in header and "Elastic License 2.0" in header
    assert "elastic/detection-rules" in header


def test_embedded_tests_cover_every_path_and_tool_clause() -> None:
    r = default_rule()
    report = run_rule_tests(r)
    assert report.failed == 0
    # every value of the credential-path list and of the three tool clauses fires in some test
    fired = {c for res in report.results if res.test.expect for c in res.key_clauses}

    ast = kql.parse(r.query)
    assert isinstance(ast, And)
    wanted = set()
    for node in walk(ast):
        if isinstance(node, Is) and node.field is not None and node.field.text in (
                "process.args", "process.name", "process.executable"):
            wanted.add(f"{node.field.text}:{print_value(node.value)}")
    assert isinstance(ast.children[-1], Or)
    assert len(wanted) == 27 + 45 + 19 + 5
    assert wanted - fired == set()
    negatives = [t for t in r.tests.tests if not t.expect]
    names = " ".join(t.name for t in negatives)
    for near_miss in ("id_rsa.pub", "/root/.aws/config", 'sh -c "cat /etc/shadow"', "uppercase",
                      "host.os.type missing", "event.action"):
        assert near_miss in names, near_miss
