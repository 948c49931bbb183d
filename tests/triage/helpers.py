"""Realistic ECS process events for triage tests (Elastic Defend and auditd shapes)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson

from credwatch.engine.scan import Scanner, compile_rules
from credwatch.rules.loader import default_rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import read_records
from credwatch.sources.record import Record
from credwatch.triage.enrich import Triage

BASE = datetime(2026, 12, 1, 11, 33, 14, 643000, tzinfo=UTC)


def example(name: str) -> list[dict[str, Any]]:
    """The bundled example events (real captures mapped to ECS)."""
    text = resources.files("credwatch").joinpath("examples").joinpath("ecs").joinpath(name).read_bytes()
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def _ts(offset: float) -> str:
    t = BASE + timedelta(seconds=offset)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


_DEFEND_TEMPLATE = example("defend.ndjson")[5]  # `cat /root/.aws/credentials` from an ssh session


def defend(args: list[str], **fields: Any) -> dict[str, Any]:
    """An Elastic Defend exec event (flat dotted keys, as the bundled capture) for ``args``.

    ``t`` (seconds after the capture's start), ``pid``, ``ppid`` and ``host`` set the
    usual fields; any other keyword is a dotted field to set (None removes it).
    """
    t = float(fields.pop("t", 0.0))
    pid = int(fields.pop("pid", 5000))
    ppid = int(fields.pop("ppid", 4479))
    host = str(fields.pop("host", "k8s-node-1"))
    ev = copy.deepcopy(_DEFEND_TEMPLATE)
    ev.update({"@timestamp": _ts(t), "event.ingested": _ts(t), "process.args": list(args),
               "process.args_count": len(args), "process.command_line": " ".join(args),
               "process.name": args[0].rsplit("/", 1)[-1] if args else "",
               "process.executable": args[0] if args and args[0].startswith("/")
               else f"/usr/bin/{args[0] if args else ''}",
               "process.pid": pid, "process.parent.pid": ppid, "host.name": host,
               "host.hostname": host})
    for key, value in fields.items():
        key = key.replace("__", ".")
        if value is None:
            ev.pop(key, None)
        else:
            ev[key] = value
    return ev


_AUDIT_TEMPLATE = example("auditbeat.ndjson")[5]  # nested auditbeat shape, ses=1, auid=0


def auditd(args: list[str], *, t: float = 0.0, pid: int = 6000, ppid: int = 4479,
           ses: str = "1", auid: str = "0", host: str = "k8s-node-1") -> dict[str, Any]:
    """An auditbeat/auditd_manager exec event (nested) with ppid, ses and auid."""
    ev = copy.deepcopy(_AUDIT_TEMPLATE)
    ev["@timestamp"] = _ts(t)
    ev["event"]["ingested"] = _ts(t)
    ev["event"].pop("original", None)
    p = ev["process"]
    p.update({"args": list(args), "args_count": len(args), "title": " ".join(args),
              "name": args[0].rsplit("/", 1)[-1][:15], "pid": pid, "parent": {"pid": ppid},
              "executable": args[0] if args[0].startswith("/") else f"/usr/bin/{args[0]}"})
    ev["auditd"]["session"] = ses
    ev["user"]["audit"] = {"id": auid} if auid == "4294967295" else {"id": auid, "name": "root"}
    ev.setdefault("host", {})["name"] = host
    return ev


def scan_alerts(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(alert, event) for every event the seed rule matches."""
    scanner = Scanner(compile_rules([default_rule()]), all_indices=True, triage=False)
    out = []
    for ev in events:
        for a in scanner.alerts_for(Record(event=ev, source="test", line=0)):
            out.append((a, ev))
    return out


def scan_file(path: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(events, alerts) of a scan of ``path`` with the seed rule."""
    scanner = Scanner(compile_rules([default_rule()]), all_indices=True, triage=False)
    events, alerts = [], []
    for rec in read_records([path], Diagnostics()):
        events.append(rec.event)
        alerts.extend(scanner.alerts_for(rec))
    return events, alerts


def run_triage(events: list[dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
    """Scan ``events`` with the seed rule through :class:`Triage` as the scanner will."""
    scanner = Scanner(compile_rules([default_rule()]), all_indices=True, triage=False)
    triage = Triage(**kw)
    out: list[dict[str, Any]] = []
    for ev in events:
        out += triage.observe(ev)
        for a in scanner.alerts_for(Record(event=ev, source="test", line=0)):
            out += triage.add_alert(a, ev)
    out += triage.drain(final=True)
    return out
