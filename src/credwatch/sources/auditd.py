"""Raw ``audit.log`` reader: line parser and event reassembly.

A kernel audit *event* is several *records* (SYSCALL, EXECVE, CWD, PATH,
PROCTITLE, BPRM_FCAPS …) sharing one ``audit(<sec.ms>:<serial>)`` stamp. The
log carries no end-of-event marker and records of concurrent events
interleave, so :class:`Reassembler` groups by stamp and closes an event when it
has been quiet for ``quiet_records`` records (or ``idle_seconds`` when
following live), and at end of input. The buffer is bounded by
``max_pending`` events and ``max_records_per_event`` records per event.

Line forms understood:

* ENRICHED (``log_format = ENRICHED``): raw record, byte ``0x1d``, then
  interpreted fields such as ``UID="root"``; also the same with the ``0x1d``
  lost (upper-case keys glued on with a space);
* RAW (``log_format = RAW``);
* ``node=<host>`` prefixes (``name_format``), and a free-form prefix before
  ``node=``/``type=`` such as a syslog header;
* kernel/dmesg form ``type=1300 audit(…):`` with numeric types;
* ``ausearch -i`` output: ``msg=audit(12/01/26 11:33:14.643:3) :`` with
  already-decoded, unquoted values, and ``----`` separators.

Nothing here raises on bad data: malformed lines are counted by reason in a
:class:`Diagnostics` with ``file:line`` samples, and every other event is
still produced. Value decoding lives in :mod:`credwatch.sources.auditd_values`.
"""

from __future__ import annotations

import gzip
import os
import re
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from credwatch.errors import SourceError

__all__ = [
    "AuditEvent",
    "AuditRecord",
    "Diagnostics",
    "Reassembler",
    "iter_audit_events",
    "iter_audit_files",
    "iter_numbered_audit_events",
    "looks_like_audit",
    "open_lines",
    "parse_line",
    "rotated_files",
    "sniff_path",
]

_HEADER_RE = re.compile(
    rb"(?:\A|\s)(?:node=(?P<node>\S+) )?type=(?P<type>[A-Za-z0-9_\[\]]+) "
    rb"(?:msg=)?audit\((?P<stamp>[^)]*)\)\s*:\s?"
)
# Seconds up to year 9999 (12 digits), a serial that fits 64 bits (20 digits): anything
# longer is not a real stamp, and converting thousands of digits would raise or take time.
_RAW_STAMP_RE = re.compile(r"\A([0-9]{1,12})\.([0-9]{1,9}):([0-9]{1,20})\Z")
_SERIAL_RE = re.compile(r"\A[0-9]{1,20}\Z")
_KEY_RE = re.compile(rb"\A[A-Za-z0-9_\-\[\]]+\Z")
_INTERP_KEY_RE = re.compile(rb"\A([a-z0-9_\-]+(?:\[\d+\])?)=")
_ENRICH_KEY_RE = re.compile(rb"\A[A-Z][A-Z0-9_\-]*\Z")

#: Numeric record types of the kernel/dmesg form, for the records an exec produces.
NUMERIC_TYPES = {
    "1300": "SYSCALL", "1302": "PATH", "1305": "CONFIG_CHANGE", "1306": "SOCKADDR",
    "1307": "CWD", "1309": "EXECVE", "1320": "EOE", "1321": "BPRM_FCAPS",
    "1327": "PROCTITLE", "1006": "LOGIN",
}

#: Defaults for the bounded reassembly buffer.
DEFAULT_QUIET_RECORDS = 2000
DEFAULT_MAX_PENDING = 4096
DEFAULT_MAX_RECORDS_PER_EVENT = 4096


