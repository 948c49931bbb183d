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
from typing import Any

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
from credwatch.triage.memo import enrich_memoized
from credwatch.triage.paths import credential_matches
from credwatch.triage.verdict import (
    PRIORITY_THRESHOLDS as PRIORITY_THRESHOLDS,  # re-exported: the thresholds are part of the API
)
from credwatch.triage.verdict import (
    STAGING,
    TRIAGE_VERSION,
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


def _g(alert: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return alert.get(PREFIX + key, default)


def enrich_alert(alert: dict[str, Any], event: Mapping[str, Any] | None = None, *,
                 benign: Mapping[str, str] | None = None, memo: bool = True) -> dict[str, Any]:
    """Add the ``credwatch.triage.*`` block to ``alert`` (in place) and return it.

    ``event`` is the matched source event; when omitted the alert's own copy
    of it is used. ``benign`` adds ``{process name: label}`` pairs to the
    known expected-automation set. With ``memo`` (the default) the pieces are
    computed once per distinct input (:mod:`credwatch.triage.memo`); the
    result is the same as without.
    """
    if memo and event is not None and enrich_memoized(alert, event, benign):
        return alert
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
        "staging_indicators": any(i.type in STAGING for i in inds),
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
    follow_exfil = bool(_g(alert, "followup_exfil"))
    v = verdict(reasons, creds, str(work.get("location", "host")),
                bool(_g(alert, "exfil_indicators")), bool(_g(alert, "staging_indicators")),
                follow_exfil, set(_g(alert, "followup_categories", []) or []),
                _g(alert, "scratch_executable"))
    alert[PREFIX + "likely_benign"] = v.likely_benign
    alert[PREFIX + "benign_reason"] = v.benign_reason
    alert[PREFIX + "score"] = v.score
    alert[PREFIX + "score_factors"] = list(v.score_factors)
    alert[PREFIX + "priority"] = v.priority
    user: Mapping[str, Any] = _g(alert, "user", {}) or {}
    who = who_text(user)
    chain = chain_text(_g(alert, "parent_chain", []) or [], corr)
    proc: Mapping[str, Any] = _g(alert, "process", {}) or {}
    alert[PREFIX + "summary"] = summary(v.priority, v.score, proc.get("name"), creds_text(creds),
                                        who, where_text(work), chain, signs_text(inds),
                                        follow_exfil, v.likely_benign)
    alert[PREFIX + "next_steps"] = _next_steps(alert, creds, inds, work, v.likely_benign, who,
                                               chain)
    return alert


def _next_steps(alert: Mapping[str, Any], creds: list[Mapping[str, Any]],
                inds: list[Mapping[str, Any]], work: Mapping[str, Any], benign: bool,
                who: str, chain: str) -> list[str]:
    user: Mapping[str, Any] = _g(alert, "user", {}) or {}
    proc: Mapping[str, Any] = _g(alert, "process", {}) or {}
    paths = ", ".join(str(c["path"]) for c in creds) or "the matched path"
    cmd = (_g(alert, "command_line", {}) or {}).get("reconstructed") or "(no arguments recorded)"
    steps = [confirm_step(who, user.get("session_kind", "session unknown"), chain, paths,
                          _g(alert, "benign_reason", "")),
             command_step(cmd, inds)]
    related = _g(alert, "related")
    if related is not None:
        follow = [r for r in related if r.get("when") == "after" and r.get("categories")]
        if follow:
            steps.append("Follow-up activity within the window: " + "; ".join(
                f"+{r['delta_s']}s {r['process']} ({', '.join(r['categories'])})"
                for r in follow[:5]))
    steps.append(map_step(identity_text(work), who))
    steps.append(correlate_step(work.get("host") or "the host",
                                window_text(_g(alert, "event_time")), proc.get("pid", "?"),
                                correlate_tail({str(c["kind"]) for c in creds})))
    steps.extend(credential_steps(creds))
    if benign:
        steps.append(tune_step(next(iter(_g(alert, "parent_chain", []) or []), {}),
                               work.get("image")))
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
