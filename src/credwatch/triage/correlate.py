"""Bounded correlation of an alert with what ran around it on the same host and session.

The investigation guide asks what happened *before* the read (the parent
chain, preceding commands) and *right after* it (piping, encoding,
exfiltration). A scan sees every event, matching or not, so the
:class:`Correlator` keeps a small summary of each (:class:`Seen`, a tuple of a
few short strings) in a per-host ring buffer and holds each alert back until
its follow-up window has passed.

Trade-off, documented for the callers (``scan``, ``run``, ``watch``): an
alert is emitted up to ``window`` seconds of *event time* late (or at end of
input / :meth:`Correlator.flush`), in exchange for knowing whether data left
the host right after the read. Event time, not wall time, drives release, so a
replayed file gives the same result as a live stream; a follower with a quiet
input passes ``now`` to :meth:`Correlator.release` so alerts are not held for ever.
``window=0`` releases every alert at once (no follow-ups, earlier events only).

Memory is flat: at most ``max_hosts`` hosts x ``max_per_host`` summaries, at
most ``max_pending`` held alerts (the oldest is released early, marked
``complete: false``, when more arrive) and ``max_related`` related events per
alert. Arguments are cut to ``max_args`` x ``max_arg_len`` characters.
"""

from __future__ import annotations

import shlex
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from credwatch.alerts.build import iso_ms, parse_event_time
from credwatch.normalize.flatten import get_values
from credwatch.triage.context import AUDIT_UNSET, basename, command_indicators

NETWORK_TOOLS = frozenset({"curl", "wget", "nc", "ncat", "netcat", "socat", "scp", "sftp",
                           "rsync", "ssh", "ftp", "tftp", "telnet", "aws", "gsutil", "az",
                           "rclone", "s3cmd"})
ENCODER_TOOLS = frozenset({"base64", "base32", "basenc", "xxd", "od", "hexdump", "openssl",
                           "gpg", "uuencode"})
ARCHIVE_TOOLS = frozenset({"tar", "zip", "gzip", "bzip2", "xz", "zstd", "7z", "7za", "pigz"})
WRITE_TOOLS = frozenset({"cp", "mv", "dd", "tee", "install", "rsync"})


class Seen(NamedTuple):
    """The compact summary kept for every observed event."""

    seq: int
    ts: float
    host: str
    session: str | None
    pid: int | None
    ppid: int | None
    name: str
    args: tuple[str, ...]


@dataclass
class _Pending:
    """An alert held until its follow-up window closes."""

    alert: dict[str, Any]
    me: Seen
    deadline: float
    before: list[dict[str, Any]]
    after: list[dict[str, Any]] = field(default_factory=list)
    ancestors: list[dict[str, Any]] = field(default_factory=list)


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.isdigit():
        return int(v)
    return None


_MISSING = object()
_PARTS: dict[str, list[str]] = {}


def _lookup(event: Mapping[str, Any], path: str) -> Any:
    """The raw value at ``path`` by a flat key or a plain nested walk; ``_MISSING`` if neither.

    This is the fast path of :meth:`Correlator.observe` (every event of a
    scan): the general resolver handles mixed shapes when this gives up.
    """
    v = event.get(path, _MISSING)
    if v is not _MISSING:
        return v
    parts = _PARTS.get(path)
    if parts is None:
        parts = _PARTS[path] = path.split(".")
    cur: Any = event
    for part in parts:
        if not isinstance(cur, dict):
            return _MISSING
        cur = cur.get(part, _MISSING)
        if cur is _MISSING:
            return _MISSING
    return cur


def _first(event: Mapping[str, Any], path: str) -> Any:
    v = _lookup(event, path)
    if isinstance(v, list) and v and isinstance(v[0], (str, int, float)):
        return v[0]
    if v is None or isinstance(v, (str, int, float)):
        return v
    vals = get_values(event, path)
    return vals[0] if vals else None


def _args(event: Mapping[str, Any]) -> list[Any]:
    v = _lookup(event, "process.args")
    if isinstance(v, list) and all(isinstance(a, str) for a in v):
        return v
    return get_values(event, "process.args")


def category(name: str, args: tuple[str, ...]) -> list[str]:
    """Follow-up categories of a command: network, encoding, archive, file-write, exfil."""
    cats: list[str] = []
    if name in NETWORK_TOOLS:
        cats.append("network")
    if name in ENCODER_TOOLS:
        cats.append("encoding")
    if name in ARCHIVE_TOOLS:
        cats.append("archive")
    if name in WRITE_TOOLS:
        cats.append("file-write")
    inds = command_indicators(args) if args else []
    if any(i.exfil for i in inds):
        cats.append("exfil")
    if any(i.type == "script-network" for i in inds) and "network" not in cats:
        cats.append("network")
    return cats


