"""The embedded alert store: SQLite, keyed by ``kibana.alert.uuid``.

Alert ids are deterministic, so inserting the same alert twice is a no-op:
re-scanning data, overlapping schedule windows and restarts never duplicate
alerts. The schema is versioned (``PRAGMA user_version`` plus a row in
``credwatch_schema``) and indexed by time, rule, host and uuid. Other modules
(run history, follow checkpoints) keep their own tables in the same database
file through :attr:`AlertStore.conn`, and can create them with
:meth:`AlertStore.ensure_schema`.

Many processes may share one store (several ``scan``/``run``/``watch`` at
once): the database is in WAL mode, every connection waits up to
:data:`BUSY_TIMEOUT_S` for the write lock, every write transaction starts with
``BEGIN IMMEDIATE`` (so it takes the lock before reading anything it will
write, and never fails half-way with a stale snapshot), and alerts are inserted
with ``ON CONFLICT(uuid) DO NOTHING``: the first writer stores an alert, the
others count it as already stored. Schema creation runs inside the same kind
of immediate transaction, so eight processes opening a new store at once
create it exactly once.

The database and its ``-wal``/``-shm`` files hold full command lines, which
often hold secrets: a new store file is created 0600 before SQLite opens it
(SQLite gives the ``-wal`` and ``-shm`` files the database file's mode).

Alerts bound for notification sinks (webhook, Slack, syslog, Elasticsearch)
go through an ``outbox`` table: :meth:`AlertStore.insert` writes one outbox row
per new alert and sink name in the same transaction that stores the alert, so
an alert is never stored without being queued for its sinks, nor queued
without being stored. :mod:`credwatch.sinks` delivers from it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from credwatch.errors import ConfigError
from credwatch.normalize.flatten import get_values
from credwatch.privatefile import create_private_file, make_private_dirs
from credwatch.timemath import format_ms

SCHEMA_VERSION = 1
COMPONENT = "alerts"
OUTBOX_COMPONENT = "outbox"
OUTBOX_VERSION = 1
#: How long a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_S = 30
WORKFLOW_STATUSES = ("open", "acknowledged", "closed")

_SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS credwatch_schema (
    component TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
)"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    uuid        TEXT PRIMARY KEY,
    rule_id     TEXT NOT NULL,
    rule_name   TEXT NOT NULL,
    severity    TEXT,
    risk_score  REAL,
    host        TEXT,
    user_name   TEXT,
    process     TEXT,
    event_time  TEXT,
    alert_time  TEXT NOT NULL,
    workflow_status TEXT NOT NULL DEFAULT 'open',
    updated_at  TEXT NOT NULL,
    doc         BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts(alert_time);
CREATE INDEX IF NOT EXISTS alerts_by_event_time ON alerts(event_time);
CREATE INDEX IF NOT EXISTS alerts_by_rule ON alerts(rule_id, alert_time);
CREATE INDEX IF NOT EXISTS alerts_by_host ON alerts(host, alert_time);
"""

#: One row per (sink, alert) to deliver. ``state`` is pending, delivered or parked
#: (refused by the receiver; not retried); ``next_at`` is the Unix time of the next
#: attempt; the implicit rowid keeps the order alerts were queued in.
_OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    sink        TEXT NOT NULL,
    uuid        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     REAL NOT NULL DEFAULT 0,
    last_error  TEXT,
    queued_at   TEXT NOT NULL,
    done_at     TEXT,
    PRIMARY KEY (sink, uuid)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(sink, state, next_at)
"""


def default_db_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/credwatch/alerts.db`` (``~/.local/share`` when unset)."""
    env = environ if environ is not None else os.environ
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".local" / "share")
    return Path(base) / "credwatch" / "alerts.db"


