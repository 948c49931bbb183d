"""The alert store opens the stores earlier credwatch versions made."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from credwatch.alerts.store import AlertStore

# The alerts table of the first schema (user_version 1), before credwatch_schema existed.
V1 = """
CREATE TABLE alerts (uuid TEXT PRIMARY KEY, rule_id TEXT NOT NULL, rule_name TEXT NOT NULL,
    severity TEXT, risk_score REAL, host TEXT, user_name TEXT, process TEXT, event_time TEXT,
    alert_time TEXT NOT NULL, workflow_status TEXT NOT NULL DEFAULT 'open',
    updated_at TEXT NOT NULL, doc BLOB NOT NULL);
INSERT INTO alerts VALUES ('u1', 'r', 'R', 'high', 73, 'h', 'root', 'cat', NULL,
    '2026-12-01T00:00:00.000Z', 'open', '2026-12-01T00:00:00.000Z',
    '{"kibana.alert.uuid": "u1"}');
PRAGMA user_version=1;
"""


def test_a_store_from_before_credwatch_schema_opens(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    conn.executescript(V1)
    conn.close()
    with AlertStore(db) as store:
        assert store.uuids() == {"u1"}
        assert store.insert([{"kibana.alert.uuid": "u2", "@timestamp": "2026"}]) == [True]
    with AlertStore(db) as store:  # and again, now that the tables it adds exist
        assert store.count() == 2
