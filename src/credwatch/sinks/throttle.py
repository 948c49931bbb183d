"""Per-sink grouping: many alerts of one rule on one host within a window become one message.

A rule that fires 10,000 times in a minute must not send 10,000 Slack
messages. For a sink with ``throttle = W`` seconds, pending alerts are grouped
by (rule id, host name); a group is sent once its oldest alert has waited
``W`` seconds (or at once when forced), as one message carrying its first
alert and the count. Every alert of the group is marked with the group's
outcome. This comes on top of the rule's own alert suppression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from credwatch.alerts.store import AlertStore
from credwatch.normalize.flatten import get_values
from credwatch.sinks.outbox import LEASE_S, Item

#: At most this many groups are sent per pass (the rest wait for the next pass).
MAX_GROUPS = 1000


@dataclass(slots=True)
class Message:
    """What a sink sends: one alert, or the first alert of a group with the group's size."""

    items: list[Item]
    doc: Mapping[str, Any]
    count: int = 1
    first: str | None = None
    last: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rowids(self) -> list[int]:
        """The outbox rows this message stands for."""
        return [i.rowid for i in self.items]


def first_value(doc: Mapping[str, Any], path: str) -> Any:
    """The first value of a dotted field in an alert document, or None."""
    values = get_values(doc, path)
    return values[0] if values else None


def single(item: Item) -> Message:
    """The message for one alert."""
    t = first_value(item.doc, "@timestamp")
    return Message([item], item.doc, 1, t, t)


def _seconds(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def claim_groups(store: AlertStore, sink: str, now: float, window: float, *,
                 force: bool = False, lease: float = LEASE_S) -> list[Message]:
    """Claim the ready groups of ``sink``'s due alerts, one :class:`Message` per group."""
    with store.transaction() as conn:
        rows = conn.execute(
            "SELECT a.rule_id, COALESCE(a.host, ''), MIN(o.queued_at), MIN(a.alert_time),"
            " MAX(a.alert_time), COUNT(*), MIN(o.rowid) FROM outbox o JOIN alerts a ON a.uuid=o.uuid"
            " WHERE o.sink=? AND o.state='pending' AND o.next_at<=? GROUP BY 1, 2 ORDER BY 7 LIMIT ?",
            (sink, now, MAX_GROUPS)).fetchall()
        messages: list[Message] = []
        for rule_id, host, queued, first, last, _count, _ in rows:
            if not force and now < _seconds(queued) + window:
                continue
            members = conn.execute(
                "SELECT o.rowid, o.uuid, o.attempts FROM outbox o JOIN alerts a ON a.uuid=o.uuid"
                " WHERE o.sink=? AND o.state='pending' AND o.next_at<=? AND a.rule_id=?"
                " AND COALESCE(a.host, '')=? ORDER BY o.rowid", (sink, now, rule_id, host)).fetchall()
            conn.executemany("UPDATE outbox SET next_at=? WHERE rowid=?",
                             [(now + lease, m[0]) for m in members])
            doc_row = conn.execute("SELECT doc FROM alerts WHERE uuid=?", (members[0][1],)).fetchone()
            doc: dict[str, Any] = orjson.loads(doc_row[0])
            items = [Item(r, u, doc if i == 0 else {}, a) for i, (r, u, a) in enumerate(members)]
            messages.append(Message(items, doc, len(items), first, last))
    return messages
