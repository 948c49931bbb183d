"""Regenerate the bundled ECS examples from the real audit captures.

Provenance: ``tests/fixtures/auditd/enriched_workload.log`` was captured from a
real auditd on a test machine while running real commands against fake
credential files (see that folder's README). This script maps those exec
events to ECS with credwatch's auditd_manager mapping and writes them in the
shapes users export from Elastic:

* ``examples/ecs/auditbeat.ndjson``: auditbeat / auditd_manager documents
  (``event.action: executed``), nested JSON, one per line;
* ``examples/ecs/defend.ndjson``: the same execs in Elastic Defend's shape
  (``event.action: exec``, ``process.parent.*``, ``process.entry_leader``,
  ``data_stream`` of ``logs-endpoint.events.process-default``), flat-dotted keys,
  as Discover exports them;
* ``examples/ecs/search_response.json``: an Elasticsearch ``_search`` response
  whose hits live in a data stream's backing index.

Run: ``python scripts/make_examples.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from credwatch.normalize.flatten import flatten
from credwatch.sources.auditd import audit_files_to_ecs

ROOT = Path(__file__).resolve().parent.parent
CAPTURE = ROOT / "tests" / "fixtures" / "auditd" / "enriched_workload.log"
OUT = ROOT / "src" / "credwatch" / "examples" / "ecs"


def defend_shape(doc: dict[str, Any], n: int) -> dict[str, Any]:
    proc = doc.get("process", {})
    parent_pid = proc.get("parent", {}).get("pid")
    out: dict[str, Any] = {
        "@timestamp": doc["@timestamp"],
        "agent": {"type": "endpoint", "version": "8.17.0"},
        "data_stream": {"type": "logs", "dataset": "endpoint.events.process", "namespace": "default"},
        "ecs": {"version": "8.11.0"},
        "event": {"kind": "event", "category": ["process"], "type": ["start"], "action": "exec",
                  "dataset": "endpoint.events.process", "module": "endpoint",
                  "ingested": doc["@timestamp"], "id": f"NtZ3{n:08d}cWx"},
        "host": {"name": "k8s-node-1", "hostname": "k8s-node-1",
                 "os": {"type": "linux", "family": "debian", "name": "Linux", "kernel": "6.1.0"}},
        "process": {
            "pid": proc.get("pid"),
            "name": proc.get("name"),
            "executable": proc.get("executable"),
            "args": proc.get("args"),
            "args_count": proc.get("args_count"),
            "command_line": " ".join(proc.get("args") or []),
            "working_directory": proc.get("working_directory"),
            "entity_id": f"ZGVmZW5k{n:06d}",
            "parent": {"pid": parent_pid, "name": "bash", "executable": "/usr/bin/bash",
                       "args": ["bash"], "entity_id": "ZGVmZW5kcGFyZW50"},
            "entry_leader": {"name": "sshd", "executable": "/usr/sbin/sshd", "pid": 1021,
                             "entry_meta": {"type": "sshd"}},
            "session_leader": {"name": "bash", "executable": "/usr/bin/bash", "pid": parent_pid},
        },
        "user": {"id": doc.get("user", {}).get("id"), "name": doc.get("user", {}).get("name")},
    }
    return out


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # Keep the package small: leave out the capture's deliberately huge execs
    # (thousands of arguments, 8 KB+ arguments); the tests cover those.
    docs = [d for d in audit_files_to_ecs([str(CAPTURE)]) if len(orjson.dumps(d)) < 6000]
    auditbeat: list[dict[str, Any]] = []
    for doc in docs:
        d = copy.deepcopy(doc)
        d.setdefault("agent", {"type": "auditbeat", "version": "8.17.0"})
        d.setdefault("host", {})["name"] = "k8s-node-1"
        d["event"]["ingested"] = d["@timestamp"]
        auditbeat.append(d)
    with open(OUT / "auditbeat.ndjson", "wb") as fh:
        for d in auditbeat:
            fh.write(orjson.dumps(d) + b"\n")
    defend = [defend_shape(d, i) for i, d in enumerate(docs)]
    with open(OUT / "defend.ndjson", "wb") as fh:
        for d in defend:
            flat = {k: (v if len(v) > 1 or k in ("process.args", "event.category", "event.type",
                                                  "process.parent.args") else v[0])
                    for k, v in flatten(d).items()}
            fh.write(orjson.dumps(flat) + b"\n")
    hits = [{"_index": ".ds-logs-endpoint.events.process-default-2026.12.01-000001",
             "_id": f"ep-{i:05d}", "_score": None, "_source": d} for i, d in enumerate(defend[:40])]
    response = {"took": 12, "timed_out": False,
                "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": None,
                         "hits": hits}}
    (OUT / "search_response.json").write_bytes(orjson.dumps(response, option=orjson.OPT_INDENT_2))
    print(f"wrote {len(auditbeat)} auditbeat, {len(defend)} defend, {len(hits)} hits to {OUT}")


if __name__ == "__main__":
    main()
