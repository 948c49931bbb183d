"""Triage enrichment: the investigation guide's questions, answered per alert.

:func:`enrich_alert` is pure and needs only the alert (it carries a copy of
the source event) or the event; :class:`Triage` adds correlation with the
events around the alert (:mod:`credwatch.triage.correlate`) and holds alerts
until their follow-up window passes.

Everything is written as flat ``credwatch.triage.*`` keys next to the Elastic
alert fields, which are never modified:

==============================  ===============================================
``credwatch.triage.priority``   ``P1`` (act now) … ``P4`` (likely noise)
``credwatch.triage.score``      0-100, with ``score_factors`` explaining it
``credwatch.triage.summary``    one sentence for lists and notifications
``credwatch.triage.next_steps`` the guide's steps, filled with this alert's values
``credwatch.triage.credentials`` per path: kind, label, blast radius, response, review
``credwatch.triage.kinds``      credential kinds (for filtering and reports)
``credwatch.triage.command_line`` reconstructed / reported command lines
``credwatch.triage.indicators`` piping, encoding and exfiltration signs
``credwatch.triage.parent_chain`` parent, group/session/entry leaders
``credwatch.triage.user``       user, effective and audit user, login session
``credwatch.triage.likely_benign`` with ``benign_reasons``
``credwatch.triage.workload``   host, container, pod, location class
``credwatch.triage.related``    (correlation) events before/after on host/session
``credwatch.triage.followup_exfil`` (correlation) network/exfil right after
==============================  ===============================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from credwatch.alerts.build import iso_ms, parse_event_time
from credwatch.timemath import shift
from credwatch.triage.context import (
    BENIGN_AUTOMATION,
    args_of,
    basename,
    benign_automation,
    benign_label,
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
from credwatch.triage.correlate import Correlator
from credwatch.triage.paths import credential_matches

PREFIX = "credwatch.triage."
TRIAGE_VERSION = 1
#: Priority thresholds on the 0-100 score, highest first.
PRIORITY_THRESHOLDS = (("P1", 75), ("P2", 55), ("P3", 35), ("P4", 0))
_LOCATION_POINTS = {"control-plane": 15, "jump-host": 12, "pod": 10, "node": 8, "host": 0}
_STAGING = frozenset({"encoding", "archive-stdout", "pipe", "redirect"})


def _g(alert: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return alert.get(PREFIX + key, default)


def enrich_alert(alert: dict[str, Any], event: Mapping[str, Any] | None = None, *,
                 benign: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Add the ``credwatch.triage.*`` block to ``alert`` (in place) and return it.

    ``event`` is the matched source event; when omitted the alert's own copy
    of it is used. ``benign`` adds ``{process name: label}`` pairs to the
    known expected-automation set.
    """
    src: Mapping[str, Any] = event if event is not None else alert
    with memoized(src):
        fields = _triage_fields(alert, src, event is not None, benign)
    for key, value in fields.items():
        alert[PREFIX + key] = value
    return score_alert(alert, benign=benign)


def _triage_fields(alert: dict[str, Any], src: Mapping[str, Any], from_event: bool,
                   benign: Mapping[str, str] | None) -> dict[str, Any]:
    args = args_of(src)
    extra_texts = [t for t in (text(src, "process.command_line"), text(src, "process.title"))
                   if t] + shell_scripts(args)
    creds = credential_matches(alert, args, extra_texts)
    scopes = [c.kind.scope for c in creds]
    work = workload(src, scopes)
    user = user_identity(src)
    values = {"user": user.get("name") or user.get("id") or "", "host": work.get("host", ""),
              "pod": work.get("pod", ""), "namespace": work.get("namespace", "")}
    inds = indicators(src)
    fields: dict[str, Any] = {
        "version": TRIAGE_VERSION,
        "credentials": [c.as_dict(values) for c in creds],
        "kinds": sorted({c.kind.kind for c in creds}),
        "command_line": command_lines(src),
        "indicators": [i.as_dict() for i in inds],
        "exfil_indicators": any(i.exfil for i in inds),
        "staging_indicators": any(i.type in _STAGING for i in inds),
        "parent_chain": parent_chain(src),
        "user": user,
        "benign_reasons": benign_automation(src, benign),
        "scratch_executable": scratch_executable(src),
        "workload": work,
        "process": {k: v for k, v in (("name", text(src, "process.name")),
                                      ("pid", text(src, "process.pid")),
                                      ("executable", text(src, "process.executable")),
                                      ("working_directory",
                                       text(src, "process.working_directory"))) if v},
        # In an alert, @timestamp is the alert's creation time; the event's is original_time.
        "event_time": (text(src, "@timestamp") if from_event
                       else text(src, "kibana.alert.original_time") or text(src, "@timestamp")),
    }
    return fields


