"""Conversion between Kibana's rule API objects (plain dicts) and :class:`Rule`.

Both file formats hold the same snake_case API object: detection-rules TOML
in its ``[rule]`` table, a Kibana export one per NDJSON line. This module turns
that object into a validated :class:`Rule` and back. Every validation error is
a :class:`RuleLoadError` naming the file and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from credwatch.errors import RuleLoadError
from credwatch.rules import defaults
from credwatch.rules.model import (
    SEVERITIES,
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

T = TypeVar("T")

#: API fields the model holds explicitly; everything else goes to ``Rule.extra``.
MODEL_FIELDS: tuple[str, ...] = (
    "id", "rule_id", "name", "description", "type", "language", "query", "index",
    "interval", "from", "to", "max_signals", "timestamp_override",
    "timestamp_override_fallback_disabled", "severity", "severity_mapping", "risk_score",
    "risk_score_mapping", "version", "author", "license", "tags", "references",
    "false_positives", "note", "setup", "threat", "exceptions_list", "alert_suppression",
    "enabled", "meta",
)  # fmt: skip


class _Ctx:
    """Where we are while reading: the file and a prefix for field names."""

    def __init__(self, path: str | None, prefix: str = "") -> None:
        self.path = path
        self.prefix = prefix

    def err(self, field: str, message: str) -> RuleLoadError:
        return RuleLoadError(message, path=self.path, field=f"{self.prefix}{field}")


def _get(d: Mapping[str, Any], key: str, kind: type[T] | tuple[type, ...], ctx: _Ctx,
         what: str, required: bool = False) -> Any:
    if key not in d or d[key] is None:
        if required:
            raise ctx.err(key, "required field is missing")
        return None
    value = d[key]
    # bool is an int subclass; never accept it where a number is wanted
    if isinstance(value, bool) and kind in (int, (int, float)):
        raise ctx.err(key, f"expected {what}, got {value!r}")
    if not isinstance(value, kind):
        raise ctx.err(key, f"expected {what}, got {type(value).__name__} {value!r}")
    return value


def _str_list(d: Mapping[str, Any], key: str, ctx: _Ctx) -> tuple[str, ...]:
    value = _get(d, key, list, ctx, "a list of strings")
    if value is None:
        return ()
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ctx.err(f"{key}[{i}]", f"expected a string, got {item!r}")
    return tuple(value)


def _table_list(d: Mapping[str, Any], key: str, ctx: _Ctx,
                build: Callable[[Mapping[str, Any], _Ctx], T]) -> tuple[T, ...]:
    value = _get(d, key, list, ctx, "a list of tables")
    if value is None:
        return ()
    out: list[T] = []
    for i, item in enumerate(value):
        sub = _Ctx(ctx.path, f"{ctx.prefix}{key}[{i}].")
        if not isinstance(item, Mapping):
            raise ctx.err(f"{key}[{i}]", f"expected a table, got {item!r}")
        out.append(build(item, sub))
    return tuple(out)


def _entity(d: Mapping[str, Any], ctx: _Ctx) -> ThreatEntity:
    return ThreatEntity(
        id=_get(d, "id", str, ctx, "a string", required=True),
        name=_get(d, "name", str, ctx, "a string", required=True),
        reference=_get(d, "reference", str, ctx, "a URL string", required=True),
    )


def _technique(d: Mapping[str, Any], ctx: _Ctx) -> ThreatTechnique:
    base = _entity(d, ctx)
    return ThreatTechnique(id=base.id, name=base.name, reference=base.reference,
                           subtechnique=_table_list(d, "subtechnique", ctx, _entity))


def _threat(d: Mapping[str, Any], ctx: _Ctx) -> Threat:
    tactic = _get(d, "tactic", Mapping, ctx, "a table", required=True)
    return Threat(
        framework=_get(d, "framework", str, ctx, "a string") or "MITRE ATT&CK",
        tactic=_entity(tactic, _Ctx(ctx.path, f"{ctx.prefix}tactic.")),
        technique=_table_list(d, "technique", ctx, _technique),
    )


def _severity_mapping(d: Mapping[str, Any], ctx: _Ctx) -> SeverityMapping:
    severity = _get(d, "severity", str, ctx, "a severity", required=True)
    if severity not in SEVERITIES:
        raise ctx.err("severity", f"invalid severity {severity!r}: expected one of {', '.join(SEVERITIES)}")
    return SeverityMapping(
        field=_get(d, "field", str, ctx, "a field name", required=True),
        operator=_get(d, "operator", str, ctx, "a string") or "equals",
        value=str(_get(d, "value", (str, int, float), ctx, "a value", required=True)),
        severity=severity,
        risk_score=_get(d, "risk_score", int, ctx, "an integer"),
    )


def _risk_mapping(d: Mapping[str, Any], ctx: _Ctx) -> RiskScoreMapping:
    value = _get(d, "value", (str, int, float), ctx, "a value")
    return RiskScoreMapping(
        field=_get(d, "field", str, ctx, "a field name", required=True),
        operator=_get(d, "operator", str, ctx, "a string") or "equals",
        value="" if value is None else str(value),
        risk_score=_get(d, "risk_score", int, ctx, "an integer"),
    )


def _exception_ref(d: Mapping[str, Any], ctx: _Ctx) -> ExceptionListRef:
    return ExceptionListRef(
        id=_get(d, "id", str, ctx, "a string", required=True),
        list_id=_get(d, "list_id", str, ctx, "a string", required=True),
        type=_get(d, "type", str, ctx, "a string") or "detection",
        namespace_type=_get(d, "namespace_type", str, ctx, "a string") or "single",
    )


def _suppression(d: Mapping[str, Any], ctx: _Ctx) -> AlertSuppression:
    group_by = _str_list(d, "group_by", ctx)
    if not 1 <= len(group_by) <= 3:
        raise ctx.err("group_by", "alert suppression needs 1 to 3 group_by fields")
    duration = _get(d, "duration", Mapping, ctx, "a table with value and unit")
    dur: SuppressionDuration | None = None
    if duration is not None:
        dctx = _Ctx(ctx.path, f"{ctx.prefix}duration.")
        unit = _get(duration, "unit", str, dctx, "one of s, m, h", required=True)
        if unit not in ("s", "m", "h"):
            raise dctx.err("unit", f"invalid unit {unit!r}: expected s, m or h")
        dur = SuppressionDuration(value=_get(duration, "value", int, dctx, "an integer",
                                             required=True), unit=unit)
    strategy = _get(d, "missing_fields_strategy", str, ctx, "a string") or "suppress"
    if strategy not in ("suppress", "doNotSuppress"):
        raise ctx.err("missing_fields_strategy",
                      f"invalid value {strategy!r}: expected 'suppress' or 'doNotSuppress'")
    return AlertSuppression(group_by=group_by, duration=dur, missing_fields_strategy=strategy)


def rule_from_api(obj: Mapping[str, Any], *, path: str | None, prefix: str = "",
                  metadata: RuleMetadata | None = None, tests: RuleTestSuite | None = None,
                  other_sections: Mapping[str, Any] | None = None) -> Rule:
    """Build a :class:`Rule` from a Kibana API rule object, validating every field.

    Type and language support are not checked here (see the loader), so that
    any well-formed rule can still be listed, shown and converted.
    """
    ctx = _Ctx(path, prefix)
    severity = _get(obj, "severity", str, ctx, "a severity", required=True)
    if severity not in SEVERITIES:
        raise ctx.err("severity", f"invalid severity {severity!r}: expected one of {', '.join(SEVERITIES)}")
    risk = _get(obj, "risk_score", int, ctx, "an integer 0..100", required=True)
    if not 0 <= risk <= 100:
        raise ctx.err("risk_score", f"risk_score {risk} is out of range 0..100")
    max_signals = _get(obj, "max_signals", int, ctx, "a positive integer")
    if max_signals is not None and max_signals <= 0:
        raise ctx.err("max_signals", f"max_signals must be at least 1, got {max_signals}")
    version = _get(obj, "version", int, ctx, "a positive integer")
    if version is not None and version < 1:
        raise ctx.err("version", f"version must be at least 1, got {version}")
    meta = dict(_get(obj, "meta", Mapping, ctx, "a table") or {})
    suppression = _get(obj, "alert_suppression", Mapping, ctx, "a table")
    query = _get(obj, "query", str, ctx, "a query string")
    return Rule(
        id=_get(obj, "id", str, ctx, "a string"),
        rule_id=_get(obj, "rule_id", str, ctx, "a string", required=True),
        name=_get(obj, "name", str, ctx, "a string", required=True),
        description=_get(obj, "description", str, ctx, "a string", required=True),
        type=_get(obj, "type", str, ctx, "a rule type", required=True),
        language=_get(obj, "language", str, ctx, "a string") or defaults.DEFAULT_LANGUAGE,
        query=query if query is not None else "",
        index=_str_list(obj, "index", ctx),
        interval=_get(obj, "interval", str, ctx, "a duration such as '5m'") or defaults.DEFAULT_INTERVAL,
        from_=_get(obj, "from", str, ctx, "date math such as 'now-6m'") or defaults.DEFAULT_FROM,
        to=_get(obj, "to", str, ctx, "date math such as 'now'") or defaults.DEFAULT_TO,
        max_signals=max_signals if max_signals is not None else defaults.DEFAULT_MAX_SIGNALS,
        timestamp_override=_get(obj, "timestamp_override", str, ctx, "a field name"),
        timestamp_override_fallback_disabled=_get(
            obj, "timestamp_override_fallback_disabled", bool, ctx, "true or false"),
        severity=severity,
        risk_score=risk,
        version=version if version is not None else defaults.DEFAULT_VERSION,
        author=_str_list(obj, "author", ctx),
        license=_get(obj, "license", str, ctx, "a string"),
        tags=_str_list(obj, "tags", ctx),
        references=_str_list(obj, "references", ctx),
        false_positives=_str_list(obj, "false_positives", ctx),
        note=_get(obj, "note", str, ctx, "a markdown string"),
        setup=_get(obj, "setup", str, ctx, "a markdown string"),
        threat=_table_list(obj, "threat", ctx, _threat),
        severity_mapping=_table_list(obj, "severity_mapping", ctx, _severity_mapping),
        risk_score_mapping=_table_list(obj, "risk_score_mapping", ctx, _risk_mapping),
        exceptions_list=_table_list(obj, "exceptions_list", ctx, _exception_ref),
        alert_suppression=_suppression(suppression, _Ctx(path, f"{prefix}alert_suppression."))
        if suppression is not None else None,
        enabled=_get(obj, "enabled", bool, ctx, "true or false") is not False,
        meta=meta,
        metadata=metadata or RuleMetadata(),
        tests=tests or RuleTestSuite(),
        extra={k: v for k, v in obj.items() if k not in MODEL_FIELDS},
        other_sections=dict(other_sections or {}),
        source=path,
    )


def metadata_from_table(d: Mapping[str, Any], path: str | None) -> RuleMetadata:
    """Read a detection-rules ``[metadata]`` table."""
    ctx = _Ctx(path, "metadata.")
    known = ("creation_date", "updated_date", "maturity", "integration", "min_stack_version",
             "min_stack_comments", "deprecation_date")
    integration = d.get("integration")
    # detection-rules allows a single string as well as a list here
    if isinstance(integration, str):
        integration = [integration]
    return RuleMetadata(
        creation_date=_get(d, "creation_date", str, ctx, "a date 'YYYY/MM/DD'"),
        updated_date=_get(d, "updated_date", str, ctx, "a date 'YYYY/MM/DD'"),
        maturity=_get(d, "maturity", str, ctx, "a string"),
        integration=_str_list({"integration": integration}, "integration", ctx),
        min_stack_version=_get(d, "min_stack_version", str, ctx, "a version string"),
        min_stack_comments=_get(d, "min_stack_comments", str, ctx, "a string"),
        deprecation_date=_get(d, "deprecation_date", str, ctx, "a date"),
        extra={k: v for k, v in d.items() if k not in known},
    )


def metadata_to_table(m: RuleMetadata) -> dict[str, Any]:
    """The ``[metadata]`` table for ``m`` (unset fields left out)."""
    out: dict[str, Any] = {}
    for key in ("creation_date", "deprecation_date", "integration", "maturity",
                "min_stack_comments", "min_stack_version", "updated_date"):
        value = getattr(m, key)
        if value not in (None, ()):
            out[key] = list(value) if isinstance(value, tuple) else value
    out.update(m.extra)
    return dict(sorted(out.items()))


def tests_from_table(d: Mapping[str, Any], path: str | None,
                     prefix: str = "credwatch.") -> RuleTestSuite:
    """Read credwatch's embedded tests: ``test_defaults`` and ``[[credwatch.tests]]``."""
    ctx = _Ctx(path, prefix)
    defaults_ = _get(d, "test_defaults", Mapping, ctx, "a table (the default event)") or {}

    def build(t: Mapping[str, Any], tctx: _Ctx) -> RuleTest:
        event = t.get("event")
        if event is None and "event_json" in t:
            raw = _get(t, "event_json", str, tctx, "a JSON object string")
            try:
                event = json.loads(raw)
            except ValueError as exc:
                raise tctx.err("event_json", f"invalid JSON: {exc}") from None
        if not isinstance(event, Mapping):
            raise tctx.err("event", "each test needs an event table (or event_json)")
        return RuleTest(
            name=_get(t, "name", str, tctx, "a string", required=True),
            expect=_get(t, "expect", bool, tctx, "true or false", required=True),
            event=dict(event),
            clause=_get(t, "clause", str, tctx, "a field name or KQL snippet"),
            description=_get(t, "description", str, tctx, "a string"),
            unset=_str_list(t, "unset", tctx),
        )

    return RuleTestSuite(defaults=dict(defaults_), tests=_table_list(d, "tests", ctx, build))


