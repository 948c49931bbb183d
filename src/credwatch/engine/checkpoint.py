"""SQLite-backed read positions for followed files.

One row per followed path: ``checkpoints(path, inode, offset, updated)``. A
follower stores ``(inode, offset)`` after it has fully handled the line that
ends at ``offset``; after a restart it resumes there (see
:class:`credwatch.sources.follow.Follower`), so nothing is read twice or
skipped.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Checkpoint", "CheckpointStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    path    TEXT PRIMARY KEY,
    inode   INTEGER NOT NULL,
    offset  INTEGER NOT NULL,
    updated TEXT NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A stored read position."""

    path: str
    inode: int
    offset: int
    updated: str  #: ISO-8601 UTC time of the last update


class CheckpointStore:
    """Read and write checkpoints in a SQLite database (a path or an open connection).

    Each :meth:`set` commits, so a crash right after it keeps the position.
    A connection passed in is shared, not closed by :meth:`close`.
    """

    def __init__(self, db: str | os.PathLike[str] | sqlite3.Connection) -> None:
        if isinstance(db, sqlite3.Connection):
            self._conn, self._owned = db, False
        else:
            self._conn, self._owned = sqlite3.connect(os.fspath(db)), True
        with self._conn:
            self._conn.execute(_SCHEMA)

    def get(self, path: str) -> Checkpoint | None:
        """The stored position for ``path``, or None."""
        row = self._conn.execute(
            "SELECT path, inode, offset, updated FROM checkpoints WHERE path = ?", (path,)
        ).fetchone()
        if row is None:
            return None
        return Checkpoint(str(row[0]), int(row[1]), int(row[2]), str(row[3]))

    def set(self, path: str, inode: int, offset: int, *, when: datetime | None = None) -> None:
        """Store (and commit) the position for ``path``."""
        stamp = (when or datetime.now(UTC)).isoformat()
        with self._conn:
            self._conn.execute(
                "INSERT INTO checkpoints (path, inode, offset, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(path) DO UPDATE SET inode = excluded.inode, "
                "offset = excluded.offset, updated = excluded.updated",
                (path, inode, offset, stamp),
            )

    def delete(self, path: str) -> None:
        """Forget the position for ``path``."""
        with self._conn:
            self._conn.execute("DELETE FROM checkpoints WHERE path = ?", (path,))

    def all(self) -> list[Checkpoint]:
        """Every stored checkpoint, by path."""
        rows = self._conn.execute(
            "SELECT path, inode, offset, updated FROM checkpoints ORDER BY path").fetchall()
        return [Checkpoint(str(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in rows]

    def close(self) -> None:
        """Close the connection if this store opened it."""
        if self._owned:
            self._conn.close()
