"""The alert document: what Kibana's detection engine writes for one matching event.

Shape follows Kibana's ``transform_hit_to_alert.ts``, ``traverse_and_mutate_doc.ts``
and ``build_alert.ts`` (security_solution plugin):

* the event's ``_source`` is copied, minus top-level ``kibana``, ``signal`` and
  ``threshold_result`` keys (credwatch also drops its own ``credwatch`` key, so
  re-scanning alerts cannot nest explanations);
* every ``event.*`` value is *copied* to ``kibana.alert.original_event.*`` (and
  ``data_stream.*`` to ``kibana.alert.original_data_stream.*``) as flat dotted
  keys, and the event's own ``event.kind`` is removed. The rest of ``event.*``
  stays, as in Kibana 8 (semantics §4 says "moved"; Kibana's source copies);
* the alert fields are added as flat dotted keys: ``@timestamp`` (alert time),
  ``event.kind: signal``, ``kibana.alert.original_time``, ancestors, depth,
  status, workflow status, severity and risk score after ``severity_mapping`` /
  ``risk_score_mapping`` overrides, the reason, and the ``kibana.alert.rule.*``
  block.

credwatch adds ``credwatch.explain`` (which clauses matched which values) and
``credwatch.source.*`` (file, line, index and id of the event).

Not reproduced: Kibana's removal of values that clash with ECS field types,
``kibana.alert.url`` (needs Kibana's public URL), and enrichments (risk scores,
asset criticality).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from credwatch.alerts.ids import EventIdentity, event_identity, field_index
from credwatch.alerts.reason import build_reason, lodash_get
from credwatch.normalize.flatten import get_values
from credwatch.rules.convert import rule_to_api
from credwatch.rules.defaults import DEFAULT_SPACE
from credwatch.rules.model import SEVERITIES, Rule
from credwatch.timemath import datetime_to_ms, format_ms, parse_datetime

_BANNED_TOP_LEVEL = ("kibana", "signal", "threshold_result", "credwatch")
_COPY_NAMESPACES = {"event": "kibana.alert.original_event",
                    "data_stream": "kibana.alert.original_data_stream"}
#: Rule API fields that are rule configuration rather than parameters.
_NOT_PARAMETERS = frozenset({
    "id", "name", "tags", "interval", "enabled", "actions", "throttle", "created_at",
    "created_by", "updated_at", "updated_by", "revision", "execution_summary", "output_index",
})


@dataclass(frozen=True, slots=True)
class EventOrigin:
    """Where credwatch read the event (for ``credwatch.source.*``)."""

    path: str | None = None
    line: int | None = None


def iso_ms(t: datetime) -> str:
    """JavaScript ``toISOString``: UTC, millisecond precision, ``Z`` suffix."""
    if t.tzinfo is UTC:
        # datetime's own formatting (in C) for the usual case: four-digit zero-padded
        # years, and milliseconds cut, not rounded, as datetime_to_ms() floors them.
        return t.isoformat(timespec="milliseconds")[:-6] + "Z"
    return _iso_ms(t)


@functools.lru_cache(maxsize=4096)
def _iso_ms(t: datetime) -> str:
    # Not strftime: its %Y drops the zero padding of years before 1000 on glibc.
    return format_ms(datetime_to_ms(t))


def parse_event_time(value: Any) -> datetime | None:
    """Parse an ECS date (ISO 8601 string or epoch milliseconds); None if invalid.

    The one ES ``date`` parser of :mod:`credwatch.timemath`, so an alert's
    time is the instant the query compared; None too for a valid date outside
    the years 1..9999 a datetime can hold (e.g. epoch 10^17 ms).
    """
    if isinstance(value, str) and len(value) <= 64:
        return _parse_text_time(value)
    return parse_datetime(value)


@functools.lru_cache(maxsize=4096)
def _parse_text_time(value: str) -> datetime | None:
    # The alert and its triage parse the same event time; datetimes are immutable.
    return parse_datetime(value)


def flatten_with_prefix(prefix: str, value: Any) -> dict[str, Any]:
    """Kibana's ``flattenWithPrefix``: objects become dotted keys, arrays stay values."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(flatten_with_prefix(f"{prefix}.{key}", sub))
        return out
    return {prefix: value}


_IMMUTABLE = (str, int, float, bool, type(None))


