"""Run history and scheduler state, in the alert store's SQLite file.

Each rule execution is committed in **one transaction** together with the
alerts it created, the suppressed alerts it updated, its run-history row and
the rule's scheduler state (last start time and suppression bucket history).
A ``kill -9`` before the commit leaves no trace of the execution, so the
restarted scheduler runs it again from the same state; a kill after it leaves
everything. Either way no alert is duplicated (ids are deterministic and the
store is keyed by them) and none is missed (the state only moves forward with
the alerts).

Tables (``CREATE TABLE IF NOT EXISTS``; version in ``credwatch_schema``):

* ``rule_runs``: one row per execution: rule, start/end, windows, status
  (``succeeded`` / ``partial failure`` / ``failed``), message, warnings,
  errors, events searched/matched/excluded, alerts created/updated, gap, duration,
  and, for ``run --engine duckdb|spark``, what the engine read
  (:class:`~credwatch.engine.readreport.ReadReport`: the ``read_*`` columns, NULL
  for in-process executions, for executions recorded before schema 4, and for
  the figures an engine does not report);
* ``rule_schedule_state``: per rule, the last execution start and the
  suppression bucket history;
* ``suppression_instances``: suppressed alerts by ``kibana.alert.instance.id``,
  so a later execution can find the alert to update within the duration;
* ``run_inputs``: per input file and time field, where reading can start and
  what time span was read (:class:`~credwatch.engine.window.InputState`). These
  rows are facts about the files, not about executions, so they are written
  on their own as soon as an input has been read.
* ``watch_status``: per followed file, the latest status of ``credwatch watch``
  (:class:`WatchStatus`): what it read and alerted on, and how far it is behind
  the writer (lag in bytes and seconds), updated while it runs.

Several processes may share one store: every write takes SQLite's write lock
first (``BEGIN IMMEDIATE``), and an execution that another process already
recorded (same deterministic execution id) is recorded once; its alerts,
keyed by their deterministic ids, are stored once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credwatch.alerts.build import iso_ms, parse_event_time
from credwatch.alerts.store import AlertStore
from credwatch.engine.readpos import InputState
from credwatch.engine.readreport import COUNTS, ReadReport
from credwatch.errors import ConfigError

__all__ = ["SCHEMA_VERSION", "STATUSES", "RuleState", "RunRecord", "RunStore", "WatchStatus"]

COMPONENT = "runs"
#: 2 added ``run_inputs``; 3 added ``watch_status``; 4 added the ``read_*`` columns of ``rule_runs``.
SCHEMA_VERSION = 4
STATUSES = ("succeeded", "partial failure", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rule_runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_uuid  TEXT NOT NULL UNIQUE,
    rule_uuid       TEXT NOT NULL,
    rule_id         TEXT NOT NULL,
    rule_name       TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT NOT NULL,
    windows         TEXT NOT NULL,
    status          TEXT NOT NULL,
    message         TEXT NOT NULL,
    warnings        TEXT NOT NULL,
    errors          TEXT NOT NULL,
    events_searched INTEGER NOT NULL,
    events_matched  INTEGER NOT NULL,
    events_excluded INTEGER NOT NULL,
    alerts_created  INTEGER NOT NULL,
    alerts_updated  INTEGER NOT NULL,
    suppressed      INTEGER NOT NULL,
    gap_ms          INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rule_runs_by_rule ON rule_runs(rule_uuid, started_at);
CREATE INDEX IF NOT EXISTS rule_runs_by_start ON rule_runs(started_at);
CREATE TABLE IF NOT EXISTS rule_schedule_state (
    rule_uuid       TEXT PRIMARY KEY,
    rule_id         TEXT NOT NULL,
    last_started_at TEXT NOT NULL,
    last_status     TEXT NOT NULL,
    bucket_history  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS suppression_instances (
    alert_uuid      TEXT PRIMARY KEY,
    instance_id     TEXT NOT NULL,
    rule_uuid       TEXT NOT NULL,
    alert_time      TEXT NOT NULL,
    execution_uuid  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS suppression_by_instance ON suppression_instances(instance_id, alert_time);
CREATE TABLE IF NOT EXISTS run_inputs (
    path          TEXT NOT NULL,
    fields        TEXT NOT NULL,
    dev           INTEGER NOT NULL,
    ino           INTEGER NOT NULL,
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    head_len      INTEGER NOT NULL,
    head_crc      INTEGER NOT NULL,
    ordered       INTEGER NOT NULL,
    mark_offset   INTEGER NOT NULL,
    mark_line     INTEGER NOT NULL,
    scanned_to    INTEGER NOT NULL,
    scanned_lines INTEGER NOT NULL,
    min_ms        INTEGER,
    max_ms        INTEGER,
    PRIMARY KEY (path, fields)
);
CREATE TABLE IF NOT EXISTS watch_status (
    path            TEXT PRIMARY KEY,
    pid             INTEGER NOT NULL,
    input_format    TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    running         INTEGER NOT NULL,
    lines           INTEGER NOT NULL,
    events          INTEGER NOT NULL,
    prefiltered     INTEGER NOT NULL,
    alerts          INTEGER NOT NULL,
    failed          INTEGER NOT NULL,
    read_offset     INTEGER NOT NULL,
    file_size       INTEGER NOT NULL,
    lag_bytes       INTEGER NOT NULL,
    lag_seconds     REAL NOT NULL,
    max_lag_seconds REAL NOT NULL
);
""" + "".join(
    # Schema 4. ensure_schema runs all of this in one immediate transaction, once per store
    # (new, or older than 4), so the columns are added exactly once and old rows keep NULLs.
    f"ALTER TABLE rule_runs ADD COLUMN read_{name} {'TEXT' if name == 'engine' else 'INTEGER'};\n"
    for name in ("engine", *COUNTS))
