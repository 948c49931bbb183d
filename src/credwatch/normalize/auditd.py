"""Map reassembled audit events to ECS the way Elastic's auditd_manager does.

auditd_manager and Auditbeat's auditd module both run go-libaudit's
``aucoalesce`` over an event's records and then build the document in
``auditbeat/module/auditd/audit_linux.go``. For an exec (a SYSCALL record
whose syscall is ``execve`` or ``execveat``) that gives:

=============================  =============================================
``@timestamp``                 the audit stamp (millisecond precision, UTC)
``event.kind``                 ``event``
``event.category/type``        ``["process"]`` / ``["start"]``
``event.action``               ``executed``
``event.outcome``              ``success`` or ``failure`` from ``success=``
``event.original``             the event's records, ``type=… msg=audit(…): …``,
                               without ``node=`` prefix or ENRICHED suffix
``process.name``               ``comm`` (the kernel's 15-byte task name)
``process.executable``         ``exe``
``process.args``               decoded ``a0…aN`` (split args joined)
``process.args_count``         ``argc``
``process.title``              PROCTITLE, NUL separators turned into spaces
``process.working_directory``  CWD
``process.pid/parent.pid``     ``pid`` / ``ppid`` (integers)
``user.*``                     ``uid``→``user.id``, ``gid``→``user.group.id``,
                               ``euid``/``egid``→``user.effective.*``,
                               ``suid``/``sgid``→``user.saved.*``,
                               ``fsuid``/``fsgid``→``user.filesystem.*``,
                               ``auid``→``user.audit.id``; an unset id
                               (4294967295) is left out, and ``user.effective``
                               is dropped when it equals ``user`` (as Auditbeat
                               does). Names come from ENRICHED fields
                               (``UID="root"``) or an optional resolver.
``auditd.*``                   ``message_type``, ``sequence``, ``result``,
                               ``session`` (unless unset), ``data`` (``syscall``
                               name, ``arch`` name, ``a0`` to ``a3``, ``exit``,
                               ``tty``, ``argc``, ``key``…), ``summary``, ``paths``
``file.*``                     the executed file from PATH item 0
``tags``                       the rule key(s), as Auditbeat puts them
``host.os.type``               ``linux``; ``host.name`` from ``node=``
``service.type``               ``auditd``
=============================  =============================================

Deliberate differences from go-libaudit, each because it would lose data:

* an empty argument (``a2=""``) is kept as ``""``; go-libaudit drops empty
  values and then fails the whole EXECVE record;
* an event whose SYSCALL record was lost but whose EXECVE survived is still
  mapped (``event.outcome`` is then absent) instead of becoming an error
  document, so a credential read is not missed because one record was dropped.

Other record types (logins, CONFIG_CHANGE, non-exec syscalls, DAEMON_*…) are
**counted and skipped**: :func:`to_ecs` returns None and
:class:`NormalizeStats` counts them by message type. The seed rule only looks
at process executions.
"""

from __future__ import annotations

import grp
import pwd
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from credwatch.normalize.audit_event import AuditEvent, AuditRecord
from credwatch.normalize.audit_values import (
    assemble_execve,
    plain_text,
    proctitle_text,
    value_text,
)

__all__ = [
    "ARCH_NAMES",
    "NameResolver",
    "NormalizeStats",
    "is_exec_event",
    "iter_ecs",
    "local_name_resolver",
    "syscall_name",
    "to_ecs",
]

#: A resolver maps ("user" | "group", numeric id) to a name, or None.
NameResolver = Callable[[str, str], str | None]

#: AUDIT_ARCH_* values (hex, as in ``arch=``) → go-libaudit's names.
ARCH_NAMES = {
    "c000003e": "x86_64", "40000003": "i386", "c00000b7": "aarch64", "40000028": "arm",
    "c0000015": "ppc64le", "80000015": "ppc64", "80000016": "s390x", "c00000f3": "riscv64",
}

#: Exec syscall numbers per architecture (the only syscalls this mapper needs by number).
_EXEC_SYSCALLS: dict[str, dict[int, str]] = {
    "x86_64": {59: "execve", 322: "execveat"},
    "i386": {11: "execve", 358: "execveat"},
    "aarch64": {221: "execve", 281: "execveat"},
    "riscv64": {221: "execve", 281: "execveat"},
    "arm": {11: "execve", 387: "execveat"},
    "ppc64": {11: "execve", 362: "execveat"},
    "ppc64le": {11: "execve", 362: "execveat"},
    "s390x": {11: "execve", 354: "execveat"},
}
EXEC_SYSCALLS = frozenset({"execve", "execveat"})