def json_copy(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars); anything else via ``deepcopy``.

    About ten times faster than ``copy.deepcopy`` on events, which matters
    because every alert copies its source event.
    """
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    if isinstance(value, _IMMUTABLE):
        return value
    return copy.deepcopy(value)


def fast_copy(value: dict[str, Any], *, plain: bool = False) -> dict[str, Any]:
    """A deep copy of a JSON object through orjson (in C), or :func:`json_copy` when that is not exact.

    The round trip is used only when it gives back an equal value; tuples,
    NaN, integers beyond 64 bits or non-string keys take the faithful copy.
    ``plain`` says the caller knows the value holds only dicts, lists, text,
    whole numbers and booleans under text keys (a :class:`FieldIndex` with
    neither ``floats`` nor a second spelling): then an orjson round trip that
    succeeds is exact, and the comparison is skipped.
    """
    try:
        copied = orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError, orjson.JSONDecodeError):
        copied = None
    if isinstance(copied, dict) and (plain or copied == value):
        return copied
    return json_copy(value)  # type: ignore[no-any-return]


def _copy_source(event: Mapping[str, Any],
                 plain: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The alert's copy of the source, and the ``original_*`` fields to add."""
    whole = fast_copy(dict(event), plain=plain)
    doc: dict[str, Any] = {}
    copies: dict[str, Any] = {}
    for key, value in whole.items():
        top = key.split(".", 1)[0]
        if top in _BANNED_TOP_LEVEL:
            continue
        doc[key] = value
        if top in _COPY_NAMESPACES:
            dest = _COPY_NAMESPACES[top] + key[len(top):]
            _flatten_copy(dest, value, copies)
    doc.pop("event.kind", None)
    if isinstance(doc.get("event"), dict):
        doc["event"].pop("kind", None)
    return doc, copies


def _flatten_copy(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """``out.update(flatten_with_prefix(prefix, json_copy(value)))``, copying only what is kept.

    Objects are walked rather than copied (their keys become flat keys), so
    only the leaves are copied; the result is the same.
    """
    if type(value) is dict:
        for key, sub in value.items():
            _flatten_copy(f"{prefix}.{key}", sub, out)
    elif isinstance(value, _IMMUTABLE):
        out[prefix] = value
    else:
        out.update(flatten_with_prefix(prefix, json_copy(value)))


def apply_severity_mapping(rule: Rule, source: Mapping[str, Any]) -> str:
    """The alert severity: the highest ``severity_mapping`` item whose value the event holds."""
    if not rule.severity_mapping:
        return rule.severity
    order = {s: i for i, s in enumerate(SEVERITIES)}
    match: str | None = None
    found: set[object]
    for item in sorted(rule.severity_mapping, key=lambda m: order.get(m.severity, 0)):
        raw = lodash_get(source, item.field)
        values = raw if isinstance(raw, list) else [raw]
        if item.field == "event.severity":
            # event.severity is a long in ECS: compare numerically
            try:
                wanted: object = int(float(item.value))
            except ValueError:
                continue
            found = {v for v in values if isinstance(v, int) and not isinstance(v, bool)}
        else:
            wanted = item.value
            found = {_js_str(v) for v in values
                     if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))}
        if wanted in found:
            match = item.severity
    return match or rule.severity


def apply_risk_score_mapping(rule: Rule, source: Mapping[str, Any]) -> int | float:
    """The alert risk score: the largest valid 0..100 value of the mapped field, else the rule's."""
    if not rule.risk_score_mapping:
        return rule.risk_score
    raw = lodash_get(source, rule.risk_score_mapping[0].field)
    best: int | float | None = None
    for v in raw if isinstance(raw, list) else [raw]:
        num: float | None = None
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            num = float(v)
        elif isinstance(v, str):
            try:
                num = float(v) if v.strip() else 0.0  # Number("") is 0 in JavaScript
            except ValueError:
                num = None
        if num is not None and num == num and 0 <= num <= 100 and (best is None or num > best):
            best = num
    if best is None:
        return rule.risk_score
    return int(best) if float(best).is_integer() else best


def _js_str(v: Any) -> str:
    return str(v)


def _rule_name(rule: Rule, source: Mapping[str, Any]) -> str:
    field = rule.extra.get("rule_name_override")
    if isinstance(field, str) and field:
        value = lodash_get(source, field)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value.strip():
            return value
    return rule.name


def hit_to_dict(hit: Any) -> dict[str, Any]:
    """One explanation entry from an evaluator hit (object with attributes, or a mapping)."""
    if isinstance(hit, Mapping):
        get = hit.get
    else:
        def get(key: str, default: Any = None) -> Any:
            return getattr(hit, key, default)
    out = {"clause": get("clause"), "field": get("field"), "value": get("value"),
           "index": get("index"), "pattern": get("pattern")}
    if get("argument"):  # a derived path: the original command that spelled it
        out["argument"] = get("argument")
    return out


