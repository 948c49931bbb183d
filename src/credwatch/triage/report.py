"""A self-contained static HTML report of alerts and their triage.

One file, no scripts and no external assets (a Content-Security-Policy meta
tag forbids them anyway), so it can be mailed or attached to a ticket. Every
value taken from an alert is HTML-escaped: arguments, paths and host names
come from monitored machines and are attacker-controlled.

Alerts without a ``credwatch.triage`` block (stored before triage existed,
or written by another tool) are enriched on the fly from their copy of the
source event; no correlation is possible then.
"""

from __future__ import annotations

import copy
import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from string import Template
from typing import IO, Any

import orjson

from credwatch import __version__
from credwatch.alerts.build import iso_ms, parse_event_time
from credwatch.errors import SourceError
from credwatch.normalize.flatten import get_values
from credwatch.triage.enrich import PREFIX, enrich_alert

_PRIORITIES = ("P1", "P2", "P3", "P4")
_TIMELINE_BUCKETS = 48


def esc(value: Any) -> str:
    """HTML-escape any value (quotes included, so it is safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def _first(doc: Mapping[str, Any], field: str) -> str:
    vals = get_values(doc, field)
    return str(vals[0]) if vals else ""


def _t(alert: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return alert.get(PREFIX + key, default)


# -- input ----------------------------------------------------------------------------------

def read_alerts_ndjson(stream: IO[bytes], source: str) -> list[dict[str, Any]]:
    """Alert documents from NDJSON (one per line); a JSON array is accepted too."""
    data = stream.read()
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"not valid JSON: {exc}", source) from None
        return [d for d in doc if isinstance(d, dict)]
    out: list[dict[str, Any]] = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"not a JSON alert: {exc}", source, n) from None
        if not isinstance(doc, dict):
            raise SourceError("not a JSON object", source, n)
        out.append(doc)
    return out


def filter_alerts(alerts: Iterable[Mapping[str, Any]], *, rule: str | None = None,
                  host: str | None = None, since: str | None = None, until: str | None = None,
                  status: str | None = None) -> list[dict[str, Any]]:
    """The same filters as ``alerts list``, applied to documents in memory."""
    out = []
    for a in alerts:
        if rule and rule not in (_first(a, "kibana.alert.rule.rule_id"),
                                 _first(a, "kibana.alert.rule.name")):
            continue
        if host and _first(a, "host.name") != host:
            continue
        created = _first(a, "@timestamp")
        if since and created < since:
            continue
        if until and created > until:
            continue
        if status and (_first(a, "kibana.alert.workflow_status") or "open") != status:
            continue
        out.append(dict(a))
    return out


def ensure_triage(alert: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``alert`` with a triage block (computed from the alert when absent)."""
    doc = copy.deepcopy(dict(alert))
    if _t(doc, "version") is None:
        enrich_alert(doc)
    return doc


# -- rendering ------------------------------------------------------------------------------

def _count_table(title: str, counts: Counter[str], *, limit: int = 12) -> str:
    rows = "".join(f"<tr><td>{esc(k) or '<span class=empty>(none)</span>'}</td>"
                   f"<td class=num>{v}</td></tr>" for k, v in counts.most_common(limit))
    more = len(counts) - limit
    if more > 0:
        rows += f"<tr><td class=muted>… {more} more</td><td></td></tr>"
    return (f"<div class=card><h3>{esc(title)}</h3><table>"
            f"{rows or '<tr><td class=empty>none</td></tr>'}</table></div>")


def _summary(alerts: Sequence[Mapping[str, Any]]) -> str:
    prio: Counter[str] = Counter({p: 0 for p in _PRIORITIES})
    prio.update(str(_t(a, "priority", "?")) for a in alerts)
    rules: Counter[str] = Counter(_first(a, "kibana.alert.rule.name") for a in alerts)
    hosts: Counter[str] = Counter(_first(a, "host.name") for a in alerts)
    kinds: Counter[str] = Counter()
    for a in alerts:
        labels = {str(c.get("label")) for c in _t(a, "credentials", []) or []}
        kinds.update(labels or {"(no credential kind)"})
    benign = sum(1 for a in alerts if _t(a, "likely_benign"))
    exfil = sum(1 for a in alerts if _t(a, "exfil_indicators") or _t(a, "followup_exfil"))
    prio_rows = "".join(f"<tr><td><span class='badge {esc(p)}'>{esc(p)}</span></td>"
                        f"<td class=num>{prio.get(p, 0)}</td></tr>" for p in _PRIORITIES)
    head = (f"<div class=card><h3>By priority</h3><table>{prio_rows}</table>"
            f"<p class=muted>{exfil} with exfiltration signs, {benign} likely benign</p></div>")
    return ("<div class=grid>" + head + _count_table("By rule", rules)
            + _count_table("By host", hosts) + _count_table("By credential kind", kinds)
            + "</div>")


def _event_time(alert: Mapping[str, Any]) -> datetime | None:
    return parse_event_time(_first(alert, "kibana.alert.original_time") or
                            _first(alert, "@timestamp"))


