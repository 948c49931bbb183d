"""The alert document: a golden file for a known event, and the rules of its shape."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credwatch.alerts import EventOrigin, build_alert, event_identity, kibana_alert_id
from credwatch.alerts.build import apply_risk_score_mapping, apply_severity_mapping
from credwatch.backends.python import compile_query
from credwatch.rules import default_rule
from credwatch.rules.model import RiskScoreMapping, Rule, SeverityMapping

FIXTURES = Path(__file__).parent.parent / "fixtures" / "alerts"
NOW = datetime(2026, 11, 20, 10, 5, 0, 456789, tzinfo=UTC)


def _seed_alert(hit: dict[str, Any]) -> dict[str, Any]:
    rule = default_rule()
    source = hit["_source"]
    hits = compile_query(rule.query).explain(source)
    ident = event_identity(source, index=hit["_index"], doc_id=hit["_id"],
                           version=hit.get("_version"))
    return build_alert(source, rule, now=NOW, identity=ident, hits=hits,
                       origin=EventOrigin(path="defend.ndjson", line=1))


def test_golden_alert_document() -> None:
    hit = json.loads((FIXTURES / "defend_exec_hit.json").read_text())
    alert = _seed_alert(hit)
    golden_path = FIXTURES / "defend_exec_hit.alert.json"
    if os.environ.get("CREDWATCH_UPDATE_GOLDEN"):
        golden_path.write_text(json.dumps(alert, indent=2, ensure_ascii=False) + "\n")
    golden = json.loads(golden_path.read_text())
    assert alert == golden
    # the facts the golden file pins, spelled out
    assert alert["kibana.alert.uuid"] == kibana_alert_id(
        hit["_index"], hit["_id"], None, "5f0fff18-f340-444b-9a98-c49ade766ff4", "default")
    assert alert["@timestamp"] == "2026-11-20T10:05:00.456Z"
    assert alert["kibana.alert.original_time"] == "2026-11-20T10:00:00.123Z"
    assert alert["kibana.alert.reason"] == (
        "process event with process cat, parent process bash, by root on node-1 created high "
        "alert Kubernetes and Cloud Credential Path Access via Process Arguments.")
    assert alert["kibana.alert.ancestors"] == [
        {"id": hit["_id"], "type": "event", "index": hit["_index"], "depth": 0}]
    assert "credwatch.explanation" in alert and \
        'process.args[1] "/root/.aws/credentials" matched process.args:*/.aws/credentials' \
        in alert["credwatch.explanation"]


def test_event_namespace_copied_and_kind_replaced() -> None:
    rule = default_rule()
    nested: dict[str, Any] = {"@timestamp": "2026-11-20T10:00:00Z",
                              "event": {"kind": "event", "action": "exec", "category": ["process"]}}
    flat: dict[str, Any] = {"@timestamp": "2026-11-20T10:00:00Z", "event.kind": "event",
                            "event.action": "exec", "event.category": ["process"]}
    for event in (nested, flat):
        alert = build_alert(event, rule, now=NOW)
        assert alert["event.kind"] == "signal"
        assert alert["kibana.alert.original_event.kind"] == "event"
        assert alert["kibana.alert.original_event.action"] == "exec"
        assert alert["kibana.alert.original_event.category"] == ["process"]
        assert "kind" not in alert.get("event", {})
    assert build_alert(nested, rule, now=NOW)["event"] == {"action": "exec",
                                                           "category": ["process"]}
    assert build_alert(flat, rule, now=NOW)["event.action"] == "exec"
    # the caller's event is not modified
    assert nested["event"]["kind"] == "event" and flat["event.kind"] == "event"


def test_reserved_namespaces_are_dropped_and_time_kept() -> None:
    event = {"kibana": {"alert": {"uuid": "old"}}, "signal.rule.id": "x", "credwatch": {"a": 1},
             "threshold_result": {}, "@timestamp": 1795168800000, "message": "m"}
    alert = build_alert(event, default_rule(), now=NOW)
    assert "kibana" not in alert and "signal.rule.id" not in alert and "credwatch" not in alert
    assert alert["message"] == "m"
    assert alert["kibana.alert.original_time"] == "2026-11-20T10:00:00.000Z"
    assert "kibana.alert.original_time" not in build_alert({"x": 1}, default_rule(), now=NOW)


def test_derived_identity_is_stable_across_shapes() -> None:
    rule = default_rule()
    nested = {"process": {"name": "cat", "args": ["cat", "/etc/shadow"]}, "host": {"name": "h"}}
    flat = {"process.name": "cat", "process.args": ["cat", "/etc/shadow"], "host.name": "h"}
    a, b = build_alert(nested, rule, now=NOW), build_alert(flat, rule, now=NOW)
    assert a["kibana.alert.uuid"] == b["kibana.alert.uuid"]
    assert a["credwatch.source.id_derived"] is True
    assert a["kibana.alert.ancestors"][0]["id"] == a["credwatch.source.id"]


def test_rule_uuid_is_saved_object_id_when_known() -> None:
    from dataclasses import replace

    rule = replace(default_rule(), id="0b7e3f52-1111-4222-8333-444455556666")
    alert = build_alert({"a": 1}, rule, now=NOW)
    assert alert["kibana.alert.rule.uuid"] == rule.id
    assert alert["kibana.alert.rule.rule_id"] == rule.rule_id
    ident = event_identity({"a": 1})
    assert alert["kibana.alert.uuid"] == ident.alert_id(rule.id or "")


def _with_mappings(**kw: Any) -> Rule:
    from dataclasses import replace

    return replace(default_rule(), **kw)


def test_severity_mapping_highest_match_wins() -> None:
    rule = _with_mappings(severity_mapping=(
        SeverityMapping(field="user.name", value="root", severity="critical"),
        SeverityMapping(field="host.name", value="node-1", severity="medium"),
        SeverityMapping(field="event.severity", value="3", severity="low"),
    ))
    assert apply_severity_mapping(rule, {"host": {"name": "node-1"}}) == "medium"
    assert apply_severity_mapping(rule, {"host.name": "node-1", "user.name": ["x", "root"]}) \
        == "critical"
    assert apply_severity_mapping(rule, {"event": {"severity": 3}}) == "low"
    assert apply_severity_mapping(rule, {"event": {"severity": "3"}}) == "high"  # not a long
    assert apply_severity_mapping(rule, {}) == "high"
    alert = build_alert({"user": {"name": "root"}}, rule, now=NOW)
    assert alert["kibana.alert.severity"] == "critical"
    assert alert["kibana.alert.rule.severity"] == "high"
    assert "created critical alert" in alert["kibana.alert.reason"]


def test_risk_score_mapping_takes_largest_valid_value() -> None:
    rule = _with_mappings(risk_score_mapping=(RiskScoreMapping(field="event.risk_score"),))
    assert apply_risk_score_mapping(rule, {"event": {"risk_score": [12, "90", 150, -1]}}) == 90
    assert apply_risk_score_mapping(rule, {"event": {"risk_score": "abc"}}) == 73
    assert apply_risk_score_mapping(rule, {"event": {"risk_score": 55.5}}) == 55.5
    assert apply_risk_score_mapping(rule, {}) == 73
    alert = build_alert({"event.risk_score": 99}, rule, now=NOW)
    assert alert["kibana.alert.risk_score"] == 99 and alert["kibana.alert.rule.risk_score"] == 73


def test_explain_accepts_mappings_and_objects() -> None:
    class H:
        clause, field, value, index, pattern = "process.name:cat", "process.name", "cat", None, "cat"

    alert = build_alert({"a": 1}, default_rule(), now=NOW,
                        hits=[H(), {"clause": "process.args:\"/etc/shadow\"",
                                    "field": "process.args", "value": "/etc/shadow", "index": 1,
                                    "pattern": "\"/etc/shadow\""}])
    assert alert["credwatch.explain"][0] == {"clause": "process.name:cat", "field": "process.name",
                                             "value": "cat", "index": None, "pattern": "cat"}
    assert alert["credwatch.explanation"] == [
        'process.name "cat" matched process.name:cat',
        'process.args[1] "/etc/shadow" matched process.args:"/etc/shadow"']