def explain_text(entry: Mapping[str, Any]) -> str:
    """One human line: ``process.args[1] "/root/.aws/credentials" matched */.aws/credentials``."""
    where = entry.get("field") or "?"
    if entry.get("index") is not None:
        where += f"[{entry['index']}]"
    value = entry.get("value")
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    if entry.get("argument"):
        shown = f'"{entry["argument"]}" → {value}'
    return f"{where} {shown} matched {entry.get('clause')}"


#: ``(id(rule), indices) -> (rule, block)``: the rule block is the same for every alert
#: of a rule; the rule is kept so its id cannot be reused. Bounded: rules are few.
_RULE_BLOCKS: dict[tuple[int, tuple[str, ...] | None], _RuleBlock] = {}
_MAX_RULE_BLOCKS = 1024


@dataclass(frozen=True, slots=True)
class _RuleBlock:
    """A rule's block without its null fields, and its JSON when that copies exactly."""

    rule: Rule
    fields: dict[str, Any]
    data: bytes | None


def _set_rule_fields(rule: Rule, indices: Sequence[str] | None) -> dict[str, Any]:
    """A fresh copy of the ``kibana.alert.rule.*`` block an alert of ``rule`` holds.

    Computed once per rule (and indices) and copied for each alert, so that no
    two alerts share a mutable value.
    """
    key = (id(rule), None if indices is None else tuple(indices))
    hit = _RULE_BLOCKS.get(key)
    if hit is None or hit.rule is not rule:
        if len(_RULE_BLOCKS) >= _MAX_RULE_BLOCKS:
            _RULE_BLOCKS.clear()
        fields = {k: v for k, v in _rule_fields(rule, indices).items() if v is not None}
        hit = _RuleBlock(rule, fields, _json_bytes(fields))
        _RULE_BLOCKS[key] = hit
    if hit.data is not None:
        fresh: dict[str, Any] = orjson.loads(hit.data)
        return fresh
    return json_copy(hit.fields)  # type: ignore[no-any-return]


def _json_bytes(value: dict[str, Any]) -> bytes | None:
    """``value`` as JSON when decoding it gives back an equal value (a fast deep copy), else None.

    The check keeps tuples, NaN, huge integers and non-string keys on the
    slow, faithful copy.
    """
    try:
        data = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return data if orjson.loads(data) == value else None


def _rule_fields(rule: Rule, indices: Sequence[str] | None) -> dict[str, Any]:
    api = rule_to_api(rule, full=True)
    params = {k: v for k, v in api.items() if k not in _NOT_PARAMETERS}
    params.setdefault("immutable", False)
    params.setdefault("setup", "")
    params.setdefault("related_integrations", [])
    params.setdefault("required_fields", [])
    params.setdefault("severity_mapping", [])
    params.setdefault("risk_score_mapping", [])
    extra = rule.extra
    fields: dict[str, Any] = {
        "kibana.alert.rule.parameters": params,
        "kibana.alert.rule.actions": list(extra.get("actions", [])),
        "kibana.alert.rule.author": list(rule.author),
        "kibana.alert.rule.category": "Custom Query Rule",
        "kibana.alert.rule.consumer": "siem",
        "kibana.alert.rule.created_at": extra.get("created_at"),
        "kibana.alert.rule.created_by": extra.get("created_by", ""),
        "kibana.alert.rule.description": rule.description,
        "kibana.alert.rule.enabled": rule.enabled,
        "kibana.alert.rule.exceptions_list": api.get("exceptions_list", []),
        "kibana.alert.rule.false_positives": list(rule.false_positives),
        "kibana.alert.rule.from": rule.from_,
        "kibana.alert.rule.immutable": bool(extra.get("immutable", False)),
        "kibana.alert.rule.interval": rule.interval,
        "kibana.alert.rule.indices": list(indices if indices is not None else rule.index),
        "kibana.alert.rule.license": rule.license,
        "kibana.alert.rule.max_signals": rule.max_signals,
        "kibana.alert.rule.name": rule.name,
        "kibana.alert.rule.note": rule.note,
        "kibana.alert.rule.producer": "siem",
        "kibana.alert.rule.references": list(rule.references),
        "kibana.alert.rule.risk_score_mapping": params["risk_score_mapping"],
        "kibana.alert.rule.rule_id": rule.rule_id,
        "kibana.alert.rule.rule_name_override": extra.get("rule_name_override"),
        "kibana.alert.rule.rule_type_id": "siem.queryRule",
        "kibana.alert.rule.severity_mapping": params["severity_mapping"],
        "kibana.alert.rule.tags": list(rule.tags),
        "kibana.alert.rule.threat": api.get("threat", []),
        "kibana.alert.rule.timeline_id": extra.get("timeline_id"),
        "kibana.alert.rule.timeline_title": extra.get("timeline_title"),
        "kibana.alert.rule.timestamp_override": rule.timestamp_override,
        "kibana.alert.rule.to": rule.to,
        "kibana.alert.rule.type": rule.type,
        "kibana.alert.rule.updated_at": extra.get("updated_at"),
        "kibana.alert.rule.updated_by": extra.get("updated_by", ""),
        "kibana.alert.rule.uuid": rule.uuid,
        "kibana.alert.rule.version": rule.version,
        "kibana.alert.rule.risk_score": rule.risk_score,
        "kibana.alert.rule.severity": rule.severity,
        "kibana.alert.rule.building_block_type": extra.get("building_block_type"),
    }
    fields.update(flatten_with_prefix("kibana.alert.rule.meta", dict(rule.meta))
                  if rule.meta else {})
    return fields