_RUN_COLUMNS = ("execution_uuid, rule_uuid, rule_id, rule_name, started_at, finished_at, windows, status,"
                " message, warnings, errors, events_searched, events_matched, events_excluded,"
                " alerts_created, alerts_updated, suppressed, gap_ms, duration_ms, "
                + ", ".join(f"read_{name}" for name in ("engine", *COUNTS)))
_WATCH_COLUMNS = ("path, pid, input_format, started_at, updated_at, running, lines, events, prefiltered,"
                  " alerts, failed, read_offset, file_size, lag_bytes, lag_seconds, max_lag_seconds")


@dataclass
class RunRecord:
    """One rule execution, as stored in ``rule_runs``."""

    execution_uuid: str
    rule_uuid: str
    rule_id: str
    rule_name: str
    started_at: datetime
    finished_at: datetime
    windows: list[dict[str, Any]]
    status: str
    message: str
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    events_searched: int = 0
    events_matched: int = 0
    events_excluded: int = 0
    alerts_created: int = 0
    alerts_updated: int = 0
    suppressed: int = 0
    gap_ms: int = 0
    duration_ms: int = 0
    #: What ``run --engine duckdb|spark`` read; None for an in-process execution.
    read: ReadReport | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (``credwatch runs --format json``)."""
        return {
            "execution_uuid": self.execution_uuid, "rule_uuid": self.rule_uuid,
            "rule_id": self.rule_id, "rule_name": self.rule_name,
            "started_at": iso_ms(self.started_at), "finished_at": iso_ms(self.finished_at),
            "windows": self.windows, "status": self.status, "message": self.message,
            "warnings": self.warnings, "errors": self.errors,
            "events_searched": self.events_searched, "events_matched": self.events_matched,
            "events_excluded": self.events_excluded, "alerts_created": self.alerts_created,
            "alerts_updated": self.alerts_updated, "suppressed": self.suppressed,
            "gap_ms": self.gap_ms, "duration_ms": self.duration_ms,
            "read": self.read.to_json() if self.read is not None else None,
        }


@dataclass
class RuleState:
    """The scheduler's memory of one rule."""

    rule_uuid: str
    rule_id: str
    last_started_at: datetime
    last_status: str
    bucket_history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class WatchStatus:
    """The latest status of a ``credwatch watch`` of one file, as stored in ``watch_status``."""

    path: str
    pid: int
    input_format: str
    started_at: datetime
    updated_at: datetime
    #: False once the watch stopped (the figures are then its last ones).
    running: bool
    lines: int = 0
    events: int = 0
    #: Events passed over by the literal prefilter without being decoded.
    prefiltered: int = 0
    alerts: int = 0
    failed: int = 0
    #: Where reading is in the live file, and its size, when the status was taken.
    read_offset: int = 0
    file_size: int = 0
    #: Bytes written and not read yet, and at least how long the oldest has waited.
    lag_bytes: int = 0
    lag_seconds: float = 0.0
    #: The largest ``lag_seconds`` seen since the watch started.
    max_lag_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "path": self.path, "pid": self.pid, "input_format": self.input_format,
            "started_at": iso_ms(self.started_at), "updated_at": iso_ms(self.updated_at),
            "running": self.running, "lines": self.lines, "events": self.events,
            "prefiltered": self.prefiltered, "alerts": self.alerts, "failed": self.failed,
            "read_offset": self.read_offset, "file_size": self.file_size,
            "lag_bytes": self.lag_bytes, "lag_seconds": round(self.lag_seconds, 3),
            "max_lag_seconds": round(self.max_lag_seconds, 3),
        }