def _timeline(alerts: Sequence[Mapping[str, Any]]) -> str:
    timed = sorted(((t, a) for a in alerts if (t := _event_time(a)) is not None),
                   key=lambda x: x[0])
    if not timed:
        return "<p class=empty>No alert has an event time.</p>"
    start, end = timed[0][0], timed[-1][0]
    span = max((end - start).total_seconds(), 1.0)
    buckets = [0] * _TIMELINE_BUCKETS
    hot = [False] * _TIMELINE_BUCKETS
    for t, a in timed:
        i = min(_TIMELINE_BUCKETS - 1, int((t - start).total_seconds() / span * _TIMELINE_BUCKETS))
        buckets[i] += 1
        hot[i] = hot[i] or _t(a, "priority") == "P1"
    peak = max(buckets)
    bars = "".join(
        f"<div class='bar{' hot' if h else ''}' style='height:{max(1, round(100 * n / peak))}%'"
        f" title='{n} alert(s)'></div>" for n, h in zip(buckets, hot, strict=True))
    rows = []
    for t, a in timed[:500]:
        creds = ", ".join(str(c.get("path")) for c in _t(a, "credentials", []) or [])
        rows.append(f"<tr><td><code>{esc(iso_ms(t))}</code></td>"
                    f"<td><span class='badge {esc(_t(a, 'priority', ''))}'>"
                    f"{esc(_t(a, 'priority', '?'))}</span></td>"
                    f"<td>{esc(_first(a, 'host.name'))}</td><td>{esc(_first(a, 'user.name'))}</td>"
                    f"<td>{esc(_first(a, 'process.name'))}</td><td><code>{esc(creds)}</code></td>"
                    f"<td><a href='#a-{esc(_first(a, 'kibana.alert.uuid'))}'>"
                    f"{esc(_first(a, 'kibana.alert.uuid')[:12])}</a></td></tr>")
    more = (f"<p class=muted>… {len(timed) - 500} more alerts not listed here.</p>"
            if len(timed) > 500 else "")
    return (f"<div class=card><div class=timeline>{bars}</div><div class=axis>"
            f"<span>{esc(iso_ms(start))}</span><span>{esc(iso_ms(end))}</span></div>"
            f"<table style='margin-top:10px'><tr><th>event time</th><th>priority</th><th>host</th>"
            f"<th>user</th><th>process</th><th>credential</th><th>alert</th></tr>"
            f"{''.join(rows)}</table>{more}</div>")