def build_alert(
    event: Mapping[str, Any],
    rule: Rule,
    *,
    now: datetime,
    identity: EventIdentity | None = None,
    hits: Sequence[Any] = (),
    origin: EventOrigin | None = None,
    space: str = DEFAULT_SPACE,
    indices: Sequence[str] | None = None,
    execution_uuid: str | None = None,
) -> dict[str, Any]:
    """Build the alert document for ``event`` matched by ``rule`` at time ``now``.

    ``event`` is the event's ``_source``. ``identity`` gives its ``_index``,
    ``_id`` and ``_version``; when omitted it is derived from the content (see
    :mod:`credwatch.alerts.ids`). ``hits`` is the evaluator's explanation
    (``Matcher.explain(event)``), objects with ``clause``, ``field``,
    ``value``, ``index`` and ``pattern`` attributes, or mappings with those keys.
    """
    ident = identity or event_identity(event)
    alert_uuid = ident.alert_id(rule.uuid, space)
    index = field_index(event)
    doc, copies = _copy_source(event, plain=index.unique and not index.floats)
    severity = apply_severity_mapping(rule, event)
    risk = apply_risk_score_mapping(rule, event)
    name = _rule_name(rule, event)
    timestamp = iso_ms(now)
    times = index.flat.get("@timestamp", []) if index.unique else get_values(event, "@timestamp")
    original = parse_event_time(times[0]) if times else None
    explain = [hit_to_dict(h) for h in hits]

    # Three parts, in document order; null values are left out. The rule's block is
    # prepared once per rule, nulls already removed; its name is set again by the
    # tail (rule_name_override), which keeps the block's position for it.
    head: dict[str, Any] = {
        "@timestamp": timestamp,
        "kibana.space_ids": [space],
        "event.kind": "signal",
        "kibana.alert.original_time": iso_ms(original) if original else None,
        "kibana.alert.ancestors": [{"id": ident.id, "type": "event", "index": ident.index,
                                    "depth": 0}],
        "kibana.alert.status": "active",
        "kibana.alert.workflow_status": "open",
        "kibana.alert.depth": 1,
        "kibana.alert.reason": build_reason(event, name, severity),
        "kibana.alert.severity": severity,
        "kibana.alert.risk_score": risk,
    }
    tail = _alert_tail(name, timestamp, alert_uuid, explain, ident, origin, execution_uuid)
    doc.update(copies)
    doc.update({k: v for k, v in head.items() if v is not None})
    doc.update(_set_rule_fields(rule, indices))
    doc.update({k: v for k, v in tail.items() if v is not None})
    return doc


def _alert_tail(name: str, timestamp: str, alert_uuid: str, explain: list[dict[str, Any]],
                ident: EventIdentity, origin: EventOrigin | None,
                execution_uuid: str | None) -> dict[str, Any]:
    """The fields after the rule block: execution, times, the uuid, the explanation, the origin."""
    return {
        "kibana.alert.rule.name": name,
        "kibana.alert.rule.execution.uuid": execution_uuid,
        "kibana.alert.rule.execution.type": "scheduled",
        "kibana.alert.intended_timestamp": timestamp,
        "kibana.alert.start": timestamp,
        "kibana.alert.last_detected": timestamp,
        "kibana.alert.uuid": alert_uuid,
        "kibana.alert.workflow_tags": [],
        "kibana.alert.workflow_assignee_ids": [],
        "credwatch.explain": explain,
        "credwatch.explanation": [explain_text(e) for e in explain],
        "credwatch.source.path": origin.path if origin else None,
        "credwatch.source.line": origin.line if origin else None,
        "credwatch.source.index": ident.index or None,
        "credwatch.source.id": ident.id,
        "credwatch.source.id_derived": ident.derived,
    }
