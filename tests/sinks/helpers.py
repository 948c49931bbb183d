"""Alerts, stores and sink configs for the sink tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from credwatch.alerts.store import AlertStore
from credwatch.sinks.config import SinkConfig


def alert(n: int, *, rule: str = "r1", host: str = "node-1",
          cmd: str = "cat /root/.kube/config") -> dict[str, Any]:
    """A small alert document in the Elastic layout (dotted keys as the builder writes them)."""
    return {"@timestamp": f"2026-03-01T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
            "kibana.alert.uuid": f"uuid-{n:06d}", "kibana.alert.rule.rule_id": rule,
            "kibana.alert.rule.name": f"rule {rule}", "kibana.alert.severity": "medium",
            "kibana.alert.reason": f"process event with process cat, by root on {host} created "
                                   "medium alert", "host": {"name": host}, "user": {"name": "root"},
            "process": {"command_line": cmd, "args": cmd.split(), "name": "cat"}}


def sink(name: str, kind: str, **kw: Any) -> SinkConfig:
    """A sink config as the config file would give (secrets listed for scrubbing)."""
    secrets = tuple(v for k in ("token", "api_key", "password") if (v := kw.get(k)))
    if kind == "slack":
        secrets += (kw["url"],)
        kw.setdefault("throttle", 60.0)
    kw.setdefault("backoff", 1.0)
    return SinkConfig(name=name, kind=kind, secret_values=secrets, **kw)


def store_with(path: Path, sinks: tuple[str, ...], n: int, **kw: Any) -> AlertStore:
    """A store at ``path`` holding ``n`` alerts queued for ``sinks``."""
    store = AlertStore(path)
    store.outbox_sinks = sinks
    store.insert([alert(i, **kw) for i in range(n)])
    return store


def uuids(n: int) -> set[str]:
    return {f"uuid-{i:06d}" for i in range(n)}
