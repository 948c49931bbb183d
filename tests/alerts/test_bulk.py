"""The _bulk writer: create actions with the alert ids, loadable NDJSON."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from credwatch.alerts import build_alert
from credwatch.rules import default_rule
from credwatch.sinks.output.base import Sink
from credwatch.sinks.output.bulk import BulkSink

NOW = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


def _alerts() -> list[dict[str, object]]:
    rule = default_rule()
    events = [{"process": {"name": "cat", "args": ["cat", p]}, "host": {"name": "h"}}
              for p in ("/etc/shadow", "/root/.aws/credentials", "/root/.kube/config")]
    return [build_alert(e, rule, now=NOW) for e in events]


def test_bulk_file_pairs_create_actions_with_documents(tmp_path: Path) -> None:
    alerts = _alerts()
    path = tmp_path / "alerts.bulk"
    sink = BulkSink(str(path))
    assert isinstance(sink, Sink)
    for alert in alerts:
        sink.write(alert)
    sink.close()
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw
    lines = raw.decode().splitlines()
    assert len(lines) == 2 * len(alerts) and sink.count == len(alerts)
    for i, alert in enumerate(alerts):
        action, doc = json.loads(lines[2 * i]), json.loads(lines[2 * i + 1])
        assert action == {"create": {"_index": ".alerts-security.alerts-default",
                                     "_id": alert["kibana.alert.uuid"]}}
        assert doc == alert
    assert len({json.loads(lines[i])["create"]["_id"] for i in range(0, len(lines), 2)}) == 3


def test_bulk_to_a_stream_is_not_closed_and_index_can_change() -> None:
    out = io.StringIO()
    sink = BulkSink(out, index=".alerts-security.alerts-secops")
    sink.write(_alerts()[0])
    sink.close()
    assert not out.closed
    first = json.loads(out.getvalue().splitlines()[0])
    assert first["create"]["_index"] == ".alerts-security.alerts-secops"