def tests_to_table(s: RuleTestSuite) -> dict[str, Any]:
    """The ``credwatch`` table for a test suite (empty when there are no tests)."""
    out: dict[str, Any] = {}
    if s.defaults:
        out["test_defaults"] = dict(s.defaults)
    if s.tests:
        rows = []
        for t in s.tests:
            row: dict[str, Any] = {"name": t.name, "expect": t.expect}
            if t.description is not None:
                row["description"] = t.description
            if t.clause is not None:
                row["clause"] = t.clause
            if t.unset:
                row["unset"] = list(t.unset)
            row["event"] = dict(t.event)
            rows.append(row)
        out["tests"] = rows
    return out


def _entity_dict(e: ThreatEntity | ThreatTechnique) -> dict[str, Any]:
    out: dict[str, Any] = {"id": e.id, "name": e.name, "reference": e.reference}
    if isinstance(e, ThreatTechnique) and e.subtechnique:
        out["subtechnique"] = [_entity_dict(s) for s in e.subtechnique]
    return out


def threat_to_api(threat: tuple[Threat, ...]) -> list[dict[str, Any]]:
    """The ``threat`` array as Kibana's API and alerts carry it."""
    out = []
    for t in threat:
        item: dict[str, Any] = {"framework": t.framework, "tactic": _entity_dict(t.tactic)}
        if t.technique:
            item["technique"] = [_entity_dict(x) for x in t.technique]
        out.append(item)
    return out