@dataclass(slots=True)
class AuditRecord:
    """One parsed audit.log line."""

    type: str
    node: str | None
    stamp: str  #: the text inside ``audit(…)`` before the serial, e.g. ``1796124794.651``
    serial: int
    time: datetime
    fields: list[tuple[str, bytes]]  #: raw tokens (quotes/hex kept), in log order
    enriched: dict[str, str]  #: ENRICHED interpretations (``UID`` → ``root``)
    text: str  #: ``type=… msg=audit(…): …`` without node prefix and enrichment
    path: str
    lineno: int
    interpreted: bool = False  #: an ``ausearch -i`` line: values are already decoded
    truncated: bool = False  #: the line ended inside a quoted value

    def get(self, key: str) -> bytes | None:
        """The first raw token for ``key``, or None."""
        for k, v in self.fields:
            if k == key:
                return v
        return None


@dataclass(slots=True)
class AuditEvent:
    """All records of one ``audit(<stamp>:<serial>)``, in arrival order."""

    node: str | None
    stamp: str
    serial: int
    time: datetime
    records: list[AuditRecord]
    path: str
    lineno: int  #: line of the first record seen

    @property
    def id(self) -> str:
        """Stable identity ``node:stamp:serial``: the same event read twice has the same id."""
        return f"{self.node or ''}:{self.stamp}:{self.serial}"

    @property
    def interpreted(self) -> bool:
        """True when the records came from ``ausearch -i`` output."""
        return any(r.interpreted for r in self.records)

    def of_type(self, rtype: str) -> list[AuditRecord]:
        """The records of one type, in log order."""
        return [r for r in self.records if r.type == rtype]

    def first(self, rtype: str) -> AuditRecord | None:
        """The first record of one type, or None."""
        for r in self.records:
            if r.type == rtype:
                return r
        return None


