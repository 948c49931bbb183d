"""detection-rules TOML and Kibana export NDJSON: reading, writing, round-trips."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from credwatch.errors import RuleLoadError
from credwatch.rules import default_rule
from credwatch.rules.model import (
    AlertSuppression,
    ExceptionListRef,
    RiskScoreMapping,
    Rule,
    RuleMetadata,
    RuleTest,
    RuleTestSuite,
    SeverityMapping,
    SuppressionDuration,
    Threat,
    ThreatEntity,
    ThreatTechnique,
)
from credwatch.rules.ndjson_format import dumps_ndjson, loads_ndjson
from credwatch.rules.toml_format import dumps_toml, loads_toml


def everything_rule() -> Rule:
    """A rule with every optional field set to a non-default value."""
    return Rule(
        id="8f1c0d2e-0000-4000-8000-000000000001",
        rule_id="11111111-2222-4333-8444-555555555555",
        name="Everything",
        description="all fields",
        query='process.name:cat and process.args:"/etc/shadow"',
        severity="medium",
        risk_score=47,
        version=7,
        index=("logs-*",),
        interval="10m",
        from_="now-20m",
        to="now-1m",
        max_signals=5,
        timestamp_override="event.ingested",
        timestamp_override_fallback_disabled=True,
        author=("Me", "You"),
        license="Apache-2.0",
        tags=("a", "b"),
        references=("https://example.com/x",),
        false_positives=("fp one", "fp two"),
        note="# guide\n\n- step\n",
        setup="## setup\n",
        threat=(Threat(tactic=ThreatEntity(id="TA0006", name="Credential Access",
                                           reference="https://attack.mitre.org/tactics/TA0006/"),
                       technique=(ThreatTechnique(
                           id="T1552", name="Unsecured Credentials",
                           reference="https://attack.mitre.org/techniques/T1552/",
                           subtechnique=(ThreatEntity(
                               id="T1552.001", name="Credentials In Files",
                               reference="https://attack.mitre.org/techniques/T1552/001/"),)),)),),
        severity_mapping=(SeverityMapping(field="event.severity", value="3", severity="critical"),
                          SeverityMapping(field="user.name", value="root", severity="high")),
        risk_score_mapping=(RiskScoreMapping(field="event.risk_score"),),
        exceptions_list=(ExceptionListRef(id="e1", list_id="ci-jobs"),
                         ExceptionListRef(id="endpoint_list", list_id="endpoint_list",
                                          type="endpoint", namespace_type="agnostic")),
        alert_suppression=AlertSuppression(group_by=("host.name", "user.name"),
                                           duration=SuppressionDuration(value=1, unit="h"),
                                           missing_fields_strategy="doNotSuppress"),
        enabled=False,
        meta={"from": "1m", "kibana_siem_app_url": "http://kibana/app/security"},
        metadata=RuleMetadata(creation_date="2026/01/02", updated_date="2026/02/03",
                              maturity="development", integration=("endpoint",),
                              min_stack_version="8.14.0", min_stack_comments="why",
                              extra={"query_schema_validation": False}),
        tests=RuleTestSuite(
            defaults={"host.os.type": "linux", "process.name": "cat"},
            tests=(RuleTest(name="tp", expect=True, event={"process.args": ["cat", "/etc/shadow"]},
                            clause="process.name:cat", description="d"),
                   RuleTest(name="tn", expect=False, event={"process": {"args": ["x"]}},
                            unset=("process.name",)))),
        extra={"immutable": True, "related_integrations": [{"package": "endpoint",
                                                            "version": "^8.2.0"}],
               "required_fields": [{"name": "process.args", "type": "keyword", "ecs": True}],
               "actions": [], "building_block_type": "default",
               "created_at": "2026-01-02T00:00:00.000Z"},
        other_sections={"transform": {"osquery": [{"label": "x", "query": "SELECT 1"}]}},
    )


@pytest.mark.parametrize("rule", [default_rule(), everything_rule()], ids=["seed", "everything"])
def test_toml_round_trip(rule: Rule) -> None:
    text = dumps_toml(rule, header="generated")
    assert text.startswith("# generated\n")
    again = loads_toml(text, "x.toml")
    assert again == rule
    assert dumps_toml(again, header="generated") == text


@pytest.mark.parametrize("rule", [default_rule(), everything_rule()], ids=["seed", "everything"])
def test_ndjson_round_trip(rule: Rule) -> None:
    text = dumps_ndjson([rule, replace(rule, rule_id="other")])
    lines = text.splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["exported_count"] == 2
    first, second = loads_ndjson(text, "export.ndjson")
    assert first == rule and second == replace(rule, rule_id="other")
    assert first.source == "export.ndjson:1" and second.source == "export.ndjson:2"


def test_toml_layout_follows_detection_rules() -> None:
    text = dumps_toml(everything_rule())
    for table in ("[metadata]", "[rule]", "[[rule.threat]]", "[rule.threat.tactic]",
                  "[[rule.threat.technique]]", "[[rule.threat.technique.subtechnique]]",
                  "[[credwatch.tests]]"):
        assert table in text, table
    assert text.index("[metadata]") < text.index("[rule]")


def test_kibana_export_with_summary_and_exception_lines() -> None:
    rule_line = {
        "id": "d8d1a4c0-9e1c-11ee-8f36-9b1e2d8b3c11", "rule_id": "r-1", "name": "From Kibana",
        "description": "exported", "type": "query", "language": "kuery", "query": "host.name:x",
        "index": ["logs-*"], "risk_score": 21, "severity": "low", "interval": "1m",
        "from": "now-2m", "to": "now", "max_signals": 100, "enabled": True, "version": 3,
        "revision": 2, "immutable": False, "rule_source": {"type": "internal"},
        "created_at": "2026-11-01T10:00:00.000Z", "created_by": "elastic",
        "updated_at": "2026-11-02T10:00:00.000Z", "updated_by": "elastic",
        "actions": [], "throttle": "no_actions", "output_index": "", "setup": "",
        "related_integrations": [], "required_fields": [], "author": [], "false_positives": [],
        "references": [], "tags": [], "threat": [], "exceptions_list": [],
        "severity_mapping": [], "risk_score_mapping": [],
    }
    text = "\n".join([
        json.dumps(rule_line),
        json.dumps({"list_id": "ci", "type": "detection", "namespace_type": "single"}),
        "",
        json.dumps({"exported_count": 1, "exported_rules_count": 1, "missing_rules": [],
                    "missing_rules_count": 0}),
    ]) + "\n"
    (rule,) = loads_ndjson(text, "export.ndjson")
    assert rule.name == "From Kibana" and rule.uuid == rule_line["id"]
    assert rule.extra["created_by"] == "elastic" and rule.extra["revision"] == 2
    assert (rule.interval, rule.from_, rule.version) == ("1m", "now-2m", 3)
    (back,) = loads_ndjson(dumps_ndjson([rule]), "again.ndjson")
    assert back == rule


def test_kibana_defaults_when_absent() -> None:
    rule = loads_toml('[rule]\nrule_id = "r"\nname = "n"\ndescription = "d"\ntype = "query"\n'
                      'query = "host.name:x"\nseverity = "low"\nrisk_score = 21\n', "min.toml")
    assert (rule.interval, rule.from_, rule.to, rule.max_signals) == ("5m", "now-6m", "now", 100)
    assert (rule.language, rule.version, rule.enabled) == ("kuery", 1, True)
    assert rule.uuid == "r"  # no saved-object id: the rule_id stands in


BASE = {"rule_id": "r", "name": "n", "description": "d", "type": "query",
        "query": "host.name:x", "severity": "low", "risk_score": 21}


def _toml(**changes: object) -> str:
    import tomli_w

    rule = {**BASE, **changes}
    return tomli_w.dumps({"rule": {k: v for k, v in rule.items() if v is not None}})


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"severity": "urgent"}, "rule.severity", "invalid severity"),
    ({"risk_score": 101}, "rule.risk_score", "out of range"),
    ({"risk_score": "73"}, "rule.risk_score", "expected an integer"),
    ({"max_signals": 0}, "rule.max_signals", "at least 1"),
    ({"rule_id": None}, "rule.rule_id", "required"),
    ({"tags": ["ok", 3]}, "rule.tags[1]", "expected a string"),
    ({"threat": [{"framework": "MITRE ATT&CK", "tactic": {"name": "x", "reference": "y"}}]},
     "rule.threat[0].tactic.id", "required"),
    ({"alert_suppression": {"group_by": ["a", "b", "c", "d"]}}, "rule.alert_suppression.group_by",
     "1 to 3"),
])
def test_validation_errors_name_file_and_field(changes: dict[str, object], field: str,
                                               words: str) -> None:
    with pytest.raises(RuleLoadError) as info:
        loads_toml(_toml(**changes), "bad.toml")
    assert info.value.field == field and info.value.path == "bad.toml"
    assert words in str(info.value) and "bad.toml [" + field + "]" in str(info.value)


def test_invalid_toml_and_missing_rule_table() -> None:
    with pytest.raises(RuleLoadError, match=r"broken.toml: not valid TOML"):
        loads_toml("[rule\n", "broken.toml")
    with pytest.raises(RuleLoadError, match=r"no \[rule\] table"):
        loads_toml("[metadata]\nmaturity = 'x'\n", "meta-only.toml")


def test_ndjson_bad_line_names_the_line() -> None:
    with pytest.raises(RuleLoadError, match=r"x.ndjson: line 2 is not valid JSON"):
        loads_ndjson(json.dumps(BASE) + "\n{nope\n", "x.ndjson")
