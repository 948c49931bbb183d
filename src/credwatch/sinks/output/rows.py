"""What an alert shows in a row: priority, host, user, process, what matched and why.

Shared by the terminal table, ``watch``'s one line per alert, the timeline CSV
and the filters; plain Python (no terminal library), so a command that prints
NDJSON does not load one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from credwatch.normalize.flatten import get_values

_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def first_value(doc: Mapping[str, Any], field: str) -> str:
    """The first value of ``field`` in ``doc`` as text (flat key or nested), '' when absent."""
    if field in doc:
        value = doc[field]
        if isinstance(value, list):
            return str(value[0]) if value else ""
        return "" if value is None else str(value)
    vals = get_values(doc, field)
    return str(vals[0]) if vals else ""


def _explain(alert: Mapping[str, Any]) -> list[Any]:
    explain = alert["credwatch.explain"] if "credwatch.explain" in alert else get_values(
        alert, "credwatch.explain")
    return explain if isinstance(explain, list) else []


def matched_path(alert: Mapping[str, Any]) -> str:
    """The argument that satisfied a path clause, from the explain block."""
    best = ""
    for hit in _explain(alert):
        if isinstance(hit, dict) and hit.get("field") == "process.args":
            value = str(hit.get("value", ""))
            # Prefer a value that looks like a path over a tool name like `cat`.
            if "/" in value or not best:
                best = value
    return best


def matched_value(alert: Mapping[str, Any]) -> str:
    """What matched: the argument for path rules, else the first value a clause matched."""
    path = matched_path(alert)
    if path:
        return path
    for hit in reversed(_explain(alert)):
        if isinstance(hit, dict) and hit.get("value") is not None:
            return str(hit["value"])
    return ""


def alert_reason(alert: Mapping[str, Any]) -> str:
    """Why it alerted, short: the credential kinds triage found, else the matching clause."""
    creds = alert.get("credwatch.triage.credentials")
    if creds is None:
        creds = get_values(alert, "credwatch.triage.credentials")
    labels = []
    for cred in creds if isinstance(creds, list) else []:
        if isinstance(cred, dict) and cred.get("label") and cred["label"] not in labels:
            labels.append(str(cred["label"]))
    if labels:
        return "; ".join(labels)
    clauses = [str(h.get("clause")) for h in _explain(alert)
               if isinstance(h, dict) and h.get("clause") and h.get("field") == "process.args"]
    if not clauses:
        clauses = [str(h.get("clause")) for h in _explain(alert)
                   if isinstance(h, dict) and h.get("clause")]
    return clauses[-1] if clauses else first_value(alert, "kibana.alert.rule.name")


def alert_priority(alert: Mapping[str, Any]) -> str:
    """The triage priority (P1..P4), else the severity."""
    return first_value(alert, "credwatch.triage.priority") or first_value(alert, "kibana.alert.severity")


def alert_time(alert: Mapping[str, Any]) -> str:
    """When the event happened (the alert's original time), else when the alert was made."""
    return first_value(alert, "kibana.alert.original_time") or first_value(alert, "@timestamp")


@dataclass(frozen=True, slots=True)
class Row:
    """The strings one table row shows (the alert itself is not kept)."""

    rule: str
    severity: str
    priority: str
    time: str
    host: str
    user: str
    process: str
    matched: str
    reason: str
    parent: str
    uuid: str

    @classmethod
    def of(cls, alert: Mapping[str, Any]) -> Row:
        """The row for ``alert``."""
        return cls(
            rule=first_value(alert, "kibana.alert.rule.name"),
            severity=first_value(alert, "kibana.alert.severity"),
            priority=alert_priority(alert),
            time=alert_time(alert),
            host=first_value(alert, "host.name"),
            user=first_value(alert, "user.name") or first_value(alert, "user.id"),
            process=first_value(alert, "process.name") or first_value(alert, "process.executable"),
            matched=matched_value(alert),
            reason=alert_reason(alert),
            parent=first_value(alert, "process.parent.executable")
            or first_value(alert, "process.parent.name"),
            uuid=first_value(alert, "kibana.alert.uuid"),
        )

    def order(self) -> tuple[str, int, str]:
        """Most urgent first (P1 before P4, critical before low), then by event time."""
        return (self.priority or "~", _SEVERITY_RANK.get(self.severity, 9), self.time)