def score_alert(alert: dict[str, Any], *,
                benign: Mapping[str, str] | None = None) -> dict[str, Any]:
    """(Re)compute benign verdict, score, priority, summary and next steps from the block.

    Run again after correlation: follow-up exfiltration raises the score and
    ancestors seen by the correlator can reveal expected automation.
    """
    reasons: list[str] = list(_g(alert, "benign_reasons", []) or [])
    corr = _g(alert, "correlation") or {}
    if corr.get("ancestors"):
        # The correlator saw the ancestors' own execs: their names and scripts count too.
        table = dict(benign or {})
        for anc in corr["ancestors"]:
            words = [str(anc.get("name", ""))] + [
                basename(w) for w in str(anc.get("args", "")).split()[:3] if "/" in w]
            for name in words:
                label = table.get(name) or BENIGN_AUTOMATION.get(name) or benign_label(name)
                reason = f"ancestor {name} ({label})" if label else None
                if reason and reason not in reasons:
                    reasons.append(reason)
        alert[PREFIX + "benign_reasons"] = reasons
    creds: list[Mapping[str, Any]] = _g(alert, "credentials", []) or []
    inds: list[Mapping[str, Any]] = _g(alert, "indicators", []) or []
    work: Mapping[str, Any] = _g(alert, "workload", {}) or {}
    exfil = bool(_g(alert, "exfil_indicators"))
    staging = bool(_g(alert, "staging_indicators"))
    follow_exfil = bool(_g(alert, "followup_exfil"))
    follow_cats = set(_g(alert, "followup_categories", []) or [])
    scratch = _g(alert, "scratch_executable")

    blockers = [why for cond, why in ((exfil, "exfiltration indicator in the command"),
                                      (follow_exfil, "network/exfiltration follow-up"),
                                      (bool(scratch), "runs from a scratch directory"))
                if cond]
    likely_benign = bool(reasons) and not blockers
    if likely_benign:
        benign_reason = "expected automation: " + "; ".join(reasons)
    elif reasons:
        benign_reason = ("automation ancestor (" + "; ".join(reasons) + ") but "
                         + ", ".join(blockers))
    else:
        benign_reason = "no known backup, scanner, CI or orchestration ancestor"

    factors: list[tuple[int, str]] = []
    top = max(creds, key=lambda c: int(c.get("criticality", 0)), default=None)
    if top is not None:
        factors.append((15 + 5 * int(top["criticality"]),
                        f"{top['label']} (criticality {top['criticality']})"))
    else:
        factors.append((30, "no known credential kind"))
    loc = str(work.get("location", "host"))
    if _LOCATION_POINTS.get(loc):
        factors.append((_LOCATION_POINTS[loc], f"location {loc}"))
    if exfil:
        factors.append((20, "exfiltration indicator in the command line"))
    elif staging:
        factors.append((10, "piping/encoding/archiving in the command line"))
    if follow_exfil:
        factors.append((15, "network or exfiltration activity right after the read"))
    elif follow_cats & {"encoding", "archive"}:
        factors.append((5, "encoding/archiving right after the read"))
    if scratch:
        factors.append((10, f"executable in a scratch directory ({scratch})"))
    if likely_benign:
        factors.append((-35, "expected automation ancestor"))
    score = max(0, min(100, sum(p for p, _ in factors)))
    priority = next(p for p, t in PRIORITY_THRESHOLDS if score >= t)

    alert[PREFIX + "likely_benign"] = likely_benign
    alert[PREFIX + "benign_reason"] = benign_reason
    alert[PREFIX + "score"] = score
    alert[PREFIX + "score_factors"] = [f"{p:+d} {why}" for p, why in factors]
    alert[PREFIX + "priority"] = priority
    alert[PREFIX + "summary"] = _summary(alert, creds, inds, work, priority, score,
                                         likely_benign)
    alert[PREFIX + "next_steps"] = _next_steps(alert, creds, inds, work, likely_benign)
    return alert


