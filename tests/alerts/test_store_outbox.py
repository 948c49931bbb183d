"""The outbox rows written with alerts, in the alert's own transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from credwatch.alerts.store import AlertStore


def _alert(uuid: str) -> dict[str, Any]:
    return {"@timestamp": "2026-03-01T10:00:00.000Z", "kibana.alert.uuid": uuid,
            "kibana.alert.rule.rule_id": "r1", "kibana.alert.rule.name": "rule one",
            "host.name": "node-1"}


def _outbox(store: AlertStore) -> list[tuple[str, str, str]]:
    return list(store.conn.execute("SELECT sink, uuid, state FROM outbox ORDER BY rowid"))


def test_new_alerts_are_queued_for_each_sink_and_known_ones_are_not(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "a.db") as store:
        store.outbox_sinks = ("hook", "slack")
        assert store.insert([_alert("u1"), _alert("u2")]) == [True, True]
        assert store.insert([_alert("u1"), _alert("u3")]) == [False, True]
        assert _outbox(store) == [("hook", "u1", "pending"), ("slack", "u1", "pending"),
                                  ("hook", "u2", "pending"), ("slack", "u2", "pending"),
                                  ("hook", "u3", "pending"), ("slack", "u3", "pending")]
        # An explicit list overrides the default; an empty one queues nothing.
        store.insert([_alert("u4")], outbox=())
        store.insert([_alert("u5")], outbox=["syslog"])
        assert _outbox(store)[-1] == ("syslog", "u5", "pending")
        assert len(_outbox(store)) == 7


def test_a_failed_transaction_queues_nothing_and_stores_nothing(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "a.db") as store:
        store.outbox_sinks = ("hook",)
        with pytest.raises(ValueError):
            store.insert([_alert("u1"), {"no": "uuid"}])
        assert store.count() == 0
        assert _outbox(store) == []


def test_a_store_made_before_the_outbox_gets_the_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with AlertStore(path) as store:
        store.conn.execute("DROP TABLE outbox")
        store.conn.execute("DELETE FROM credwatch_schema WHERE component='outbox'")
    with AlertStore(path) as store:
        store.insert([_alert("u1")], outbox=["hook"])
        assert _outbox(store) == [("hook", "u1", "pending")]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM credwatch_schema WHERE component='outbox'"
                        ).fetchone() == (1,)
    conn.close()


def test_a_transform_applies_to_what_is_stored(tmp_path: Path) -> None:
    with AlertStore(tmp_path / "a.db") as store:
        store.transform = lambda doc: {**doc, "host.name": "hidden"}
        store.insert([_alert("u1")])
        doc = store.get("u1")
        assert doc is not None and doc["host.name"] == "hidden"
        store.replace({**_alert("u1"), "host.name": "again"})
        doc = store.get("u1")
        assert doc is not None and doc["host.name"] == "hidden"