def _first(doc: Mapping[str, Any], field: str) -> Any:
    vals = get_values(doc, field)
    return vals[0] if vals else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AlertStore:
    """SQLite-backed alert store. Use as a context manager or call :meth:`close`.

    ``create_folder`` creates a missing parent folder (0700); without it a missing
    folder is a :class:`ConfigError` (``path: folder does not exist``), so a typo in
    an explicit ``--db`` does not silently start a new store somewhere unexpected.
    """

    def __init__(self, path: str | Path, *, create_folder: bool = False) -> None:
        self.path = Path(path)
        #: Sink names every new alert is queued for by :meth:`insert` (none by default).
        self.outbox_sinks: tuple[str, ...] = ()
        #: Applied to every document before it is stored (``--redact``); None keeps it as is.
        self.transform: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
        if str(path) != ":memory:":
            self._prepare_file(create_folder)
        try:
            self.conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                        check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot open the alert store {path}: {exc}") from None
        try:
            self.conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
            self._enable_wal()
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise ConfigError(f"cannot open the alert store {path}: {exc}") from None

    def _enable_wal(self) -> None:
        """Put the database in WAL mode (a setting stored in the file, so done once).

        Switching needs an exclusive lock, and SQLite answers "database is locked"
        at once, without the busy timeout, to connections that switch together
        (several processes opening a new store): retry those for up to
        :data:`BUSY_TIMEOUT_S`.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.002
        while True:
            try:
                mode = self.conn.execute("PRAGMA journal_mode").fetchone()[0]
                if str(mode).lower() != "wal":
                    self.conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY,
                                                                       sqlite3.SQLITE_LOCKED)
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)  # back off: another process is switching right now
            delay = min(delay * 2, 0.1)

    def _prepare_file(self, create_folder: bool) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            if not create_folder:
                raise ConfigError(f"{self.path}: folder does not exist")
            try:
                make_private_dirs(folder)
            except OSError as exc:
                raise ConfigError(f"{self.path}: cannot create its folder: "
                                  f"{exc.strerror or exc}") from None
        # SQLite would create the file with the umask's mode; -wal/-shm copy this one's.
        create_private_file(self.path)

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise ConfigError(
                f"alert store {self.path} has schema version {version}, newer than this "
                f"credwatch understands ({SCHEMA_VERSION}); upgrade credwatch"
            )
        if version < SCHEMA_VERSION:
            self.ensure_schema(COMPONENT, SCHEMA_VERSION, _SCHEMA)
            with self.transaction() as conn:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        # Stores created before the outbox existed get its table on first open.
        if self._component_version(OUTBOX_COMPONENT) != OUTBOX_VERSION:
            self.ensure_schema(OUTBOX_COMPONENT, OUTBOX_VERSION, _OUTBOX_SCHEMA)

    def _component_version(self, component: str) -> int | None:
        """The recorded schema version of ``component``; None when not recorded.

        Stores made before ``credwatch_schema`` existed (``user_version`` 1) have no
        such table at all: that is "not recorded", not an error.
        """
        has_table = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='credwatch_schema'"
        ).fetchone()
        if has_table is None:
            return None
        row = self.conn.execute("SELECT version FROM credwatch_schema WHERE component=?",
                                (component,)).fetchone()
        return int(row[0]) if row is not None else None

    def ensure_schema(self, component: str, version: int, ddl: str) -> None:
        """Create ``component``'s tables (``IF NOT EXISTS`` statements in ``ddl``) once.

        Runs in one immediate transaction, so concurrent processes opening a new
        store serialise here: the first creates the tables and records
        ``(component, version)`` in ``credwatch_schema``, the others find it done.
        A recorded version newer than ``version`` is a :class:`ConfigError`.
        """
        with self.transaction() as conn:
            conn.execute(_SCHEMA_TABLE)
            row = conn.execute("SELECT version FROM credwatch_schema WHERE component=?",
                               (component,)).fetchone()
            if row is not None and int(row[0]) > version:
                raise ConfigError(f"the {component} tables in {self.path} have schema version "
                                  f"{row[0]}, newer than this credwatch understands ({version})")
            if row is not None and int(row[0]) == version:
                return
            # executescript would commit the transaction first; run statements one by one.
            for statement in ddl.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO credwatch_schema (component, version) VALUES (?, ?) "
                         "ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                         (component, version))

    # -- context management ----------------------------------------------------------------
    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (alerts plus any caller tables, e.g. run history)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    # -- writes ----------------------------------------------------------------------------
    def _row(self, alert: Mapping[str, Any]) -> tuple[Any, ...]:
        if self.transform is not None:
            alert = self.transform(alert)
        uuid = _first(alert, "kibana.alert.uuid")
        if not uuid:
            raise ValueError("alert has no kibana.alert.uuid")
        return (
            uuid,
            _first(alert, "kibana.alert.rule.rule_id") or "",
            _first(alert, "kibana.alert.rule.name") or "",
            _first(alert, "kibana.alert.severity"),
            _first(alert, "kibana.alert.risk_score"),
            _first(alert, "host.name"),
            _first(alert, "user.name"),
            _first(alert, "process.name"),
            _first(alert, "kibana.alert.original_time"),
            _first(alert, "@timestamp") or _now(),
            _first(alert, "kibana.alert.workflow_status") or "open",
            _now(),
            orjson.dumps(alert, option=orjson.OPT_NON_STR_KEYS),
        )

    def insert(self, alerts: Iterable[Mapping[str, Any]],
               outbox: Sequence[str] | None = None) -> list[bool]:
        """Insert alerts; returns, per alert, True if new and False if already stored.

        Each new alert is queued in the outbox for every sink in ``outbox``
        (default :attr:`outbox_sinks`) in the same transaction; an alert
        already stored is not queued again (it was queued by whoever stored it).
        """
        sinks = tuple(self.outbox_sinks if outbox is None else outbox)
        queued_at = _now() if sinks else ""
        out: list[bool] = []
        own_txn = not self.conn.in_transaction
        if own_txn:
            self.conn.execute("BEGIN IMMEDIATE")
        try:
            for alert in alerts:
                cur = self.conn.execute(
                    "INSERT INTO alerts (uuid, rule_id, rule_name, severity, risk_score,"
                    " host, user_name, process, event_time, alert_time, workflow_status, updated_at,"
                    " doc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(uuid) DO NOTHING",
                    self._row(alert),
                )
                out.append(cur.rowcount == 1)
                if cur.rowcount == 1 and sinks:
                    uuid = _first(alert, "kibana.alert.uuid")
                    self.conn.executemany(
                        "INSERT INTO outbox (sink, uuid, queued_at) VALUES (?,?,?)"
                        " ON CONFLICT(sink, uuid) DO NOTHING",
                        [(name, uuid, queued_at) for name in sinks])
        except BaseException:
            if own_txn:
                self.conn.execute("ROLLBACK")
            raise
        if own_txn:
            self.conn.execute("COMMIT")
        return out

    def replace(self, alert: Mapping[str, Any]) -> None:
        """Overwrite a stored alert's document (used by suppression to bump counts)."""
        row = self._row(alert)
        self.conn.execute(
            "UPDATE alerts SET doc=?, updated_at=?, event_time=COALESCE(event_time, ?) WHERE uuid=?",
            (row[-1], row[-2], row[8], row[0]),
        )

    def set_status(self, uuid: str, status: str) -> bool:
        """Set ``kibana.alert.workflow_status``; True if the alert exists."""
        if status not in WORKFLOW_STATUSES:
            raise ConfigError(f"unknown workflow status {status!r}; use one of {', '.join(WORKFLOW_STATUSES)}")
        cur = self.conn.execute("UPDATE alerts SET workflow_status=?, updated_at=? WHERE uuid=?",
                                (status, _now(), uuid))
        return cur.rowcount == 1

    # -- reads -----------------------------------------------------------------------------
    def contains(self, uuid: str) -> bool:
        """True if an alert with this id is stored."""
        return self.conn.execute("SELECT 1 FROM alerts WHERE uuid=?", (uuid,)).fetchone() is not None

    def get(self, uuid: str) -> dict[str, Any] | None:
        """The stored alert document with its current workflow status, or None.

        A unique prefix of the uuid (at least 8 characters) is accepted too.
        """
        row = self.conn.execute("SELECT doc, workflow_status FROM alerts WHERE uuid=?",
                                (uuid,)).fetchone()
        if row is None and len(uuid) >= 8:
            rows = self.conn.execute(
                "SELECT doc, workflow_status FROM alerts WHERE uuid LIKE ? LIMIT 2",
                (uuid.replace("%", "").replace("_", "") + "%",)).fetchall()
            row = rows[0] if len(rows) == 1 else None
        return self._doc(row) if row else None

    @staticmethod
    def _doc(row: tuple[Any, ...]) -> dict[str, Any]:
        doc: dict[str, Any] = orjson.loads(row[0])
        _set_status(doc, row[1])
        return doc

    def select(self, *, rule: str | None = None, status: str | None = None,
               hosts: Sequence[str] | None = None, severities: Sequence[str] | None = None,
               event_since_ms: int | None = None, event_until_ms: int | None = None,
               limit: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Alerts by the time of their *event* (newest first), and how many match in all.

        ``event_since_ms``/``event_until_ms`` bound ``kibana.alert.original_time``
        (the alert's creation time when an alert has none), inclusive; ``hosts``
        and ``severities`` are any-of. The filtering and the count happen in SQLite,
        so listing the newest few of a large store reads only those documents.
        """
        where = " WHERE 1=1"
        args: list[Any] = []
        if rule:
            where += " AND (rule_id=? OR rule_name=?)"
            args += [rule, rule]
        if status:
            where += " AND workflow_status=?"
            args.append(status)
        for column, values in (("host", hosts), ("severity", severities)):
            if values is not None:
                where += f" AND {column} IN ({','.join('?' * len(values))})"
                args += list(values)
        # original_time is always written by format_ms (fixed width, UTC), so text order is time order.
        when = "COALESCE(event_time, alert_time)"
        if event_since_ms is not None:
            where += f" AND {when}>=?"
            args.append(format_ms(event_since_ms))
        if event_until_ms is not None:
            where += f" AND {when}<=?"
            args.append(format_ms(event_until_ms))
        total = int(self.conn.execute("SELECT COUNT(*) FROM alerts" + where, args).fetchone()[0])
        sql = f"SELECT doc, workflow_status FROM alerts{where} ORDER BY {when} DESC, uuid"
        if limit:
            sql += " LIMIT ?"
            args = [*args, limit]
        return [self._doc(r) for r in self.conn.execute(sql, args)], total

    def count(self) -> int:
        """Number of stored alerts."""
        return int(self.conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])

    def uuids(self) -> set[str]:
        """Every stored alert id."""
        return {r[0] for r in self.conn.execute("SELECT uuid FROM alerts")}


def _set_status(doc: dict[str, Any], status: str) -> None:
    if "kibana.alert.workflow_status" in doc:
        doc["kibana.alert.workflow_status"] = status
        return
    kibana = doc.setdefault("kibana", {})
    if isinstance(kibana, dict):
        alert = kibana.setdefault("alert", {})
        if isinstance(alert, dict):
            alert["workflow_status"] = status