_UNSET = {"4294967295", "-1", "unset"}
_DECIMAL = re.compile(r"\A[0-9]{1,18}\Z")
_OCTAL = re.compile(r"\A[0-7]{1,12}\Z")

# (audit field, ECS path under user, kind, ENRICHED key)
_ID_FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("uid", "", "user", "UID"),
    ("gid", "group", "group", "GID"),
    ("euid", "effective", "user", "EUID"),
    ("egid", "effective.group", "group", "EGID"),
    ("suid", "saved", "user", "SUID"),
    ("sgid", "saved.group", "group", "SGID"),
    ("fsuid", "filesystem", "user", "FSUID"),
    ("fsgid", "filesystem.group", "group", "FSGID"),
    ("auid", "audit", "user", "AUID"),
)

# SYSCALL fields that become top-level ECS (process/user/session) rather than auditd.data.
_SYSCALL_CONSUMED = {
    "pid", "ppid", "comm", "exe", "ses", "success", "items", "key", "syscall", "arch",
    *(f[0] for f in _ID_FIELDS),
}


_OWN_RECORDS = {"SYSCALL", "EXECVE", "PATH", "CWD", "PROCTITLE", "SOCKADDR"}


@dataclass
class NormalizeStats:
    """How many events were mapped, and which were skipped (by message type)."""

    exec_events: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def local_name_resolver() -> NameResolver:
    """A resolver backed by this machine's passwd/group databases (cached).

    Only right for logs written on this machine, e.g. when following the local
    ``/var/log/audit/audit.log`` in RAW format.
    """
    cache: dict[tuple[str, str], str | None] = {}

    def resolve(kind: str, ident: str) -> str | None:
        key = (kind, ident)
        if key not in cache:
            name: str | None = None
            try:
                num = int(ident)
                name = pwd.getpwuid(num).pw_name if kind == "user" else grp.getgrgid(num).gr_name
            except (KeyError, ValueError, OverflowError):
                name = None
            cache[key] = name
        return cache[key]

    return resolve


def syscall_name(rec: AuditRecord) -> str | None:
    """The syscall name of a SYSCALL record (``execve``), or its number as text if unknown."""
    raw = plain_text(rec.get("syscall"))
    if raw is None:
        return None
    number = _int(raw)
    if number is None:
        return raw  # ausearch -i already wrote the name
    arch = _arch(rec)
    name = _EXEC_SYSCALLS.get(arch or "", {}).get(number)
    if name is None:
        name = rec.enriched.get("SYSCALL")  # ENRICHED knows every syscall
    return name or raw


def _arch(rec: AuditRecord) -> str | None:
    raw = plain_text(rec.get("arch"))
    if raw is None:
        return None
    return ARCH_NAMES.get(raw.lower(), rec.enriched.get("ARCH", raw))


def is_exec_event(event: AuditEvent) -> bool:
    """True for an execve/execveat event (or an EXECVE whose SYSCALL record was lost)."""
    sc = event.first("SYSCALL")
    if sc is not None:
        return syscall_name(sc) in EXEC_SYSCALLS
    return event.first("EXECVE") is not None