class Correlator:
    """Per-host ring buffers of event summaries, and alerts waiting for follow-ups."""

    def __init__(self, *, window: float = 120.0, max_per_host: int = 512,
                 max_hosts: int = 512, max_pending: int = 1000, max_related: int = 20,
                 max_args: int = 12, max_arg_len: int = 200) -> None:
        self.window = float(window)
        self.max_per_host = max_per_host
        self.max_hosts = max_hosts
        self.max_pending = max_pending
        self.max_related = max_related
        self.max_args = max_args
        self.max_arg_len = max_arg_len
        self._hosts: OrderedDict[str, deque[Seen]] = OrderedDict()
        self._pending: deque[_Pending] = deque()
        self._pending_hosts: dict[str, int] = {}
        self._seq = 0
        self._watermark = float("-inf")
        self._last_event: Mapping[str, Any] | None = None
        self._last_seen: Seen | None = None

    # -- sizes (for tests and diagnostics) ------------------------------------------------
    def buffered(self) -> int:
        """Event summaries held across all hosts."""
        return sum(len(d) for d in self._hosts.values())

    def hosts(self) -> int:
        """Hosts with a buffer."""
        return len(self._hosts)

    def pending(self) -> int:
        """Alerts waiting for their window to close."""
        return len(self._pending)

    # -- observation ----------------------------------------------------------------------
    def summarize(self, event: Mapping[str, Any]) -> Seen:
        """The compact :class:`Seen` for ``event`` (no reference to the event is kept)."""
        ts_raw = _first(event, "@timestamp")
        t = parse_event_time(ts_raw) if ts_raw is not None else None
        ts = t.timestamp() if t else (self._watermark if self._watermark > float("-inf") else 0.0)
        host = _first(event, "host.name") or _first(event, "host.hostname") or ""
        session = None
        sl = _first(event, "process.session_leader.entity_id")
        if sl is not None:
            session = f"sl:{sl}"
        else:
            ses = _first(event, "auditd.session")
            if ses is not None and str(ses) != AUDIT_UNSET:
                session = f"ses:{ses}"
            else:
                slpid = _first(event, "process.session_leader.pid")
                if slpid is not None:
                    session = f"slpid:{slpid}"
        args = _args(event)
        name = _first(event, "process.name")
        if name is None:
            exe = _first(event, "process.executable") or (args[0] if args else "")
            name = basename(str(exe))
        cut = self.max_arg_len
        short = tuple(str(a)[:cut] for a in args[: self.max_args])
        self._seq += 1
        return Seen(self._seq, ts, str(host), session, _int(_first(event, "process.pid")),
                    _int(_first(event, "process.parent.pid")), str(name), short)

    def observe(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Record one event (every event of the scan); returns alerts whose window has passed.

        Released alerts are enriched in place with ``credwatch.triage.related``
        and friends (see :meth:`attach`).
        """
        seen = self.summarize(event)
        self._last_event = event
        self._last_seen = seen
        buf = self._hosts.get(seen.host)
        if buf is None:
            if len(self._hosts) >= self.max_hosts:
                self._hosts.popitem(last=False)  # least recently active host
            buf = self._hosts[seen.host] = deque(maxlen=self.max_per_host)
        else:
            self._hosts.move_to_end(seen.host)
        horizon = seen.ts - self.window
        while buf and buf[0].ts < horizon:
            buf.popleft()
        buf.append(seen)
        if seen.host in self._pending_hosts:
            for p in self._pending:
                if p.me.host == seen.host and seen.seq != p.me.seq \
                        and len(p.after) < self.max_related and p.me.ts <= seen.ts <= p.deadline:
                    rel = self._relation(p.me, seen)
                    if rel:
                        p.after.append(self._entry(p.me, seen, rel, "after"))
        if seen.ts > self._watermark:
            self._watermark = seen.ts
        return self.release()

    # -- alerts ---------------------------------------------------------------------------
    def add_alert(self, alert: dict[str, Any], event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Hold ``alert`` (built from ``event``) until its follow-up window closes.

        Call after :meth:`observe` of the same event. Returns alerts released
        early because more than ``max_pending`` are held.
        """
        if event is self._last_event and self._last_seen is not None:
            me = self._last_seen
        else:
            me = self.summarize(event)
        before: list[dict[str, Any]] = []
        buf = self._hosts.get(me.host, deque())
        for s in reversed(buf):
            if s.seq >= me.seq or s.ts < me.ts - self.window:
                continue
            rel = self._relation(me, s)
            if rel:
                before.append(self._entry(me, s, rel, "before"))
                if len(before) >= self.max_related:
                    break
        before.reverse()
        pend = _Pending(alert, me, me.ts + self.window, before, ancestors=self._ancestors(me, buf))
        self._pending.append(pend)
        self._pending_hosts[me.host] = self._pending_hosts.get(me.host, 0) + 1
        out: list[dict[str, Any]] = []
        while len(self._pending) > self.max_pending:
            out.append(self._pop(complete=False))
        return out + self.release()

    def _pop(self, *, complete: bool) -> dict[str, Any]:
        p = self._pending.popleft()
        left = self._pending_hosts[p.me.host] - 1
        if left:
            self._pending_hosts[p.me.host] = left
        else:
            del self._pending_hosts[p.me.host]
        return self.attach(p, complete=complete)

    def release(self, now: float | None = None) -> list[dict[str, Any]]:
        """Alerts whose window closed by the event-time watermark (or ``now``, epoch seconds).

        Alerts leave in the order they were added; one whose event time is
        far ahead of the others waits for them (order is kept for the sinks).
        """
        mark = self._watermark if now is None else max(self._watermark, now)
        out: list[dict[str, Any]] = []
        while self._pending and (self.window <= 0 or self._pending[0].deadline < mark):
            out.append(self._pop(complete=True))
        return out

    def flush(self) -> list[dict[str, Any]]:
        """Release every held alert (end of input); follow-ups are what was seen so far."""
        out: list[dict[str, Any]] = []
        while self._pending:
            out.append(self._pop(complete=self._watermark > self._pending[0].deadline))
        return out

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _relation(me: Seen, other: Seen) -> str | None:
        if other.pid is not None and other.pid == me.pid and other.seq != me.seq:
            return "same-process"
        if other.pid is not None and other.pid == me.ppid:
            return "parent"
        if me.pid is not None and other.ppid == me.pid:
            return "child"
        if me.ppid is not None and other.ppid == me.ppid:
            return "sibling"
        if me.session is not None and other.session == me.session:
            return "same-session"
        return None

    def _entry(self, me: Seen, s: Seen, rel: str, when: str) -> dict[str, Any]:
        cats = category(basename(s.name), s.args)
        try:
            time = iso_ms(_dt(s.ts))
        except (OverflowError, OSError, ValueError):
            time = None
        return {"time": time, "delta_s": round(s.ts - me.ts, 3), "when": when,
                "relation": rel, "process": s.name, "pid": s.pid, "ppid": s.ppid,
                "args": shlex.join(s.args), "categories": cats}

    def _ancestors(self, me: Seen, buf: deque[Seen]) -> list[dict[str, Any]]:
        """The pid -> ppid chain as far as the buffer remembers (at most 8), nearest first."""
        by_pid: dict[int, Seen] = {}
        for s in buf:
            if s.pid is not None and s.seq < me.seq:
                by_pid[s.pid] = s  # latest exec of each pid wins
        out: list[dict[str, Any]] = []
        ppid = me.ppid
        visited: set[int] = set()
        while ppid is not None and ppid in by_pid and ppid not in visited and len(out) < 8:
            visited.add(ppid)
            parent = by_pid[ppid]
            out.append({"pid": parent.pid, "name": parent.name,
                        "args": shlex.join(parent.args[:6])})
            ppid = parent.ppid
        return out

    def attach(self, p: _Pending, *, complete: bool) -> dict[str, Any]:
        """Write the correlation fields into the held alert and return it."""
        followups = [e for e in p.after if e["categories"]]
        exfil = any("network" in e["categories"] or "exfil" in e["categories"] for e in p.after)
        kinds = sorted({c for e in p.after for c in e["categories"]})
        alert = p.alert
        alert["credwatch.triage.related"] = p.before + p.after
        alert["credwatch.triage.followup_exfil"] = exfil
        alert["credwatch.triage.followup_categories"] = kinds
        alert["credwatch.triage.correlation"] = {
            "window_s": self.window, "complete": complete, "before": len(p.before),
            "after": len(p.after), "followups_of_interest": len(followups),
            "ancestors": p.ancestors,
        }
        return alert


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)
