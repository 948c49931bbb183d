"""Shared helpers for the auditd tests: the real captures and what was run to make them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from credwatch.normalize.auditd import iter_ecs
from credwatch.sources.auditd import AuditEvent, Diagnostics, iter_audit_events

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "auditd"
ENRICHED = FIXTURES / "enriched_workload.log"
RAW_NODE = FIXTURES / "raw_node.log"
SAMPLE = FIXTURES / "enriched_node_sample.log"
INTERPRETED = FIXTURES / "ausearch_interpreted.log"
ALL_LOGS = sorted(FIXTURES.glob("*.log"))

# What the capture workload ran (see tests/fixtures/auditd/README.md); the tests
# rebuild these arguments independently of the log.
LONG_ALPHA = "".join(chr(97 + i % 26) for i in range(10000))
LONG_WORDS = " ".join(f"word{i}" for i in range(2000))
HEX_ARGS = ["/bin/echo", "hello world", "it's \"quoted\"", "naïve café ☃", "tab\there",
            "\ufffd\ufffd not utf8", ""]
TAIL_MANY = ["tail", "-q", "-n0", "/root/.aws/credentials",
             *[f"/nonexistent/file{i}" for i in range(1, 3001)]]
ECHO_MANY = ["/bin/echo", *[str(i) for i in range(1, 5001)]]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def events_of(lines: list[bytes], path: str = "<test>", diagnostics: Diagnostics | None = None,
              **kw: Any) -> list[AuditEvent]:
    return list(iter_audit_events(lines, path=path, diagnostics=diagnostics, **kw))


def ecs_of(lines: list[bytes], **kw: Any) -> list[dict[str, Any]]:
    return list(iter_ecs(events_of(lines), **kw))


def by_args(docs: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    out: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for d in docs:
        out.setdefault(tuple(d.get("process", {}).get("args", [])), []).append(d)
    return out