def _who(alert: Mapping[str, Any]) -> str:
    user: Mapping[str, Any] = _g(alert, "user", {}) or {}
    who = str(user.get("name") or (f"uid {user['id']}" if user.get("id") else "an unknown user"))
    if user.get("audit_name") and user.get("audit_name") != user.get("name"):
        who += f" (logged in as {user['audit_name']})"
    return who


def _chain_text(alert: Mapping[str, Any]) -> str:
    chain: list[Mapping[str, Any]] = _g(alert, "parent_chain", []) or []
    corr: Mapping[str, Any] = _g(alert, "correlation") or {}
    seen_names = {int(a["pid"]): str(a["name"]) for a in corr.get("ancestors", []) or []
                  if isinstance(a.get("pid"), int)}
    parts: list[str] = []
    for item in chain:
        pid = item.get("pid")
        name = item.get("name") or item.get("executable") or (
            f"{seen_names[pid]} (pid {pid})" if pid in seen_names else f"pid {pid}")
        if item.get("entry_type"):
            name = f"{name} [{item['entry_type']}]"
        if not parts or parts[-1] != name:
            parts.append(str(name))
    if len(chain) <= 1:
        # auditd names only the parent pid: continue up what the correlator saw.
        for anc in (corr.get("ancestors") or [])[1 if chain else 0:]:
            parts.append(f"{anc['name']} (pid {anc['pid']})")
    return " ← ".join(parts) if parts else "unknown parent"


def _summary(alert: Mapping[str, Any], creds: list[Mapping[str, Any]],
             inds: list[Mapping[str, Any]], work: Mapping[str, Any], priority: str, score: int,
             benign: bool) -> str:
    proc = (_g(alert, "process", {}) or {}).get("name") or "a process"
    what = ", ".join(f"{c['label']} ({c['path']})" for c in creds[:3]) or "a credential path"
    if len(creds) > 3:
        what += f" and {len(creds) - 3} more"
    host = work.get("host") or "an unknown host"
    where = f"{host} [{work.get('location', 'host')}]"
    if work.get("pod"):
        where += f" pod {work.get('namespace', '?')}/{work['pod']}"
    signs = sorted({str(i["type"]) for i in inds})
    tail = f"indicators: {', '.join(signs)}" if signs else "no piping/encoding/exfil in the command"
    if _g(alert, "followup_exfil"):
        tail += "; network/exfil activity followed"
    if benign:
        tail += "; likely expected automation"
    return (f"{priority} (score {score}): {proc} read {what} as {_who(alert)} on {where}, "
            f"parent chain {_chain_text(alert)}; {tail}.")


def _window(alert: Mapping[str, Any], seconds: int = 120) -> str:
    t = parse_event_time(_g(alert, "event_time"))
    if t is None:
        return "around the alert time"
    # shift clamps at years 1..9999 (an event at 9999-12-31 must not raise OverflowError).
    span = timedelta(seconds=seconds)
    return f"between {iso_ms(shift(t, -span))} and {iso_ms(shift(t, span))}"