def _time(text: str) -> datetime:
    t = parse_event_time(text)
    if t is None:
        raise ConfigError(f"corrupt time {text!r} in the run history")
    return t


class RunStore:
    """Run history and scheduler state in an :class:`AlertStore`'s database."""

    def __init__(self, store: AlertStore) -> None:
        self.store = store
        self.conn: sqlite3.Connection = store.conn
        try:
            # One immediate transaction: concurrent processes on a new store serialise here.
            store.ensure_schema(COMPONENT, SCHEMA_VERSION, _SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot prepare the run history in {store.path}: {exc}") from None

    # -- state ------------------------------------------------------------------------------
    def state(self, rule_uuid: str) -> RuleState | None:
        """The scheduler state of a rule, or None if it never ran."""
        row = self.conn.execute(
            "SELECT rule_uuid, rule_id, last_started_at, last_status, bucket_history "
            "FROM rule_schedule_state WHERE rule_uuid=?", (rule_uuid,)).fetchone()
        if row is None:
            return None
        return RuleState(row[0], row[1], _time(row[2]), row[3], json.loads(row[4]))

    def runs_at(self, rule_uuid: str, started_at: datetime) -> int:
        """How many executions of the rule are recorded with this start time."""
        return int(self.conn.execute(
            "SELECT COUNT(*) FROM rule_runs WHERE rule_uuid=? AND started_at=?",
            (rule_uuid, iso_ms(started_at))).fetchone()[0])

    def latest_instance(self, instance_id: str, since: datetime) -> tuple[str, str] | None:
        """Newest suppressed alert ``(uuid, execution uuid)`` of an instance created ≥ ``since``.

        Closed alerts are skipped, as Kibana's suppression search excludes them.
        """
        rows = self.conn.execute(
            "SELECT s.alert_uuid, s.execution_uuid FROM suppression_instances s "
            "JOIN alerts a ON a.uuid = s.alert_uuid "
            "WHERE s.instance_id=? AND s.alert_time>=? AND a.workflow_status != 'closed' "
            "ORDER BY s.alert_time DESC LIMIT 1", (instance_id, iso_ms(since))).fetchall()
        return (rows[0][0], rows[0][1]) if rows else None

    # -- the atomic commit ------------------------------------------------------------------
    def commit(self, record: RunRecord, *, created: Sequence[Mapping[str, Any]] = (),
               updated: Sequence[Mapping[str, Any]] = (),
               instances: Sequence[tuple[str, str, str]] = (),
               bucket_history: Sequence[Mapping[str, Any]] = ()) -> list[bool]:
        """Store one execution and everything it produced in a single transaction.

        Returns, per created alert, whether it was new to the store.
        """
        with self.store.transaction() as conn:
            flags = self.store.insert(created)
            for doc in updated:
                self.store.replace(doc)
            conn.executemany(
                "INSERT OR IGNORE INTO suppression_instances VALUES (?, ?, ?, ?, ?)",
                [(uuid, iid, record.rule_uuid, when, record.execution_uuid)
                 for iid, uuid, when in instances])
            # Another process may have recorded this very execution (same id) meanwhile.
            values = _run_values(record)
            conn.execute(
                f"INSERT OR IGNORE INTO rule_runs ({_RUN_COLUMNS}) VALUES ({','.join('?' * len(values))})"
                # Another process may have committed this same (deterministic) execution.
                " ON CONFLICT(execution_uuid) DO NOTHING", values)
            conn.execute(
                "INSERT INTO rule_schedule_state VALUES (?, ?, ?, ?, ?) ON CONFLICT(rule_uuid) "
                "DO UPDATE SET rule_id=excluded.rule_id, last_started_at=excluded.last_started_at,"
                " last_status=excluded.last_status, bucket_history=excluded.bucket_history",
                (record.rule_uuid, record.rule_id, iso_ms(record.started_at), record.status,
                 json.dumps(list(bucket_history))))
        return flags

    # -- input positions -------------------------------------------------------------------
    def input_state(self, path: str, fields: str) -> InputState | None:
        """What was last recorded about reading ``path`` under the time field ``fields``."""
        row = self.conn.execute(
            "SELECT path, fields, dev, ino, size, mtime_ns, head_len, head_crc, ordered,"
            " mark_offset, mark_line, scanned_to, scanned_lines, min_ms, max_ms"
            " FROM run_inputs WHERE path=? AND fields=?", (path, fields)).fetchone()
        return InputState(*row) if row is not None else None

    def save_input_state(self, state: InputState) -> None:
        """Record ``state`` (the latest reader wins: every stored state is true of the file)."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO run_inputs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (state.path, state.fields, state.dev, state.ino, state.size, state.mtime_ns,
                 state.head_len, state.head_crc, state.ordered, state.mark_offset,
                 state.mark_line, state.scanned_to, state.scanned_lines, state.min_ms,
                 state.max_ms))

    # -- watch status -----------------------------------------------------------------------
    def save_watch_status(self, status: WatchStatus) -> None:
        """Record the latest status of the watch of ``status.path`` (replacing the previous one)."""
        with self.store.transaction() as conn:
            conn.execute(
                f"INSERT OR REPLACE INTO watch_status ({_WATCH_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (status.path, status.pid, status.input_format, iso_ms(status.started_at),
                 iso_ms(status.updated_at), int(status.running), status.lines, status.events,
                 status.prefiltered, status.alerts, status.failed, status.read_offset,
                 status.file_size, status.lag_bytes, status.lag_seconds, status.max_lag_seconds))

    def watch_statuses(self, path: str | None = None) -> list[WatchStatus]:
        """The stored watch statuses (of ``path`` only, when given), by path."""
        sql = f"SELECT {_WATCH_COLUMNS} FROM watch_status"
        rows = (self.conn.execute(sql + " WHERE path=?", (path,)) if path is not None
                else self.conn.execute(sql + " ORDER BY path"))
        return [WatchStatus(r[0], int(r[1]), r[2], _time(r[3]), _time(r[4]), bool(r[5]), *r[6:])
                for r in rows]

    # -- history ----------------------------------------------------------------------------
    def history(self, *, rule: str | None = None, status: str | None = None,
                since: str | None = None, limit: int | None = None,
                newest_first: bool = True) -> list[RunRecord]:
        """Recorded executions, filtered by rule (uuid, rule_id or name), status and start."""
        sql = f"SELECT {_RUN_COLUMNS} FROM rule_runs WHERE 1=1"
        args: list[Any] = []
        if rule:
            sql += " AND (rule_uuid=? OR rule_id=? OR rule_name=?)"
            args += [rule, rule, rule]
        if status:
            sql += " AND status=?"
            args.append(status)
        if since:
            sql += " AND started_at>=?"
            args.append(since)
        sql += f" ORDER BY started_at {'DESC' if newest_first else 'ASC'}, id"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return list(self._records(self.conn.execute(sql, args)))

    @staticmethod
    def _records(rows: Iterator[tuple[Any, ...]]) -> Iterator[RunRecord]:
        for r in rows:
            yield RunRecord(
                execution_uuid=r[0], rule_uuid=r[1], rule_id=r[2], rule_name=r[3],
                started_at=_time(r[4]), finished_at=_time(r[5]), windows=json.loads(r[6]),
                status=r[7], message=r[8], warnings=json.loads(r[9]), errors=json.loads(r[10]),
                events_searched=r[11], events_matched=r[12], events_excluded=r[13],
                alerts_created=r[14], alerts_updated=r[15], suppressed=r[16], gap_ms=r[17],
                duration_ms=r[18], read=_read_report(r[19:]))


def _run_values(record: RunRecord) -> tuple[Any, ...]:
    """The ``rule_runs`` row of ``record``, in :data:`_RUN_COLUMNS` order."""
    read = record.read
    figures = ((read.engine, *(getattr(read, name) for name in COUNTS)) if read is not None
               else (None,) * (1 + len(COUNTS)))
    return (record.execution_uuid, record.rule_uuid, record.rule_id, record.rule_name,
            iso_ms(record.started_at), iso_ms(record.finished_at),
            json.dumps(record.windows), record.status, record.message,
            json.dumps(record.warnings), json.dumps(record.errors), record.events_searched,
            record.events_matched, record.events_excluded, record.alerts_created,
            record.alerts_updated, record.suppressed, record.gap_ms, record.duration_ms, *figures)


def _read_report(cols: Sequence[Any]) -> ReadReport | None:
    """The stored ``read_*`` columns as a report (None: no engine read for that execution)."""
    if cols[0] is None:
        return None
    return ReadReport(str(cols[0]), **dict(zip(COUNTS, cols[1:], strict=True)))
