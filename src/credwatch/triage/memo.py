"""Triage computed once per distinct input: the fast path of :func:`~credwatch.triage.enrich.enrich_alert`.

A hunt repeats itself: thousands of alerts share a command line, a host, a
user, a parent chain. Each piece of the triage block is a function of a few
fields of the event, so each is computed once per distinct value of those
fields and remembered:

=============  ==============================================================  ================
piece          depends on                                                      remembered as
=============  ==============================================================  ================
command        ``process.args``, ``command_line``, ``title``, ``args_count``,   credentials,
               the explained ``process.args`` values                           indicators, text
workload       host, container, orchestrator, cloud and cgroup fields, scopes  workload, text
user           user, effective/audit user, session, entry type                 user, text
automation     names, executables and first args of the ancestors, image,      benign reasons
               the caller's benign table
verdict        the pieces above, the executable's folder                       score, priority
=============  ==============================================================  ================

The parent chain (pids, entity ids), the process (its pid) and the event time
differ for every event and are read each time. Keys are the fields' values
serialised by orjson, so ``1``, ``1.0``, ``"1"`` and ``true`` never share an
entry; events with a float or a non-JSON value, or with a field spelled two
ways, are left to the reference path. Cached values are stored as JSON and
decoded for each alert, so no two alerts share a mutable value.

The answers are those of the reference path (``enrich_alert(..., memo=False)``):
the sentences come from :mod:`credwatch.triage.verdict` on both paths, and a
differential test checks whole blocks on varied events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson

from credwatch.alerts.ids import FieldIndex, field_index
from credwatch.triage.context import (
    args_of,
    benign_automation,
    command_lines,
    indicators,
    memoized,
    parent_chain,
    scratch_executable,
    shell_scripts,
    text,
    user_identity,
    workload,
)
from credwatch.triage.paths import credential_matches
from credwatch.triage.verdict import (
    STAGING,
    TRIAGE_VERSION,
    Verdict,
    chain_text,
    command_step,
    confirm_step,
    correlate_step,
    correlate_tail,
    credential_steps,
    creds_text,
    identity_text,
    map_step,
    signs_text,
    summary,
    tune_step,
    verdict,
    where_text,
    who_text,
    window_text,
)

PREFIX = "credwatch.triage."
_ROLES = ("process.parent", "process.group_leader", "process.session_leader",
          "process.entry_leader", "process.parent.parent")
CMD_FIELDS = ("process.args", "process.command_line", "process.title", "process.args_count")
WORK_FIELDS = (
    "host.name", "host.hostname", "container.id", "container.name", "container.image.name",
    "container.runtime", "orchestrator.cluster.name", "orchestrator.namespace",
    "orchestrator.resource.name", "orchestrator.resource.type", "kubernetes.namespace",
    "kubernetes.pod.name", "kubernetes.pod.uid", "kubernetes.node.name", "cloud.provider",
    "cloud.account.id", "cloud.instance.id", "process.cgroup.path", "cgroup.path",
    "process.Ext.cgroup")
USER_FIELDS = ("user.name", "user.id", "user.effective.name", "user.effective.id",
               "user.audit.name", "user.audit.id", "auditd.session",
               "process.entry_leader.entry_meta.type")
AUTOMATION_FIELDS = (*(f"{r}.{k}" for r in _ROLES for k in ("name", "executable", "args")),
                     "container.image.name")
#: Keys a correlator writes; an alert holding one is re-scored by the reference path.
_CORRELATED = tuple(PREFIX + k for k in ("correlation", "related", "followup_exfil",
                                         "followup_categories"))
#: Inputs with a longer key are answered without being remembered. An entry holds text
#: derived from its key, so entries x this bounds each cache's memory: distinct huge
#: command lines (hostile or not) cannot grow it.
MAX_KEY_BYTES = 1024

_V = TypeVar("_V")


class _Cache(dict[Any, Any]):
    """A bounded dictionary: emptied when full, so memory stays flat on unique inputs."""

    def __init__(self, entries: int) -> None:
        super().__init__()
        self.entries = entries

    def remember(self, key: Any, size: int, make: Callable[[], _V]) -> _V:
        """The value for ``key``, made (and kept if ``size`` allows) when absent."""
        found = self.get(key)
        if found is None:
            found = make()
            if size <= MAX_KEY_BYTES:
                if len(self) >= self.entries:
                    self.clear()
                self[key] = found
        return found


# Sizes: a hunt's distinct command lines run to thousands, workloads, users and ancestors to
# hundreds; filled credential steps are the largest values (a few KB per credential).
_COMMANDS = _Cache(4096)
_WORKLOADS = _Cache(1024)
_USERS = _Cache(1024)
_AUTOMATION = _Cache(1024)
_VERDICTS = _Cache(2048)
_FILLED = _Cache(256)


def clear() -> None:
    """Forget every remembered piece (tests; a long-lived process changing its benign table)."""
    for cache in (_COMMANDS, _WORKLOADS, _USERS, _AUTOMATION, _VERDICTS, _FILLED):
        cache.clear()


def _json(value: Any) -> bytes:
    """``orjson.dumps(value)`` in a bytes object of its own size, to be kept.

    orjson hands back its 4 KB working buffer whatever the length: kept as is,
    each remembered key or value of a few dozen bytes would hold 4 KB (measured
    with tracemalloc: caches full of unique inputs took 75 MB instead of ~12).
    """
    return bytes(memoryview(orjson.dumps(value)))


def _key(flat: Mapping[str, list[Any]], fields: tuple[str, ...], *extra: Any) -> bytes:
    return _json([[flat.get(f) for f in fields], *extra])


def _command(alert: Mapping[str, Any], event: Mapping[str, Any]) -> dict[str, Any]:
    args = args_of(event)
    extra = [t for t in (text(event, "process.command_line"), text(event, "process.title")) if t]
    creds = credential_matches(alert, args, extra + shell_scripts(args))
    inds = indicators(event)
    plain = [c.as_dict() for c in creds]
    ind_dicts = [i.as_dict() for i in inds]
    cmd = command_lines(event)
    return {
        "creds": creds, "scopes": [c.kind.scope for c in creds],
        "kinds": _json(sorted({c.kind.kind for c in creds})),
        "command_line": _json(cmd), "indicators": _json(ind_dicts),
        "exfil": any(i.exfil for i in inds), "staging": any(i.type in STAGING for i in inds),
        "what": creds_text(plain), "paths": ", ".join(c.path for c in creds) or "the matched path",
        "signs": signs_text(ind_dicts),
        "step": command_step(cmd.get("reconstructed") or "(no arguments recorded)", ind_dicts),
        "tail": correlate_tail({c.kind.kind for c in creds}),
    }


def _workload(event: Mapping[str, Any], scopes: list[str]) -> dict[str, Any]:
    work = workload(event, scopes)
    return {"json": _json(work), "host": work.get("host", ""), "pod": work.get("pod", ""),
            "namespace": work.get("namespace", ""), "location": str(work.get("location", "host")),
            "image": work.get("image"), "where": where_text(work), "ident": identity_text(work),
            "corr_host": work.get("host") or "the host"}


def _user(event: Mapping[str, Any]) -> dict[str, Any]:
    user = user_identity(event)
    return {"json": _json(user), "fill": user.get("name") or user.get("id") or "",
            "who": who_text(user), "session_kind": user.get("session_kind", "session unknown")}


def _filled(creds: list[Any], values: dict[str, str]) -> tuple[bytes, tuple[str, ...]]:
    dicts = [c.as_dict(values) for c in creds]
    return _json(dicts), tuple(credential_steps(dicts))


def enrich_memoized(alert: dict[str, Any], event: Mapping[str, Any],
                    benign: Mapping[str, str] | None) -> bool:
    """Write the triage block of a new ``alert`` from ``event``; False to use the reference path.

    The reference path is needed for an alert a correlator already wrote to,
    for events with floats, non-JSON values or fields spelled two ways, and for
    values orjson cannot key (integers beyond 64 bits).
    """
    index = field_index(event)
    explain = alert.get("credwatch.explain")
    if not index.unique or index.floats or not isinstance(explain, list) \
            or any(k in alert for k in _CORRELATED):
        return False
    try:
        keys = _keys(index, explain, benign)
    except (TypeError, orjson.JSONEncodeError):
        return False
    with memoized(event):
        _write(alert, event, index, keys, benign)
    return True


def _keys(index: FieldIndex, explain: list[Any],
          benign: Mapping[str, str] | None) -> tuple[bytes, bytes, bytes, bytes]:
    flat = index.flat
    explained = [[e.get("value"), e.get("index")] for e in explain
                 if isinstance(e, Mapping) and e.get("field") == "process.args"
                 and isinstance(e.get("value"), str)]
    table = sorted(benign.items()) if benign else []
    return (_key(flat, CMD_FIELDS, explained), _key(flat, WORK_FIELDS),
            _key(flat, USER_FIELDS), _key(flat, AUTOMATION_FIELDS, table))


def _write(alert: dict[str, Any], event: Mapping[str, Any], index: FieldIndex,
           keys: tuple[bytes, bytes, bytes, bytes], benign: Mapping[str, str] | None) -> None:
    ckey, wkey, ukey, akey = keys
    cmd = _COMMANDS.remember(ckey, len(ckey), lambda: _command(alert, event))
    scopes = cmd["scopes"]
    work = _WORKLOADS.remember((wkey, *scopes), len(wkey), lambda: _workload(event, scopes))
    user = _USERS.remember(ukey, len(ukey), lambda: _user(event))
    reasons: tuple[str, ...] = _AUTOMATION.remember(
        akey, len(akey), lambda: tuple(benign_automation(event, benign)))
    scratch = scratch_executable(event)
    verdict_: Verdict = _VERDICTS.remember(
        (ckey, work["location"], reasons, scratch), len(ckey) + len(akey) + len(scratch or ""),
        lambda: verdict(reasons, [c.as_dict() for c in cmd["creds"]], work["location"],
                        cmd["exfil"], cmd["staging"], False, set(), scratch))
    fill = {"user": user["fill"], "host": work["host"], "pod": work["pod"],
            "namespace": work["namespace"]}
    creds_json, cred_steps = (b"[]", ()) if not cmd["creds"] else _FILLED.remember(
        (ckey, *fill.values()), len(ckey) + len(wkey) + len(ukey),
        lambda: _filled(cmd["creds"], fill))
    chain = parent_chain(event)
    process = {k: v for k, v in (("name", text(event, "process.name")),
                                 ("pid", text(event, "process.pid")),
                                 ("executable", text(event, "process.executable")),
                                 ("working_directory",
                                  text(event, "process.working_directory"))) if v}
    event_time = text(event, "@timestamp")
    loads = orjson.loads
    alert[PREFIX + "version"] = TRIAGE_VERSION
    alert[PREFIX + "credentials"] = loads(creds_json)
    alert[PREFIX + "kinds"] = loads(cmd["kinds"])
    alert[PREFIX + "command_line"] = loads(cmd["command_line"])
    alert[PREFIX + "indicators"] = loads(cmd["indicators"])
    alert[PREFIX + "exfil_indicators"] = cmd["exfil"]
    alert[PREFIX + "staging_indicators"] = cmd["staging"]
    alert[PREFIX + "parent_chain"] = chain
    alert[PREFIX + "user"] = loads(user["json"])
    alert[PREFIX + "benign_reasons"] = list(reasons)
    alert[PREFIX + "scratch_executable"] = scratch
    alert[PREFIX + "workload"] = loads(work["json"])
    alert[PREFIX + "process"] = process
    alert[PREFIX + "event_time"] = event_time
    alert[PREFIX + "likely_benign"] = verdict_.likely_benign
    alert[PREFIX + "benign_reason"] = verdict_.benign_reason
    alert[PREFIX + "score"] = verdict_.score
    alert[PREFIX + "score_factors"] = list(verdict_.score_factors)
    alert[PREFIX + "priority"] = verdict_.priority
    chain_line = chain_text(chain, {})
    alert[PREFIX + "summary"] = summary(verdict_.priority, verdict_.score, process.get("name"),
                                        cmd["what"], user["who"], work["where"], chain_line,
                                        cmd["signs"], False, verdict_.likely_benign)
    steps = [confirm_step(user["who"], user["session_kind"], chain_line, cmd["paths"],
                          verdict_.benign_reason),
             cmd["step"], map_step(work["ident"], user["who"]),
             correlate_step(work["corr_host"], window_text(event_time), process.get("pid", "?"),
                            cmd["tail"]),
             *cred_steps]
    if verdict_.likely_benign:
        steps.append(tune_step(chain[0] if chain else {}, work["image"]))
    alert[PREFIX + "next_steps"] = steps
