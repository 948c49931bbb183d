"""Reading and marking the store's outbox (the table is created by the alert store).

A row is ``pending`` until the receiver accepts it (``delivered``) or refuses
it for good (``parked``, with the reason). Before a row is sent it is
*claimed*: its next attempt time moves a lease ahead, in one immediate
transaction, so two deliverers (a ``watch`` and a ``sinks deliver``) do not
send the same rows at the same time, and rows claimed by a deliverer that
crashed become due again when the lease ends. A delivery is therefore at
least once: a crash between the receiver's answer and the mark sends again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from credwatch.alerts.store import AlertStore

#: How long a claimed row is held before another deliverer may take it.
LEASE_S = 120.0
#: Reasons kept for a parked or failing row are cut to this many characters.
MAX_REASON = 500


@dataclass(slots=True)
class Item:
    """One queued alert: the outbox rowid, its uuid, document and attempts so far."""

    rowid: int
    uuid: str
    doc: dict[str, Any]
    attempts: int


@dataclass(slots=True)
class SinkStatus:
    """Counts for one sink: pending (failing = pending after a failed attempt)."""

    pending: int = 0
    failing: int = 0
    delivered: int = 0
    parked: int = 0
    last_error: str | None = None


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Outbox:
    """The outbox of one store (its own connection: a delivery thread may use it)."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        self.conn: sqlite3.Connection = store.conn

    def claim(self, sink: str, now: float, limit: int, lease: float = LEASE_S) -> list[Item]:
        """Take up to ``limit`` due rows of ``sink``, oldest first, for ``lease`` seconds."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT o.rowid, o.uuid, o.attempts, a.doc FROM outbox o LEFT JOIN alerts a"
                " ON a.uuid = o.uuid WHERE o.sink=? AND o.state='pending' AND o.next_at<=?"
                " ORDER BY o.rowid LIMIT ?", (sink, now, limit)).fetchall()
            conn.executemany("UPDATE outbox SET next_at=? WHERE rowid=?",
                             [(now + lease, r[0]) for r in rows])
        items: list[Item] = []
        gone: list[int] = []
        for rowid, uuid, attempts, doc in rows:
            if doc is None:  # the alert was deleted from the store: nothing to send
                gone.append(rowid)
                continue
            items.append(Item(rowid, uuid, orjson.loads(doc), attempts))
        if gone:
            self.park(gone, "the alert is no longer in the store", now)
        return items

    def delivered(self, rowids: Sequence[int], now: float) -> None:
        """Mark rows delivered."""
        with self.store.transaction() as conn:
            conn.executemany("UPDATE outbox SET state='delivered', attempts=attempts+1,"
                             " done_at=?, last_error=NULL WHERE rowid=?",
                             [(_iso(now), r) for r in rowids])

    def park(self, rowids: Sequence[int], reason: str, now: float) -> None:
        """Mark rows refused for good, with the reason (they are not retried)."""
        with self.store.transaction() as conn:
            conn.executemany("UPDATE outbox SET state='parked', attempts=attempts+1, done_at=?,"
                             " last_error=? WHERE rowid=?",
                             [(_iso(now), reason[:MAX_REASON], r) for r in rowids])

    def retry(self, rowids: Sequence[int], reason: str, at: float) -> None:
        """Count a failed attempt and make the rows due again at ``at``."""
        with self.store.transaction() as conn:
            conn.executemany("UPDATE outbox SET attempts=attempts+1, next_at=?, last_error=?"
                             " WHERE rowid=?", [(at, reason[:MAX_REASON], r) for r in rowids])

    def release(self, rowids: Sequence[int], at: float) -> None:
        """Give claimed rows back without counting an attempt (rate limit, shutdown)."""
        with self.store.transaction() as conn:
            conn.executemany("UPDATE outbox SET next_at=? WHERE rowid=?", [(at, r) for r in rowids])

    def next_due(self, sink: str) -> float | None:
        """The earliest next-attempt time of ``sink``'s pending rows, or None."""
        row = self.conn.execute("SELECT MIN(next_at) FROM outbox WHERE sink=? AND state='pending'",
                                (sink,)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def status(self) -> dict[str, SinkStatus]:
        """Counts per sink name (every sink with rows in the outbox)."""
        out: dict[str, SinkStatus] = {}
        for sink, state, failing, n in self.conn.execute(
                "SELECT sink, state, attempts>0, COUNT(*) FROM outbox GROUP BY 1, 2, 3"):
            st = out.setdefault(sink, SinkStatus())
            if state == "pending":
                st.pending += n
                st.failing += n if failing else 0
            elif state == "delivered":
                st.delivered += n
            else:
                st.parked += n
        for sink, err in self.conn.execute(
                "SELECT sink, last_error FROM outbox WHERE rowid IN (SELECT MAX(rowid) FROM outbox"
                " WHERE last_error IS NOT NULL AND state!='delivered' GROUP BY sink)"):
            out.setdefault(sink, SinkStatus()).last_error = err
        return out

    def parked(self, sink: str, limit: int = 20) -> list[tuple[str, str]]:
        """The uuids and reasons of ``sink``'s parked rows, newest first."""
        return [(u, e or "") for u, e in self.conn.execute(
            "SELECT uuid, last_error FROM outbox WHERE sink=? AND state='parked'"
            " ORDER BY rowid DESC LIMIT ?", (sink, limit))]
