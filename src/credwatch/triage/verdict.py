"""The triage verdict and its sentences, from already-extracted pieces of an alert.

Score, priority, summary and next steps are pure functions of a few pieces
(credentials, indicators, workload, user, parent chain, benign reasons, time
window). :mod:`credwatch.triage.enrich` reads those pieces from an alert;
:mod:`credwatch.triage.memo` reads them from caches keyed by the event's own
values. Both call the functions here, so the two paths cannot word anything
differently.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credwatch.alerts.build import parse_event_time
from credwatch.timemath import (
    DATETIME_MAX_MS,
    DATETIME_MIN_MS,
    MS_DAY,
    datetime_to_ms,
    format_ms,
)

#: Version of the ``credwatch.triage.*`` block's layout.
TRIAGE_VERSION = 1
#: Indicator types that stage data (rather than move it off the host).
STAGING = frozenset({"encoding", "archive-stdout", "pipe", "redirect"})
#: Priority thresholds on the 0-100 score, highest first.
PRIORITY_THRESHOLDS = (("P1", 75), ("P2", 55), ("P3", 35), ("P4", 0))
_LOCATION_POINTS = {"control-plane": 15, "jump-host": 12, "pod": 10, "node": 8, "host": 0}
#: Credential kinds whose misuse shows in the Kubernetes audit log.
_K8S_KINDS = frozenset({
    "kubernetes-sa-token", "kubelet-kubeconfig", "kubeadm-admin-kubeconfig",
    "kubernetes-pki-key", "kubelet-client-cert", "k3s-kubeconfig", "kubeconfig",
    "eks-irsa-token", "azure-workload-identity-token"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """Benign verdict and score of one alert."""

    likely_benign: bool
    benign_reason: str
    score: int
    score_factors: tuple[str, ...]
    priority: str


# Complexity: one optional factor per signal the score weighs; each branch appends one.
def verdict(reasons: Sequence[str], creds: Sequence[Mapping[str, Any]],
            location: str, exfil: bool, staging: bool, follow_exfil: bool,
            follow_cats: set[str], scratch: Any) -> Verdict:
    """Benign verdict, score and priority from the alert's signals."""
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
    if _LOCATION_POINTS.get(location):
        factors.append((_LOCATION_POINTS[location], f"location {location}"))
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
    return Verdict(likely_benign, benign_reason, score,
                   tuple(f"{p:+d} {why}" for p, why in factors), priority)


def who_text(user: Mapping[str, Any]) -> str:
    """``alice (logged in as bob)``, ``uid 1000`` or ``an unknown user``."""
    who = str(user.get("name") or (f"uid {user['id']}" if user.get("id") else "an unknown user"))
    if user.get("audit_name") and user.get("audit_name") != user.get("name"):
        who += f" (logged in as {user['audit_name']})"
    return who


def chain_text(chain: Sequence[Mapping[str, Any]], corr: Mapping[str, Any]) -> str:
    """The parent chain as ``bash ← sshd [sshd]``, continued by the correlator's ancestors."""
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


def creds_text(creds: Sequence[Mapping[str, Any]]) -> str:
    """What was read: up to three ``label (path)`` and a count of the rest."""
    what = ", ".join(f"{c['label']} ({c['path']})" for c in creds[:3]) or "a credential path"
    if len(creds) > 3:
        what += f" and {len(creds) - 3} more"
    return what


def where_text(work: Mapping[str, Any]) -> str:
    """``host [location] pod ns/name``."""
    where = f"{work.get('host') or 'an unknown host'} [{work.get('location', 'host')}]"
    if work.get("pod"):
        where += f" pod {work.get('namespace', '?')}/{work['pod']}"
    return where


def signs_text(inds: Sequence[Mapping[str, Any]]) -> str:
    """The summary's indicator clause."""
    signs = sorted({str(i["type"]) for i in inds})
    return f"indicators: {', '.join(signs)}" if signs else "no piping/encoding/exfil in the command"


def summary(priority: str, score: int, proc: Any, what: str, who: str, where: str, chain: str,
            signs: str, follow_exfil: bool, benign: bool) -> str:
    """One sentence for lists and notifications."""
    tail = signs
    if follow_exfil:
        tail += "; network/exfil activity followed"
    if benign:
        tail += "; likely expected automation"
    return (f"{priority} (score {score}): {proc or 'a process'} read {what} as {who} on {where}, "
            f"parent chain {chain}; {tail}.")