def _drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def rule_to_api(rule: Rule, *, full: bool = True) -> dict[str, Any]:
    """The Kibana API object for ``rule``.

    With ``full`` every field is written, defaults included, as a Kibana
    export does. Without it (detection-rules style) empty, unset and default
    values of optional fields are left out.
    """
    sup = rule.alert_suppression
    obj: dict[str, Any] = {
        "id": rule.id,
        "rule_id": rule.rule_id,
        "name": rule.name,
        "description": rule.description,
        "type": rule.type,
        "language": rule.language,
        "query": rule.query,
        "index": list(rule.index),
        "interval": rule.interval,
        "from": rule.from_,
        "to": rule.to,
        "max_signals": rule.max_signals,
        "timestamp_override": rule.timestamp_override,
        "timestamp_override_fallback_disabled": rule.timestamp_override_fallback_disabled,
        "severity": rule.severity,
        "severity_mapping": [_drop_none({"field": m.field, "operator": m.operator, "value": m.value,
                                         "severity": m.severity, "risk_score": m.risk_score})
                             for m in rule.severity_mapping],
        "risk_score": rule.risk_score,
        "risk_score_mapping": [_drop_none({"field": m.field, "operator": m.operator, "value": m.value,
                                           "risk_score": m.risk_score})
                               for m in rule.risk_score_mapping],
        "version": rule.version,
        "author": list(rule.author),
        "license": rule.license,
        "tags": list(rule.tags),
        "references": list(rule.references),
        "false_positives": list(rule.false_positives),
        "note": rule.note,
        "setup": rule.setup,
        "threat": threat_to_api(rule.threat),
        "exceptions_list": [{"id": e.id, "list_id": e.list_id, "type": e.type,
                             "namespace_type": e.namespace_type} for e in rule.exceptions_list],
        "alert_suppression": _drop_none({
            "group_by": list(sup.group_by),
            "duration": {"value": sup.duration.value, "unit": sup.duration.unit}
            if sup.duration else None,
            "missing_fields_strategy": sup.missing_fields_strategy,
        }) if sup else None,
        "enabled": rule.enabled,
        "meta": dict(rule.meta) if rule.meta else None,
    }
    obj.update(rule.extra)
    if full:
        return _drop_none(obj)
    optional_defaults: dict[str, Any] = {"to": defaults.DEFAULT_TO, "enabled": True,
                                         "max_signals": defaults.DEFAULT_MAX_SIGNALS}
    # extra fields are written verbatim (even empty), so they survive a round-trip
    return {k: v for k, v in obj.items()
            if k in rule.extra or (
                v is not None and v != [] and v != {} and
                not (k in optional_defaults and v == optional_defaults[k]))}