def _iso(event: AuditEvent) -> str:
    return event.time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{event.time.microsecond // 1000:03d}Z"


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    cur = doc
    parts = dotted.split(".")
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


def _int(text: str | None) -> int | None:
    """An ASCII decimal of at most 18 digits as an int (None otherwise: never int() of any text)."""
    if text is None or not _DECIMAL.match(text):
        return None
    return int(text)


def _users(sc: AuditRecord, resolver: NameResolver | None, interpreted: bool) -> tuple[dict[str, Any], list[str]]:
    user: dict[str, Any] = {}
    names: list[str] = []
    for afield, path, kind, ekey in _ID_FIELDS:
        value = plain_text(sc.get(afield))
        if value is None or value in _UNSET:
            continue
        prefix = f"{path}." if path else ""
        name: str | None = None
        if value.isdigit():
            _put(user, f"{prefix}id", value)
            enriched = sc.enriched.get(ekey)
            if enriched and enriched != "unset" and not enriched.startswith("unknown("):
                name = enriched
            elif resolver is not None:
                name = resolver(kind, value)
        elif interpreted:
            name = value  # ausearch -i replaced the id with its name
        if name:
            _put(user, f"{prefix}name", name)
            if kind == "user":
                names.append(name)
    eff = user.get("effective")
    if isinstance(eff, dict):
        for suffix in ("id", "name"):
            if suffix in user and eff.get(suffix) == user[suffix]:
                # Auditbeat removes user.effective when it repeats user.
                del user["effective"]
                break
    return user, names


def _paths(event: AuditEvent) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    interp = event.interpreted
    for rec in event.of_type("PATH"):
        entry: dict[str, str] = {}
        for key, token in rec.fields:
            text = value_text(token, interpreted=interp) if key == "name" else plain_text(token)
            if text is not None and text not in ("", "?", "(null)"):
                entry.setdefault(key, text)
        out.append(entry)
    return out


def _file(paths: list[dict[str, str]], first_path: AuditRecord | None) -> dict[str, Any] | None:
    if not paths:
        return None
    p = next((x for x in paths if x.get("nametype") not in ("PARENT", "UNKNOWN")), paths[0])
    f: dict[str, Any] = {}
    if "name" in p:
        f["path"] = p["name"]
    for src, dst in (("inode", "inode"), ("rdev", "device"), ("ouid", "uid"), ("ogid", "gid")):
        if src in p:
            f[dst] = p[src]
    mode = p.get("mode")
    if mode and _OCTAL.match(mode):
        f["mode"] = "0" + format(int(mode, 8) & 0o777, "o").zfill(3)
    if first_path is not None:
        for ekey, dst in (("OUID", "owner"), ("OGID", "group")):
            if ekey in first_path.enriched:
                f[dst] = first_path.enriched[ekey]
    return f or None


@dataclass(slots=True)
class _Draft:
    """The parts of one exec document while they are filled in, record type by record type."""

    event: AuditEvent
    interp: bool
    ev: dict[str, Any]
    auditd: dict[str, Any]
    doc: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    process: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)


def to_ecs(event: AuditEvent, *, resolver: NameResolver | None = None,
           stats: NormalizeStats | None = None) -> dict[str, Any] | None:
    """Map one reassembled event to an ECS document (nested dicts), or None if not an exec."""
    if not is_exec_event(event):
        if stats is not None:
            first = event.first("SYSCALL") or event.records[0]
            label = first.type.lower() if first.type != "SYSCALL" else f"syscall:{syscall_name(first)}"
            stats.skipped[label] += 1
        return None
    draft = _Draft(event, event.interpreted, ev={
        "kind": "event", "category": ["process"], "type": ["start"], "action": "executed",
        "module": "auditd"}, auditd={"message_type": "syscall", "sequence": event.serial})
    draft.doc["@timestamp"] = _iso(event)
    draft.doc["event"] = draft.ev
    sc = event.first("SYSCALL")
    if sc is not None:
        _from_syscall(draft, sc, resolver)
    _from_execve(draft)
    _from_title_and_cwd(draft)
    _fold_other_records(draft)
    _from_paths(draft)
    if stats is not None:
        stats.exec_events += 1
    return _finish(draft)


def _from_syscall(d: _Draft, sc: AuditRecord, resolver: NameResolver | None) -> None:
    """Outcome, session, process ids and names, rule key, syscall data and users."""
    success = plain_text(sc.get("success"))
    if success is not None:
        ok = success.lower() in ("yes", "1") or success.lower().startswith("suc")
        d.ev["outcome"] = "success" if ok else "failure"
        d.auditd["result"] = "success" if ok else "fail"
    ses = plain_text(sc.get("ses"))
    if ses is not None and ses not in _UNSET:
        d.auditd["session"] = ses
    pid, ppid = _int(plain_text(sc.get("pid"))), _int(plain_text(sc.get("ppid")))
    if pid is not None:
        d.process["pid"] = pid
    if ppid is not None:
        d.process["parent"] = {"pid": ppid}
    comm = value_text(sc.get("comm"), interpreted=d.interp)
    if comm:
        d.process["name"] = comm
    exe = value_text(sc.get("exe"), interpreted=d.interp)
    if exe:
        d.process["executable"] = exe
    key = value_text(sc.get("key"), interpreted=d.interp)
    if key:
        # A multi-key rule joins keys with 0x01.
        d.tags = [k for k in key.split("\x01") if k]
        d.data["key"] = key
    _syscall_data(d, sc)
    user, names = _users(sc, resolver, d.interp)
    if user:
        d.doc["user"] = user
    if names:
        d.doc["related"] = {"user": sorted(set(names))}
    d.auditd["summary"] = _summary(sc, exe or comm)