@dataclass
class Diagnostics:
    """Counts of what the reader skipped or repaired, with ``file:line`` samples.

    ``skipped`` counts lines/records that produced no data (``garbage``,
    ``bad-header``, ``late-record``, ``oversized-event``); ``warnings`` counts
    data used despite a defect (``truncated-record``, ``forced-close``,
    ``no-final-newline``). Nothing is ever raised.
    """

    lines: int = 0
    records: int = 0
    events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    record_types: Counter[str] = field(default_factory=Counter)
    samples: list[SourceError] = field(default_factory=list)
    max_samples: int = 20

    def skip(self, reason: str, path: str, lineno: int, detail: str = "") -> None:
        """Count a line or record that was dropped, keeping a located sample."""
        self.skipped[reason] += 1
        self._sample(reason, path, lineno, detail)

    def warn(self, reason: str, path: str, lineno: int, detail: str = "") -> None:
        """Count a defect in data that was still used."""
        self.warnings[reason] += 1
        self._sample(reason, path, lineno, detail)

    def _sample(self, reason: str, path: str, lineno: int, detail: str) -> None:
        if len(self.samples) < self.max_samples:
            msg = f"{reason}: {detail}" if detail else reason
            self.samples.append(SourceError(msg, path=path, line=lineno))

    @property
    def skipped_total(self) -> int:
        """Number of lines/records that yielded nothing."""
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One human-readable line, e.g. for a ``--stats`` footer."""
        parts = [f"{self.lines} lines", f"{self.records} records", f"{self.events} events"]
        if self.skipped:
            parts.append("skipped " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())))
        if self.warnings:
            parts.append("warnings " + ", ".join(f"{k}={v}" for k, v in sorted(self.warnings.items())))
        return "; ".join(parts)


# --------------------------------------------------------------------------- parsing


def _split_enrichment(rest: bytes) -> tuple[bytes, bytes]:
    sep = rest.find(b"\x1d")
    if sep >= 0:
        return rest[:sep], rest[sep + 1:]
    return rest, b""


def _tokenize(body: bytes) -> tuple[list[tuple[str, bytes]], bool, int]:
    """Split ``k=v k="v" msg='k=v …'`` into pairs.

    Returns the pairs, whether the body ended inside a quote, and the offset of
    the first upper-case key (ENRICHED fields glued on without ``0x1d``) or -1.
    """
    out: list[tuple[str, bytes]] = []
    truncated = False
    glued_at = -1
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in b" \t":
            i += 1
        if i >= n:
            break
        start = i
        eq = body.find(b"=", i)
        sp = body.find(b" ", i)
        if eq < 0 or (0 <= sp < eq):
            # A bare word ("avc:  denied  { read } for"): not a field.
            i = n if sp < 0 else sp + 1
            continue
        key = body[i:eq]
        if not _KEY_RE.match(key):
            i = n if sp < 0 else sp + 1
            continue
        if _ENRICH_KEY_RE.match(key):
            glued_at = start
            break
        j = eq + 1
        opener = body[j:j + 1]
        closer = {b'"': b'"', b"'": b"'", b"{": b"}"}.get(opener)
        if closer is not None:
            end = body.find(closer, j + 1)
            if end < 0:
                value, i, truncated = body[j:], n, True
            else:
                value, i = body[j:end + 1], end + 1
        else:
            end = body.find(b" ", j)
            value, i = (body[j:], n) if end < 0 else (body[j:end], end)
        skey = key.decode("ascii")
        if skey == "msg" and opener == b"'":
            inner, inner_trunc, _ = _tokenize(value[1:-1] if value.endswith(b"'") else value[1:])
            out.extend(inner)
            truncated = truncated or inner_trunc
            continue
        out.append((skey, value))
    return out, truncated, glued_at


def _tokenize_interpreted(body: bytes) -> list[tuple[str, bytes]]:
    """``ausearch -i`` values are unquoted and may hold spaces: a word without
    ``key=`` continues the previous value. An argument that itself contains
    `` x=y`` after a space is ambiguous in this format and splits."""
    out: list[tuple[str, bytes]] = []
    for word in body.rstrip(b" ").split(b" "):
        m = _INTERP_KEY_RE.match(word)
        if m:
            out.append((m.group(1).decode("ascii"), word[m.end():]))
        elif out:
            key, value = out[-1]
            out[-1] = (key, value + b" " + word)
    return out


def _parse_enriched(tail: bytes) -> dict[str, str]:
    # ENRICHED fields have upper-case keys only; values are quoted, braced or bare.
    res: dict[str, str] = {}
    for m in re.finditer(rb'([A-Z][A-Z0-9_\-]*)=("[^"]*"|\{[^}]*\}|\S+)', tail):
        v = m.group(2)
        if v[:1] == b'"':
            v = v[1:-1]
        res[m.group(1).decode("ascii")] = v.decode("utf-8", errors="replace")
    return res


def _parse_stamp(stamp: str, tz: tzinfo) -> tuple[str, int, datetime] | None:
    m = _RAW_STAMP_RE.match(stamp)
    if m:
        sec, frac, serial = m.groups()
        try:
            when = datetime.fromtimestamp(int(sec), UTC) + timedelta(milliseconds=int(frac[:3].ljust(3, "0")))
        except (OverflowError, ValueError, OSError):
            return None  # past year 9999: reported as a bad header
        return f"{sec}.{frac}", int(serial), when
    head, sep, serial_s = stamp.rpartition(":")
    if not sep or not _SERIAL_RE.match(serial_s) or len(head) > 40:
        return None
    for fmt in ("%m/%d/%y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S.%f", "%m/%d/%y %H:%M:%S", "%m/%d/%Y %H:%M:%S"):
        try:
            naive = datetime.strptime(head, fmt)
        except ValueError:
            continue
        return head, int(serial_s), naive.replace(tzinfo=tz).astimezone(UTC)
    return None


def parse_line(line: bytes, *, path: str = "<input>", lineno: int = 0,
               interpreted_tz: tzinfo = UTC) -> AuditRecord | str:
    """Parse one log line into an :class:`AuditRecord`, or return the reason it is not one.

    The reason is a short key (``"garbage"``, ``"bad-header"``, ``"blank"``,
    ``"separator"``) for :class:`Diagnostics`. ``interpreted_tz`` is the zone
    of ``ausearch -i`` local timestamps.
    """
    line = line.rstrip(b"\r\n")
    if not line.strip():
        return "blank"
    if line.startswith(b"----"):
        return "separator"
    m = _HEADER_RE.search(line)
    if not m:
        return "garbage"
    stamp_s = m.group("stamp").decode("ascii", errors="replace")
    interpreted = "/" in stamp_s
    parsed = _parse_stamp(stamp_s, interpreted_tz)
    if parsed is None:
        return "bad-header"
    stamp, serial, when = parsed
    rtype = m.group("type").decode("ascii")
    rtype = NUMERIC_TYPES.get(rtype, rtype)
    rest = line[m.end():]
    raw_body, enrich_tail = _split_enrichment(rest)
    truncated = False
    if interpreted:
        fields = _tokenize_interpreted(raw_body)
        enriched: dict[str, str] = {}
    else:
        fields, truncated, glued_at = _tokenize(raw_body)
        enriched = _parse_enriched(enrich_tail) if enrich_tail else {}
        if glued_at >= 0:
            enriched.update(_parse_enriched(raw_body[glued_at:]))
            raw_body = raw_body[:glued_at].rstrip(b" ")
    node = m.group("node")
    header = line[m.start("type") - len(b"type="):m.end()]
    text = (header + raw_body).decode("utf-8", errors="replace")
    return AuditRecord(
        type=rtype, node=node.decode("utf-8", errors="replace") if node else None,
        stamp=stamp, serial=serial, time=when, fields=fields, enriched=enriched,
        text=text, path=path, lineno=lineno, interpreted=interpreted, truncated=truncated,
    )


# --------------------------------------------------------------------------- reassembly

EventKey = tuple[str | None, str, int]


@dataclass(slots=True)
class _Pending:
    event: AuditEvent
    last_seq: int
    last_time: float


class Reassembler:
    """Group records into events by ``(node, stamp, serial)`` with a bounded buffer.

    An event is closed when ``quiet_records`` further records arrived without
    one of its own, when ``idle_seconds`` passed without one (see
    :meth:`flush_idle`, for live following), when an ``EOE`` record arrives,
    when the buffer exceeds ``max_pending`` (the least recently active event is
    closed early and counted as ``forced-close``), or at :meth:`flush`. A
    record arriving for an event already closed is counted as ``late-record``
    with its location rather than emitted as a bogus second event.
    """

    def __init__(self, *, quiet_records: int = DEFAULT_QUIET_RECORDS,
                 max_pending: int = DEFAULT_MAX_PENDING,
                 max_records_per_event: int = DEFAULT_MAX_RECORDS_PER_EVENT,
                 idle_seconds: float | None = None,
                 diagnostics: Diagnostics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if quiet_records < 1 or max_pending < 1 or max_records_per_event < 1:
            raise ValueError("reassembly limits must be positive")
        self.quiet_records = quiet_records
        self.max_pending = max_pending
        self.max_records_per_event = max_records_per_event
        self.idle_seconds = idle_seconds
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self._clock = clock
        self._pending: OrderedDict[EventKey, _Pending] = OrderedDict()
        self._seq = 0
        self._closed: set[EventKey] = set()
        self._closed_order: deque[EventKey] = deque()

    @property
    def pending(self) -> int:
        """Events currently buffered."""
        return len(self._pending)

    def is_pending(self, key: EventKey) -> bool:
        """True while the event ``(node, stamp, serial)`` is buffered."""
        return key in self._pending

    def feed(self, rec: AuditRecord) -> list[AuditEvent]:
        """Add one record; return the events this closes (possibly none)."""
        self._seq += 1
        key: EventKey = (rec.node, rec.stamp, rec.serial)
        out: list[AuditEvent] = []
        if key in self._closed and rec.type == "EOE":
            pass  # the end-of-event marker of an event already closed: nothing is lost
        elif key in self._closed:
            self.diagnostics.skip("late-record", rec.path, rec.lineno,
                                  f"{rec.type} for audit({rec.stamp}:{rec.serial}) after its event closed")
        elif rec.type == "EOE":
            pend = self._pending.pop(key, None)
            if pend is not None:
                out.append(self._close(key, pend))
        else:
            now = self._clock()
            pend = self._pending.get(key)
            if pend is None:
                ev = AuditEvent(node=rec.node, stamp=rec.stamp, serial=rec.serial, time=rec.time,
                                records=[rec], path=rec.path, lineno=rec.lineno)
                self._pending[key] = _Pending(ev, self._seq, now)
            else:
                if len(pend.event.records) >= self.max_records_per_event:
                    self.diagnostics.skip("oversized-event", rec.path, rec.lineno,
                                          f"more than {self.max_records_per_event} records")
                else:
                    pend.event.records.append(rec)
                pend.last_seq, pend.last_time = self._seq, now
                self._pending.move_to_end(key)
        # The dict is ordered by last activity, so expired events are at the front.
        while self._pending:
            k, p = next(iter(self._pending.items()))
            if self._seq - p.last_seq < self.quiet_records and len(self._pending) <= self.max_pending:
                break
            if len(self._pending) > self.max_pending:
                self.diagnostics.warn("forced-close", p.event.path, p.event.lineno,
                                      f"buffer full ({self.max_pending} events)")
            del self._pending[k]
            out.append(self._close(k, p))
        return out

    def flush_idle(self, now: float | None = None) -> list[AuditEvent]:
        """Close events with no record for ``idle_seconds`` (no-op when that is None)."""
        if self.idle_seconds is None:
            return []
        now = self._clock() if now is None else now
        out: list[AuditEvent] = []
        for k in [k for k, p in self._pending.items() if now - p.last_time >= self.idle_seconds]:
            out.append(self._close(k, self._pending.pop(k)))
        return out

    def flush(self) -> list[AuditEvent]:
        """Close every buffered event (end of input)."""
        out = [self._close(k, p) for k, p in self._pending.items()]
        self._pending.clear()
        return out

    def _close(self, key: EventKey, pend: _Pending) -> AuditEvent:
        self._closed.add(key)
        self._closed_order.append(key)
        # Remember closed keys for late-record detection, boundedly.
        while len(self._closed_order) > max(self.max_pending, 1024):
            self._closed.discard(self._closed_order.popleft())
        self.diagnostics.events += 1
        return pend.event


# --------------------------------------------------------------------------- high level


def feed_lines(lines: Iterable[tuple[int, bytes]], reassembler: Reassembler, *,
               path: str, interpreted_tz: tzinfo = UTC) -> Iterator[AuditEvent]:
    """Parse numbered lines and feed them to ``reassembler``; yield closed events.

    Does not flush at the end, so that one reassembler can span several files
    (an event may straddle a rotation).
    """
    diag = reassembler.diagnostics
    last: bytes = b"\n"
    last_no = 0
    for lineno, line in lines:
        last, last_no = line, lineno
        diag.lines += 1
        rec = parse_line(line, path=path, lineno=lineno, interpreted_tz=interpreted_tz)
        if isinstance(rec, str):
            # ausearch's "----" separators are ignored: it sometimes splits one
            # serial over two blocks (LOGIN apart from its SYSCALL), and grouping
            # by serial rebuilds what the raw log holds.
            if rec not in ("blank", "separator"):
                excerpt = line[:80].decode("utf-8", errors="replace").rstrip("\r\n")
                diag.skip(rec, path, lineno, repr(excerpt))
            continue
        diag.records += 1
        diag.record_types[rec.type] += 1
        if rec.truncated:
            diag.warn("truncated-record", path, lineno, "line ends inside a quoted value")
        yield from reassembler.feed(rec)
    if last_no and not last.endswith(b"\n"):
        diag.warn("no-final-newline", path, last_no, "last line has no newline (maybe half-written)")


def iter_audit_events(lines: Iterable[bytes], *, path: str = "<input>",
                      diagnostics: Diagnostics | None = None,
                      quiet_records: int = DEFAULT_QUIET_RECORDS,
                      max_pending: int = DEFAULT_MAX_PENDING,
                      max_records_per_event: int = DEFAULT_MAX_RECORDS_PER_EVENT,
                      first_lineno: int = 1,
                      interpreted_tz: tzinfo = UTC) -> Iterator[AuditEvent]:
    """Reassemble the audit events of one stream of lines (bytes, newline kept or not).

    Events are yielded as they close; everything still buffered is yielded at
    the end. Bad lines are counted in ``diagnostics``.
    """
    yield from iter_numbered_audit_events(
        enumerate(lines, first_lineno), path=path, diagnostics=diagnostics,
        quiet_records=quiet_records, max_pending=max_pending,
        max_records_per_event=max_records_per_event, interpreted_tz=interpreted_tz)


def iter_numbered_audit_events(lines: Iterable[tuple[int, bytes]], *, path: str = "<input>",
                               diagnostics: Diagnostics | None = None,
                               quiet_records: int = DEFAULT_QUIET_RECORDS,
                               max_pending: int = DEFAULT_MAX_PENDING,
                               max_records_per_event: int = DEFAULT_MAX_RECORDS_PER_EVENT,
                               interpreted_tz: tzinfo = UTC) -> Iterator[AuditEvent]:
    """:func:`iter_audit_events` over ``(line number, line)`` pairs, numbered by the caller.

    The literal fast path passes only some lines of a file, with their true numbers.
    """
    reasm = Reassembler(quiet_records=quiet_records, max_pending=max_pending,
                        max_records_per_event=max_records_per_event, diagnostics=diagnostics)
    yield from feed_lines(lines, reasm, path=path, interpreted_tz=interpreted_tz)
    yield from reasm.flush()


def open_lines(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Yield the lines of a file, transparently gunzipping ``.gz``/gzip content."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
        fh.seek(0)
        if magic == b"\x1f\x8b":
            with gzip.open(fh, "rb") as gz:
                yield from gz
        else:
            yield from fh


_ROTATED_RE = re.compile(r"\.(\d+)(\.gz)?\Z")


def rotated_files(path: str | os.PathLike[str]) -> list[Path]:
    """``audit.log`` plus its rotations (``audit.log.1``, ``audit.log.2.gz`` …), oldest first.

    auditd's ROTATE keeps ``.1`` as the newest rotation, so higher numbers
    come first and the live file last.
    """
    base = Path(path)
    found: list[tuple[int, Path]] = []
    if base.parent.is_dir():
        for p in base.parent.iterdir():
            if p.name.startswith(base.name + "."):
                m = _ROTATED_RE.search(p.name[len(base.name):])
                if m and m.start() == 0:
                    found.append((int(m.group(1)), p))
    ordered = [p for _, p in sorted(found, key=lambda t: -t[0])]
    if base.exists():
        ordered.append(base)
    return ordered


def iter_audit_files(paths: Sequence[str | os.PathLike[str]], *,
                     diagnostics: Diagnostics | None = None,
                     quiet_records: int = DEFAULT_QUIET_RECORDS,
                     max_pending: int = DEFAULT_MAX_PENDING,
                     interpreted_tz: tzinfo = UTC) -> Iterator[AuditEvent]:
    """Reassemble events across several files read in the given order (see :func:`rotated_files`)."""
    reasm = Reassembler(quiet_records=quiet_records, max_pending=max_pending,
                        diagnostics=diagnostics)
    for p in paths:
        yield from feed_lines(enumerate(open_lines(p), 1), reasm, path=str(p),
                              interpreted_tz=interpreted_tz)
    yield from reasm.flush()


def looks_like_audit(first_bytes: bytes) -> bool:
    """Cheap auto-detection: does this start like an audit log (raw, ENRICHED or ``ausearch -i``)?

    Looks at the first few non-blank lines; gzip content must be decompressed first
    (see :func:`sniff_path`).
    """
    seen = 0
    for line in first_bytes.splitlines()[:20]:
        if not line.strip() or line.startswith(b"----"):
            continue
        if _HEADER_RE.search(line):
            return True
        seen += 1
        if seen >= 3:
            break
    return False


def sniff_path(path: str | os.PathLike[str], size: int = 4096) -> bool:
    """:func:`looks_like_audit` on the first ``size`` bytes of a (possibly gzipped) file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(size)
            if head[:2] == b"\x1f\x8b":
                fh.seek(0)
                with gzip.open(fh, "rb") as gz:
                    head = gz.read(size)
    except (OSError, EOFError):
        return False
    return looks_like_audit(head)