def _kv(pairs: Iterable[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs
                    if v not in (None, "", [], {}))
    return f"<dl class=kv>{items}</dl>" if items else "<p class=empty>nothing recorded</p>"


def _list(items: Iterable[Any], cls: str = "plain", tag: str = "ul") -> str:
    lis = "".join(f"<li>{esc(i)}</li>" for i in items)
    return f"<{tag} class={cls}>{lis}</{tag}>" if lis else "<p class=empty>none</p>"


def _alert(alert: Mapping[str, Any], *, expand: bool = False) -> str:
    uuid = _first(alert, "kibana.alert.uuid")
    prio = str(_t(alert, "priority", "?"))
    cmd: Mapping[str, Any] = _t(alert, "command_line", {}) or {}
    work: Mapping[str, Any] = _t(alert, "workload", {}) or {}
    user: Mapping[str, Any] = _t(alert, "user", {}) or {}
    creds: list[Mapping[str, Any]] = _t(alert, "credentials", []) or []
    tags = []
    if _t(alert, "exfil_indicators"):
        tags.append("<span class='tag bad'>exfil in command</span>")
    if _t(alert, "followup_exfil"):
        tags.append("<span class='tag bad'>network/exfil follow-up</span>")
    if _t(alert, "likely_benign"):
        tags.append("<span class='tag ok'>likely benign</span>")
    tags.extend(f"<span class=tag>{esc(k)}</span>" for k in _t(alert, "kinds", []) or [])
    head = (f"<summary><span class='badge {esc(prio)}'>{esc(prio)}</span> "
            f"<b>{esc(_first(alert, 'process.name') or '?')}</b> on "
            f"<b>{esc(_first(alert, 'host.name') or '?')}</b>"
            f"<span class=sumline>{esc(_first(alert, 'kibana.alert.original_time'))} · score "
            f"{esc(_t(alert, 'score', '?'))} · {esc(_first(alert, 'kibana.alert.rule.name'))}</span>"
            f"<div style='margin-top:4px'>{''.join(tags)}</div></summary>")
    lines = [f"<p>{esc(_t(alert, 'summary', ''))}</p>",
             f"<h3>Reason</h3><p>{esc(_first(alert, 'kibana.alert.reason'))}</p>",
             "<h3>Command line</h3>",
             f"<pre>{esc(cmd.get('reconstructed', '(no arguments recorded)'))}</pre>"]
    for key in ("command_line", "title"):
        if cmd.get(key) and cmd.get(key) != cmd.get("reconstructed"):
            lines.append(f"<div class=muted>process.{esc(key)}:</div><pre>{esc(cmd[key])}</pre>")
    explanation = alert.get("credwatch.explanation") or get_values(alert, "credwatch.explanation")
    lines.append("<h3>Why it matched</h3>" + _list(explanation or []))
    inds = _t(alert, "indicators", []) or []
    lines.append("<h3>Piping, encoding and exfiltration</h3>" + (
        "<table><tr><th>type</th><th>tool</th><th>evidence</th></tr>" + "".join(
            f"<tr><td>{esc(i.get('type'))}{' (exfil)' if i.get('exfil') else ''}</td>"
            f"<td>{esc(i.get('tool'))}</td><td><code>{esc(i.get('evidence'))}</code></td></tr>"
            for i in inds) + "</table>" if inds else "<p class=empty>none in the command</p>"))
    chain = _t(alert, "parent_chain", []) or []
    chain_rows = "".join(
        f"<tr><td>{esc(c.get('role'))}</td><td>{esc(c.get('name'))}</td>"
        f"<td><code>{esc(c.get('executable'))}</code></td><td>{esc(c.get('pid'))}</td>"
        f"<td><code>{esc(c.get('command_line'))}</code> {esc(c.get('entry_type', ''))}</td></tr>"
        for c in chain)
    left = ("<h3>User and session</h3>" + _kv(user.items())
            + "<h3>Parent chain</h3>" + (f"<table>{chain_rows}</table>" if chain_rows
                                        else "<p class=empty>not in the event</p>"))
    right = ("<h3>Workload</h3>" + _kv((k, v) for k, v in work.items()
                                       if k != "location_reasons")
             + _list(work.get("location_reasons", []))
             + "<h3>Verdict</h3>" + _kv([("likely benign", _t(alert, "likely_benign")),
                                         ("why", _t(alert, "benign_reason"))])
             + _list(_t(alert, "score_factors", []) or []))
    lines.append(f"<div class=two><div>{left}</div><div>{right}</div></div>")
    related = _t(alert, "related")
    if related:
        lines.append("<h3>Related activity (same host and session/parent)</h3><table>"
                     "<tr><th>Δ s</th><th>relation</th><th>process</th><th>args</th>"
                     "<th>categories</th></tr>" + "".join(
                         f"<tr><td class=num>{esc(r.get('delta_s'))}</td>"
                         f"<td>{esc(r.get('relation'))}</td><td>{esc(r.get('process'))}</td>"
                         f"<td><code>{esc(r.get('args'))}</code></td>"
                         f"<td>{esc(', '.join(r.get('categories') or []))}</td></tr>"
                         for r in related) + "</table>")
    for c in creds:
        lines.append(f"<h3>{esc(c.get('label'))}: <code>{esc(c.get('path'))}</code></h3>"
                     f"<p><b>Blast radius:</b> {esc(c.get('blast_radius'))}</p>"
                     f"<b>Response</b>{_list(c.get('response', []))}"
                     f"<b>Review</b>{_list(c.get('review', []))}")
    lines.append("<h3>Next steps</h3>" + _list(_t(alert, "next_steps", []) or [], "steps", "ol"))
    src = _first(alert, "credwatch.source.path")
    lines.append("<p class=muted>" + esc(f"alert {uuid}; status "
                                         f"{_first(alert, 'kibana.alert.workflow_status')}")
                 + (esc(f"; source {src}:{_first(alert, 'credwatch.source.line')}") if src else "")
                 + "</p>")
    return (f"<details class=alert id='a-{esc(uuid)}'{' open' if expand or prio == 'P1' else ''}>"
            f"{head}<div class=alert-body>{''.join(lines)}</div></details>")


def _sort_key(alert: Mapping[str, Any]) -> tuple[str, float, str]:
    t = _event_time(alert)
    return (str(_t(alert, "priority", "P9")), -(t.timestamp() if t else 0.0),
            _first(alert, "kibana.alert.uuid"))


def render_report(alerts: Iterable[Mapping[str, Any]], *, title: str = "credwatch alert report",
                  generated: datetime | None = None, source: str = "") -> str:
    """The HTML report for ``alerts`` (triage computed where missing)."""
    docs = [ensure_triage(a) for a in alerts]
    docs.sort(key=_sort_key)
    when = iso_ms(generated or datetime.now(UTC))
    meta = f"{len(docs)} alert(s)" + (f" from {source}" if source else "")
    # Without scripts, a collapsed <details> hides its content from print and search:
    # expand everything in small reports, and P1 always.
    expand = len(docs) <= 100
    body = "".join(_alert(a, expand=expand) for a in docs) or "<p class=empty>No alerts matched.</p>"
    template = Template(resources.files("credwatch.triage").joinpath("report.html")
                        .read_text(encoding="utf-8"))
    return template.substitute(title=esc(title), meta=esc(meta), summary=_summary(docs),
                               timeline=_timeline(docs), alerts=body, generated=esc(when),
                               version=esc(__version__))
