"""Read positions of followed files, kept in the alert store's SQLite database.

One row per file *identity*: ``follow_checkpoints(dev, ino, path, offset,
line, fingerprint, skip, updated)``, primary key ``(dev, ino)``. ``path`` is
the real path of what the user asked to follow, so ``./audit.log`` and
``/var/log/audit/audit.log`` are one checkpoint; ``fingerprint`` is the file's
first bytes (see :mod:`credwatch.sources.follow_files`), which tells a file
truncated in place or an inode number reused from the file we were reading;
``skip`` lists the positions of records whose evaluation failed, so a
restart that re-reads them passes them silently.

Why SQLite and not a file written to a temporary name and renamed: the
position lives in the same database as the alerts, and
:meth:`CheckpointStore.save` runs inside the caller's transaction. A batch's
alerts and the position after it are committed together (WAL journal, atomic
and durable across a crash), so the store can never hold a position past
alerts it does not hold.

Checkpoints of older versions (table ``checkpoints(path, inode, offset,
updated)``) are migrated on open: the device comes from the file if it still
has that inode (else from its folder), the fingerprint is unknown (empty:
identity alone decides) and the line number is counted again on resume.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from credwatch.sources.follow_files import Position

__all__ = ["MAX_SKIP", "Checkpoint", "CheckpointStore", "SkipKey"]

#: A record position: ``(dev, ino, offset of its first line)``.
SkipKey = tuple[int, int, int]
#: Failed-record positions remembered per followed file (the newest are kept).
MAX_SKIP = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS follow_checkpoints (
    dev         INTEGER NOT NULL,
    ino         INTEGER NOT NULL,
    path        TEXT NOT NULL,
    offset      INTEGER NOT NULL,
    line        INTEGER NOT NULL,
    fingerprint BLOB NOT NULL,
    skip        TEXT NOT NULL DEFAULT '[]',
    updated     TEXT NOT NULL,
    PRIMARY KEY (dev, ino)
);
CREATE INDEX IF NOT EXISTS follow_checkpoints_by_path ON follow_checkpoints(path);
"""
_COLUMNS = "dev, ino, path, offset, line, fingerprint, skip, updated"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A stored read position for a followed path."""

    path: str  #: real path of the followed file
    position: Position
    skip: frozenset[SkipKey]
    updated: str  #: ISO-8601 UTC time of the last update


def _row(row: tuple[object, ...]) -> Checkpoint:
    dev, ino, path, offset, line, fp, skip, updated = row
    keys: frozenset[SkipKey] = frozenset()
    try:
        raw = orjson.loads(str(skip))
        keys = frozenset((int(k[0]), int(k[1]), int(k[2])) for k in raw[:MAX_SKIP])
    except (orjson.JSONDecodeError, TypeError, ValueError, IndexError, KeyError):
        pass  # an unreadable skip list only means a failed record may be reported again
    pos = Position(int(str(dev)), int(str(ino)), int(str(offset)), int(str(line)),
                   bytes(fp) if isinstance(fp, (bytes, bytearray, memoryview)) else b"")
    return Checkpoint(str(path), pos, keys, str(updated))


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class CheckpointStore:
    """Read and write checkpoints in a SQLite database (a path or an open connection).

    A connection passed in is shared, not closed by :meth:`close`.
    """

    def __init__(self, db: str | os.PathLike[str] | sqlite3.Connection) -> None:
        if isinstance(db, sqlite3.Connection):
            self._conn, self._owned = db, False
        else:
            self._conn, self._owned = sqlite3.connect(os.fspath(db), isolation_level=None), True
        with self._atomic():
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    self._conn.execute(stmt)
            self._migrate_legacy()

    @contextmanager
    def _atomic(self) -> Iterator[None]:
        """Join the caller's transaction, or run one of our own."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _migrate_legacy(self) -> None:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='checkpoints'").fetchone()
        if not exists:
            return
        for path, inode, offset, updated in self._conn.execute(
                "SELECT path, inode, offset, updated FROM checkpoints").fetchall():
            real = os.path.realpath(str(path))
            ident = _identity(real)
            if ident is None or ident[1] != int(inode):
                folder = _identity(os.path.dirname(real) or ".")
                ident = (folder[0] if folder else 0, int(inode))
            self._conn.execute(
                f"INSERT OR IGNORE INTO follow_checkpoints ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                (ident[0], ident[1], real, int(offset), -1, b"", "[]", str(updated)))
        self._conn.execute("DROP TABLE checkpoints")

    def load(self, path: str | os.PathLike[str]) -> Checkpoint | None:
        """The position for ``path``: the row of the file now there, else the path's last one."""
        real = os.path.realpath(os.fspath(path))
        ident = _identity(real)
        row = None
        if ident is not None:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM follow_checkpoints "
                                     "WHERE dev = ? AND ino = ?", ident).fetchone()
        if row is None:
            row = self._conn.execute(f"SELECT {_COLUMNS} FROM follow_checkpoints WHERE path = ? "
                                     "ORDER BY updated DESC LIMIT 1", (real,)).fetchone()
        return _row(row) if row is not None else None

    def save(self, path: str | os.PathLike[str], pos: Position, skip: Iterable[SkipKey] = (),
             *, when: datetime | None = None) -> None:
        """Store the position of the followed ``path`` (in the caller's transaction, if any).

        The path's rows for other files (rotated away) are dropped: one followed
        path has one position.
        """
        real = os.path.realpath(os.fspath(path))
        keys = sorted(skip)[-MAX_SKIP:]
        stamp = (when or datetime.now(UTC)).isoformat()
        with self._atomic():
            self._conn.execute("DELETE FROM follow_checkpoints WHERE path = ? "
                               "AND NOT (dev = ? AND ino = ?)", (real, pos.dev, pos.ino))
            self._conn.execute(
                f"INSERT INTO follow_checkpoints ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(dev, ino) DO UPDATE SET path = excluded.path, "
                "offset = excluded.offset, line = excluded.line, "
                "fingerprint = excluded.fingerprint, skip = excluded.skip, "
                "updated = excluded.updated",
                (pos.dev, pos.ino, real, pos.offset, pos.line, pos.fingerprint,
                 orjson.dumps(keys).decode(), stamp))

    def delete(self, path: str | os.PathLike[str]) -> None:
        """Forget the position of the followed ``path``."""
        real = os.path.realpath(os.fspath(path))
        with self._atomic():
            self._conn.execute("DELETE FROM follow_checkpoints WHERE path = ?", (real,))

    def all(self) -> list[Checkpoint]:
        """Every stored checkpoint, by path."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM follow_checkpoints ORDER BY path, dev, ino").fetchall()
        return [_row(r) for r in rows]

    def close(self) -> None:
        """Close the connection if this store opened it."""
        if self._owned:
            self._conn.close()