# Complexity: one optional sentence per piece of context the guide's steps mention (user,
# chain, indicators, workload, time window); each branch only appends text.
def _next_steps(alert: Mapping[str, Any], creds: list[Mapping[str, Any]],  # noqa: C901
                inds: list[Mapping[str, Any]], work: Mapping[str, Any],
                benign: bool) -> list[str]:
    user: Mapping[str, Any] = _g(alert, "user", {}) or {}
    proc: Mapping[str, Any] = _g(alert, "process", {}) or {}
    paths = ", ".join(str(c["path"]) for c in creds) or "the matched path"
    cmd = (_g(alert, "command_line", {}) or {}).get("reconstructed") or "(no arguments recorded)"
    host = work.get("host") or "the host"
    steps = [
        f"Confirm that {_who(alert)} ({user.get('session_kind', 'session unknown')}) and the "
        f"parent chain {_chain_text(alert)} are expected to read {paths} "
        f"(CI job, bootstrap script, kubelet). {_g(alert, 'benign_reason', '')}.",
    ]
    if inds:
        steps.append(f"Command line `{cmd}` shows " + "; ".join(
            f"{i['type']} via {i['tool']}" for i in inds) + ": treat the content as exposed.")
    else:
        steps.append(f"Command line `{cmd}`: no piping, encoding or exfiltration in the command "
                     "itself; check what the same session ran right after the read.")
    related = _g(alert, "related")
    if related is not None:
        follow = [r for r in related if r.get("when") == "after" and r.get("categories")]
        if follow:
            steps.append("Follow-up activity within the window: " + "; ".join(
                f"+{r['delta_s']}s {r['process']} ({', '.join(r['categories'])})"
                for r in follow[:5]))
    ident = f"host {host} ({work.get('location', 'host')})"
    if work.get("pod"):
        ident += f", pod {work.get('namespace', '?')}/{work['pod']}"
    if work.get("container_id"):
        ident += f", container {str(work['container_id'])[:12]}"
    if work.get("image"):
        ident += f" image {work['image']}"
    steps.append(f"Map the workload to an identity: {ident}; user {_who(alert)}. "
                 "Nodes, jump hosts and pods with mounted service-account tokens come first.")
    corr = (f"Correlate on {host} {_window(alert)}: file and network events of pid "
            f"{proc.get('pid', '?')} and its session")
    kinds = {str(c["kind"]) for c in creds}
    if kinds & {"kubernetes-sa-token", "kubelet-kubeconfig", "kubeadm-admin-kubeconfig",
                "kubernetes-pki-key", "kubelet-client-cert", "k3s-kubeconfig", "kubeconfig",
                "eks-irsa-token", "azure-workload-identity-token"}:
        corr += ("; Kubernetes audit log for secret reads, TokenRequest/CSR creation and API "
                 "calls from unexpected source IPs")
    if any(k.startswith(("aws", "eks")) for k in kinds):
        corr += "; CloudTrail for calls with the exposed keys or role"
    if any(k.startswith("azure") for k in kinds):
        corr += "; Azure Activity / Entra sign-in logs"
    if any(k.startswith("gcloud") for k in kinds):
        corr += "; GCP Cloud Audit Logs"
    steps.append(corr + ".")
    seen: set[str] = set()
    for c in creds:
        for step in list(c.get("response", [])) + list(c.get("review", [])):
            if step not in seen:
                seen.add(step)
                steps.append(step)
    if benign:
        parent: Mapping[str, Any] = next(iter(_g(alert, "parent_chain", []) or []), {})
        pname = parent.get("name") or parent.get("executable")
        hint = f"process.parent.name is {pname}" if pname else "the automation's parent process"
        if work.get("image"):
            hint += f" or container.image.name is {work['image']}"
        steps.append(f"If confirmed expected, tune with an exception on {hint} "
                     "(credwatch exceptions add).")
    return steps


class Triage:
    """Enrich alerts during a scan, with correlation over every event.

    Wiring (one instance per scan or watch)::

        triage = Triage(window=120)
        for event in events:
            emit(triage.observe(event))            # every event, before matching
            for alert in alerts_for(event):
                emit(triage.add_alert(alert, event))
        emit(triage.drain(final=True))             # end of input

    ``observe``, ``add_alert`` and ``drain`` return the alerts that are ready,
    fully enriched, in the order they were added. With ``correlate=False``
    alerts are enriched and returned by ``add_alert`` at once, and ``observe``
    does nothing. Only alerts are enriched; ``observe`` stores a small tuple.
    """

    def __init__(self, *, correlate: bool = True, window: float = 120.0,
                 benign: Mapping[str, str] | None = None, max_per_host: int = 512,
                 max_hosts: int = 512, max_pending: int = 1000, max_related: int = 20) -> None:
        self.benign = dict(benign or {})
        self.correlator: Correlator | None = (
            Correlator(window=window, max_per_host=max_per_host, max_hosts=max_hosts,
                       max_pending=max_pending, max_related=max_related)
            if correlate else None)

    def observe(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """See one event (matching or not); returns alerts released by the advancing time."""
        if self.correlator is None:
            return []
        return self._final(self.correlator.observe(event))

    def add_alert(self, alert: dict[str, Any], event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Enrich ``alert`` from ``event`` now; hold it for follow-ups (if correlating)."""
        enrich_alert(alert, event, benign=self.benign)
        if self.correlator is None:
            return [alert]
        return self._final(self.correlator.add_alert(alert, event))

    def drain(self, final: bool = False, now: float | None = None) -> list[dict[str, Any]]:
        """Alerts ready now: all of them when ``final``, else those whose window passed.

        ``now`` (epoch seconds) lets a live follower release alerts when the
        input goes quiet.
        """
        if self.correlator is None:
            return []
        return self._final(self.correlator.flush() if final else self.correlator.release(now))

    def pending(self) -> int:
        """Alerts held for follow-ups."""
        return self.correlator.pending() if self.correlator else 0

    def _final(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [score_alert(a, benign=self.benign) for a in alerts]