def _syscall_data(d: _Draft, sc: AuditRecord) -> None:
    d.data["syscall"] = syscall_name(sc)
    arch = _arch(sc)
    if arch:
        d.data["arch"] = arch
    for k, token in sc.fields:
        if k in _SYSCALL_CONSUMED or k.startswith("subj"):
            continue
        text = plain_text(token)
        if text is not None and text not in ("", "?", "(null)"):
            d.data.setdefault(k, text)


def _summary(sc: AuditRecord, how: str | None) -> dict[str, Any]:
    actor = {}
    auid, uid = plain_text(sc.get("auid")), plain_text(sc.get("uid"))
    if auid is not None:
        actor["primary"] = "unset" if auid in _UNSET else auid
    if uid is not None:
        actor["secondary"] = uid
    summary: dict[str, Any] = {"actor": actor} if actor else {}
    if how:
        summary["how"] = how
    return summary


def _from_execve(d: _Draft) -> None:
    execve = assemble_execve([r.fields for r in d.event.of_type("EXECVE")], interpreted=d.interp)
    if execve is None:
        return
    if execve.args:
        d.process["args"] = execve.args
    d.process["args_count"] = execve.count
    if execve.argc is not None:
        d.data["argc"] = str(execve.argc)


def _from_title_and_cwd(d: _Draft) -> None:
    pt = d.event.first("PROCTITLE")
    if pt is not None:
        title = proctitle_text(pt.get("proctitle"), interpreted=d.interp)
        if title:
            d.process["title"] = title
    cwd_rec = d.event.first("CWD")
    if cwd_rec is not None:
        cwd = value_text(cwd_rec.get("cwd"), interpreted=d.interp)
        if cwd:
            d.process["working_directory"] = cwd


def _fold_other_records(d: _Draft) -> None:
    """aucoalesce folds the fields of the other records (BPRM_FCAPS...) into auditd.data."""
    for rec in d.event.records:
        if rec.type in _OWN_RECORDS:
            continue
        for k, token in rec.fields:
            text = plain_text(token)
            if text is not None and text not in ("", "?", "(null)"):
                d.data.setdefault(k, text)


def _from_paths(d: _Draft) -> None:
    paths = _paths(d.event)
    file_doc = _file(paths, d.event.first("PATH"))
    if file_doc:
        d.doc["file"] = file_doc
        obj: dict[str, str] = {"type": "file"}
        if "path" in file_doc:
            obj["primary"] = file_doc["path"]
        d.auditd.setdefault("summary", {})["object"] = obj
    if paths:
        d.auditd["paths"] = paths


def _finish(d: _Draft) -> dict[str, Any]:
    """Assemble the document in Auditbeat's key order."""
    doc, auditd = d.doc, d.auditd
    if d.data:
        auditd["data"] = d.data
    if not auditd.get("summary"):
        auditd.pop("summary", None)
    if d.process:
        doc["process"] = d.process
    doc["auditd"] = auditd
    host: dict[str, Any] = {"os": {"type": "linux"}}
    if d.event.node:
        host["name"] = d.event.node
    doc["host"] = host
    doc["service"] = {"type": "auditd"}
    if d.tags:
        doc["tags"] = d.tags
    d.ev["original"] = [r.text for r in d.event.records]
    return doc


def iter_ecs(events: Iterable[AuditEvent], *, resolver: NameResolver | None = None,
             stats: NormalizeStats | None = None) -> Iterator[dict[str, Any]]:
    """Map a stream of events, yielding only the exec documents."""
    for event in events:
        doc = to_ecs(event, resolver=resolver, stats=stats)
        if doc is not None:
            yield doc