def window_text(event_time: Any, seconds: int = 120) -> str:
    """``between <t - seconds> and <t + seconds>`` around the event time."""
    t = parse_event_time(event_time)
    if t is None:
        return "around the alert time"
    # Clamped at years 1..9999 (an event at 9999-12-31 must not raise OverflowError);
    # in milliseconds, as shift() and iso_ms() would, without building two datetimes.
    ms = datetime_to_ms(t)
    span = seconds * 1000
    low = min(max(ms - span, DATETIME_MIN_MS), DATETIME_MAX_MS)
    high = min(max(ms + span, DATETIME_MIN_MS), DATETIME_MAX_MS)
    return f"between {_iso(low)} and {_iso(high)}"


def _iso(ms: int) -> str:
    """:func:`format_ms` for years 1..9999, with the date part remembered per day."""
    days, rest = divmod(ms, MS_DAY)
    seconds, milli = divmod(rest, 1000)
    return (f"{_day_text(days)}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
            f"{seconds % 60:02d}.{milli:03d}Z")


@functools.lru_cache(maxsize=1024)
def _day_text(days: int) -> str:
    return format_ms(days * MS_DAY).split("T", 1)[0]


def confirm_step(who: str, session_kind: str, chain: str, paths: str, benign_reason: str) -> str:
    """The first next step: is this reader expected?"""
    return (f"Confirm that {who} ({session_kind}) and the parent chain {chain} are expected to "
            f"read {paths} (CI job, bootstrap script, kubelet). {benign_reason}.")


def command_step(cmd: str, inds: Sequence[Mapping[str, Any]]) -> str:
    """The command-line step: what the command itself does with the content."""
    if inds:
        return f"Command line `{cmd}` shows " + "; ".join(
            f"{i['type']} via {i['tool']}" for i in inds) + ": treat the content as exposed."
    return (f"Command line `{cmd}`: no piping, encoding or exfiltration in the command "
            "itself; check what the same session ran right after the read.")


def identity_text(work: Mapping[str, Any]) -> str:
    """``host h (location), pod ns/p, container c image i``."""
    ident = f"host {work.get('host') or 'the host'} ({work.get('location', 'host')})"
    if work.get("pod"):
        ident += f", pod {work.get('namespace', '?')}/{work['pod']}"
    if work.get("container_id"):
        ident += f", container {str(work['container_id'])[:12]}"
    if work.get("image"):
        ident += f" image {work['image']}"
    return ident


def map_step(ident: str, who: str) -> str:
    """The workload-to-identity step."""
    return (f"Map the workload to an identity: {ident}; user {who}. "
            "Nodes, jump hosts and pods with mounted service-account tokens come first.")


def correlate_tail(kinds: set[str]) -> str:
    """The log sources to correlate in, after the pid clause, by credential kind."""
    corr = ""
    if kinds & _K8S_KINDS:
        corr += ("; Kubernetes audit log for secret reads, TokenRequest/CSR creation and API "
                 "calls from unexpected source IPs")
    if any(k.startswith(("aws", "eks")) for k in kinds):
        corr += "; CloudTrail for calls with the exposed keys or role"
    if any(k.startswith("azure") for k in kinds):
        corr += "; Azure Activity / Entra sign-in logs"
    if any(k.startswith("gcloud") for k in kinds):
        corr += "; GCP Cloud Audit Logs"
    return corr + "."


def correlate_step(host: str, window: str, pid: Any, tail: str) -> str:
    """Where and when to look for what happened around the read."""
    return (f"Correlate on {host} {window}: file and network events of pid {pid} and its "
            f"session{tail}")


def credential_steps(creds: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every credential's response and review steps, once each, in order."""
    seen: set[str] = set()
    steps: list[str] = []
    for c in creds:
        for step in list(c.get("response", [])) + list(c.get("review", [])):
            if step not in seen:
                seen.add(step)
                steps.append(step)
    return steps


def tune_step(parent: Mapping[str, Any], image: Any) -> str:
    """How to except expected automation, from the nearest ancestor and the image."""
    pname = parent.get("name") or parent.get("executable")
    hint = f"process.parent.name is {pname}" if pname else "the automation's parent process"
    if image:
        hint += f" or container.image.name is {image}"
    return f"If confirmed expected, tune with an exception on {hint} (credwatch exceptions add)."
