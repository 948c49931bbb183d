"""A self-contained HTML report of alerts and their triage.

One file with no external assets, so it can be mailed or attached to a
ticket: a summary by priority, host, credential category and rule (each
linking to the filtered alert table), a timeline chart, the sortable and
filterable alert table with each alert's evidence, and, once each, every
rule's investigation guide and every credential category's blast radius,
response and review steps. A small inline script sorts and filters; the
Content-Security-Policy allows only that script and the inline style (by
hash) and no network access at all. Without the script every alert's details
are shown.

Arguments, paths and host names come from monitored machines and are
attacker-controlled. The page is rendered by Jinja2 from ``report.html`` with
autoescaping on: Python only builds plain view data, never markup, except
through :mod:`credwatch.triage.report_text` (the guide's markdown, rendered
without raw HTML, and the script's JSON data, escaped for a ``<script>``
element). Every value also passes through
:func:`credwatch.alerts.display.visible_text`, so NUL, bidi overrides and
other invisible characters appear as visible escapes (``\\u202e``) instead of
reordering or hiding text. The file is written 0600: it holds full command
lines.

Alerts without a ``credwatch.triage`` block (stored before triage existed,
or written by another tool) are enriched on the fly from their copy of the
source event; no correlation is possible then.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from typing import IO, Any

import orjson
from jinja2 import Environment, FunctionLoader, StrictUndefined
from markupsafe import Markup

from credwatch import __version__
from credwatch.alerts.build import iso_ms, parse_event_time
from credwatch.alerts.display import visible_text
from credwatch.errors import ConfigError, SourceError
from credwatch.normalize.flatten import get_values
from credwatch.privatefile import open_private_text
from credwatch.timemath import datetime_to_ms
from credwatch.triage.enrich import PREFIX, enrich_alert
from credwatch.triage.report_chart import timeline_chart
from credwatch.triage.report_text import code_spans, host_label, render_guide, script_json

_PRIORITIES = ("P1", "P2", "P3", "P4")


def _first(doc: Mapping[str, Any], field: str) -> str:
    vals = get_values(doc, field)
    return str(vals[0]) if vals else ""


def _t(alert: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return alert.get(PREFIX + key, default)


# Alerts read with --input come from a file: their triage block may have any shape.
def _items(value: Any) -> list[Any]:
    """A list field as a list (a lone value becomes one item, nothing becomes none)."""
    if value in (None, "", [], {}):
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _records(alert: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """A triage list of objects, keeping only the objects."""
    return [r for r in _items(_t(alert, key)) if isinstance(r, Mapping)]


def _rows(alert: Mapping[str, Any], key: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """A triage list of objects as rows holding exactly ``fields`` (missing ones None).

    The template indexes the rows directly: cheaper than method calls per cell.
    """
    return [{f: r.get(f) for f in fields} for r in _records(alert, key)]


def _mapping(alert: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = _t(alert, key)
    return value if isinstance(value, Mapping) else {}


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
    if _t(alert, "version") is not None:
        return dict(alert)  # rendering never modifies it: no deep copy needed
    doc = copy.deepcopy(dict(alert))
    enrich_alert(doc)
    return doc


# -- view models: plain data for the template (no markup is built here) --------------------
#
# Per-rule and per-category text (the investigation guide, the clauses every alert of a rule
# matched, blast radius, response and review steps) is shown once in its own section and
# referenced from each alert: a report of thousands of alerts stays small.

_SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}
_NO_CATEGORY = "(no credential category)"
#: Hosts and categories listed in the summary (all of them are in the filters): a hunt over a
#: fleet must not add a summary row per alert.
_SUMMARY_ROWS = 25


class _Index:
    """Distinct keys in order of first appearance, with a count and the view of each."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def add(self, key: str, fields: Mapping[str, Any], p1: bool) -> dict[str, Any]:
        """The item of ``key`` (``fields`` on first sight), counting one more alert."""
        item = self.items.get(key)
        if item is None:
            item = self.items[key] = {"i": len(self.items), "count": 0, "p1": 0, **fields}
        item["count"] += 1
        item["p1"] += p1
        return item

    def ranked(self) -> list[dict[str, Any]]:
        return sorted(self.items.values(), key=lambda it: (-it["count"], it["i"]))


def _merge(into: list[str], more: Iterable[Any]) -> None:
    for step in more:
        if str(step) not in into and len(into) < 50:
            into.append(str(step))


def _categories(alert: Mapping[str, Any], cats: _Index, p1: bool) -> list[dict[str, Any]]:
    """The alert's credential paths with their category (counted once per alert)."""
    out, seen = [], set()
    for c in _records(alert, "credentials") or [{}]:
        label = str(c.get("label") or c.get("kind") or _NO_CATEGORY)
        key = str(c.get("kind") or label)
        if key in seen:
            cat = cats.items[key]
        else:
            seen.add(key)
            cat = cats.add(key, {"label": label, "blast_radius": "", "response": [],
                                 "review": []}, p1)
        cat["blast_radius"] = cat["blast_radius"] or c.get("blast_radius") or ""
        _merge(cat["response"], _items(c.get("response")))
        _merge(cat["review"], _items(c.get("review")))
        out.append({"i": cat["i"], "label": label, "path": c.get("path", "")})
    return out


def _rule(alert: Mapping[str, Any], rules: _Index, p1: bool) -> dict[str, Any]:
    name = _first(alert, "kibana.alert.rule.name") or "(unnamed rule)"
    key = _first(alert, "kibana.alert.rule.rule_id") or _first(alert, "kibana.alert.rule.uuid")
    if (key or name) in rules.items:
        return rules.add(key or name, {}, p1)
    return rules.add(key or name, {
        "name": name, "severity": _first(alert, "kibana.alert.severity"),
        "risk": _first(alert, "kibana.alert.risk_score"),
        "note": _first(alert, "kibana.alert.rule.note"), "lines": None}, p1)


def _chain(alert: Mapping[str, Any]) -> list[str]:
    """The parent chain, one short text per process, parent first.

    A process in two roles (the parent that is also the session leader) is shown once,
    with both roles.
    """
    procs: list[dict[str, Any]] = []
    for p in _records(alert, "parent_chain"):
        who = str(p.get("name") or p.get("executable") or "")
        if p.get("pid") is not None:
            who = f"{who} ({p['pid']})" if who else f"pid {p['pid']}"
        role = p.get("role")
        if procs and procs[-1]["who"] == (who or "?"):
            procs[-1]["roles"].append(role)
        else:
            procs.append({"who": who or "?", "roles": [role], "entry": p.get("entry_type"),
                          "cmd": p.get("command_line") if p.get("command_line") not in (
                              None, "", p.get("name")) else None})
    out = []
    for proc in procs:
        roles = [str(r) for r in proc["roles"] if r not in (None, "parent")]
        text = proc["who"] + (f" {', '.join(roles)}" if roles else "")
        text += f" [{proc['entry']}]" if proc["entry"] else ""
        out.append(text + (f": {proc['cmd']}" if proc["cmd"] else ""))
    return out


def _user(alert: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The user block, without audit ids that only repeat the user's."""
    user = _mapping(alert, "user")
    same = {"audit_name": user.get("name"), "audit_id": user.get("id")}
    return _present((k, v) for k, v in user.items() if k not in same or v != same[k])


_FOLLOWUPS_SHOWN = 5


def _related(alert: Mapping[str, Any]) -> dict[str, Any] | None:
    """The correlated events around ``alert``, in brief: counts and the follow-ups of interest.

    An alert holds up to the correlator's ``max_related`` events before and after it
    (about 6 KB); listing them would make the page grow by kilobytes per alert, so it
    shows the counts and the activity after the read that has a category (exfil,
    encoding, archive, ...), the rest being in the alert (``credwatch alerts show``).
    """
    rows = _records(alert, "related")
    if not rows:
        return None
    follow = [r for r in rows if r.get("when") == "after" and _items(r.get("categories"))]
    return {
        "count": len(rows),
        "before": sum(1 for r in rows if r.get("when") == "before"),
        "after": sum(1 for r in rows if r.get("when") == "after"),
        "followups": [{"delta_s": r.get("delta_s"), "process": r.get("process"),
                       "categories": ", ".join(map(str, _items(r.get("categories"))))}
                      for r in follow[:_FOLLOWUPS_SHOWN]],
        "more": max(len(follow) - _FOLLOWUPS_SHOWN, 0),
    }


def _details(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The per-alert evidence under the alert's row (only what differs between alerts)."""
    work = _mapping(alert, "workload")
    explanation = alert.get("credwatch.explanation") or get_values(alert, "credwatch.explanation")
    return {
        "matched": [str(x) for x in _items(explanation)],
        "extra_cmd": [(key, v) for key, v in _command(alert)["extra"]],
        "user": _user(alert),
        "chain": _chain(alert),
        "workload": _present((k, v) for k, v in work.items()
                             if k not in ("location_reasons", "host", "hostname")),
        "location_reasons": [str(x) for x in _items(work.get("location_reasons"))],
        "benign": bool(_t(alert, "likely_benign")), "benign_reason": _t(alert, "benign_reason"),
        "factors": [str(x) for x in _items(_t(alert, "score_factors"))],
        "indicators": _rows(alert, "indicators", ("type", "exfil", "tool", "evidence")),
        "tuning": [code_spans(str(s)) for s in _items(_t(alert, "next_steps"))
                   if str(s).startswith("If confirmed expected")],
        "tags": _tags(alert), "footer": _footer(alert),
    }


def _alert(alert: Mapping[str, Any], hosts: _Index, cats: _Index,
           rules: _Index) -> dict[str, Any]:
    """One row of the alert table, with its details."""
    prio = str(_t(alert, "priority", "?"))
    t = _event_time(alert)
    label = host_label(alert)
    host = hosts.add(label, {"label": label}, prio == "P1")
    creds = _categories(alert, cats, prio == "P1")
    rule = _rule(alert, rules, prio == "P1")
    return {
        "uuid": _first(alert, "kibana.alert.uuid"), "priority": prio, "open": prio == "P1",
        "t": datetime_to_ms(t) if t else "", "time": iso_ms(t) if t else "",
        "severity": _first(alert, "kibana.alert.severity"),
        "score": _t(alert, "score", ""), "host": host["label"], "h": host["i"],
        "user": _first(alert, "user.name"), "process": _first(alert, "process.name") or "?",
        "command": _command(alert)["reconstructed"], "creds": creds,
        "c": " ".join(str(c["i"]) for c in creds), "rule": rule, "details": _details(alert),
        "related": _related(alert),
    }


def _common_lines(rows: Sequence[dict[str, Any]]) -> None:
    """Move the explanation lines every alert of a rule shares to the rule (shown once)."""
    by_rule: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by_rule.setdefault(r["rule"]["i"], []).append(r)
    for group in by_rule.values():
        if len(group) < 2:
            continue
        common = set(group[0]["details"]["matched"])
        for r in group[1:]:
            common &= set(r["details"]["matched"])
        group[0]["rule"]["lines"] = [x for x in group[0]["details"]["matched"] if x in common]
        for r in group:
            r["details"]["matched"] = [x for x in r["details"]["matched"] if x not in common]


def _summary(rows: Sequence[Mapping[str, Any]], docs: Sequence[Mapping[str, Any]]
             ) -> dict[str, Any]:
    prio: Counter[str] = Counter({p: 0 for p in _PRIORITIES})
    prio.update(r["priority"] for r in rows)
    return {
        "priorities": [(p, prio.get(p, 0)) for p in _PRIORITIES] + sorted(
            (p, n) for p, n in prio.items() if p not in _PRIORITIES),
        "exfil": sum(1 for a in docs if _t(a, "exfil_indicators") or _t(a, "followup_exfil")),
        "benign": sum(1 for a in docs if _t(a, "likely_benign")),
    }


def _event_time(alert: Mapping[str, Any]) -> datetime | None:
    return parse_event_time(_first(alert, "kibana.alert.original_time") or
                            _first(alert, "@timestamp"))


def _present(pairs: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Key/value pairs worth showing (empty values dropped)."""
    return [(k, v) for k, v in pairs if v not in (None, "", [], {})]


def _tags(alert: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(css class, label)`` badges in an alert's details."""
    tags = []
    if _t(alert, "exfil_indicators"):
        tags.append(("bad", "exfil in command"))
    if _t(alert, "followup_exfil"):
        tags.append(("bad", "network/exfil follow-up"))
    if _t(alert, "likely_benign"):
        tags.append(("ok", "likely benign"))
    return tags


def _command(alert: Mapping[str, Any]) -> dict[str, Any]:
    cmd = _mapping(alert, "command_line")
    reconstructed = cmd.get("reconstructed", "(no arguments recorded)")
    extra = [(key, cmd[key]) for key in ("command_line", "title")
             if cmd.get(key) and cmd.get(key) != cmd.get("reconstructed")]
    return {"reconstructed": reconstructed, "extra": extra}


def _footer(alert: Mapping[str, Any]) -> str:
    """Id prefix (what ``alerts show`` takes; the row's anchor has it whole), status, source."""
    uuid = _first(alert, "kibana.alert.uuid")
    text = (f"alert {uuid[:16]}, "
            f"{_first(alert, 'kibana.alert.workflow_status') or 'open'}")
    src = _first(alert, "credwatch.source.path")
    if src:
        text += f", from {src}:{_first(alert, 'credwatch.source.line')}"
    return text


def _view(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Everything the template shows."""
    hosts, cats, rules = _Index(), _Index(), _Index()
    rows = [_alert(a, hosts, cats, rules) for a in docs]
    _common_lines(rows)
    timeline = timeline_chart([(r["t"], r["priority"]) for r in rows if r["t"] != ""])
    prios = sorted({r["priority"] for r in rows}, key=lambda p: (p not in _PRIORITIES, p))
    sevs = sorted({r["severity"] for r in rows if r["severity"]},
                  key=lambda s: -_SEVERITY_RANK.get(s.lower(), 0))
    return {
        "summary": _summary(rows, docs), "timeline": timeline, "alerts": rows,
        "summary_rows": _SUMMARY_ROWS,
        "hosts": hosts.ranked(), "categories": cats.ranked(), "rules": rules.ranked(),
        # What the filter script needs, shown as the table shows it (visible_text, as the
        # template's finalize does); severity and priority are matched by that text too.
        "data": script_json({
            "hosts": [visible_text(h["label"]) for h in hosts.items.values()],
            "cats": [visible_text(c["label"]) for c in cats.items.values()],
            "sevs": [visible_text(x) for x in sevs], "prios": [visible_text(x) for x in prios]}),
    }


# -- rendering ------------------------------------------------------------------------------

def _finalize(value: Any) -> Any:
    """Every ``{{ value }}``: None is empty, booleans yes/no, invisible characters escaped.

    Autoescaping then HTML-escapes the result; Markup (a rendered guide, the
    script and its JSON data) passes as is.
    """
    if isinstance(value, Markup):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return visible_text(value)


def _asset(name: str) -> str:
    return resources.files("credwatch.triage").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(loader=FunctionLoader(_asset), autoescape=True, finalize=_finalize,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["guide"] = render_guide
    return env


@lru_cache(maxsize=1)
def _inline_assets() -> dict[str, Any]:
    """The report's own script and style, and a CSP that allows exactly them (by hash)."""
    script, style = _asset("report.js"), _asset("report.css")

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    csp = (f"default-src 'none'; script-src {sha(script)}; style-src {sha(style)}; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    return {"script": Markup(script), "style": Markup(style), "csp": csp}


def _sort_key(alert: Mapping[str, Any]) -> tuple[str, float, str]:
    t = _event_time(alert)
    return (str(_t(alert, "priority", "P9")), -(t.timestamp() if t else 0.0),
            _first(alert, "kibana.alert.uuid"))


def render_report(alerts: Iterable[Mapping[str, Any]], *, title: str = "credwatch alert report",
                  generated: datetime | None = None, source: str = "") -> str:
    """The HTML report for ``alerts`` (triage computed where missing)."""
    docs = [ensure_triage(a) for a in alerts]
    docs.sort(key=_sort_key)
    return _environment().get_template("report.html").render(
        title=title, meta=f"{len(docs)} alert(s)" + (f" from {source}" if source else ""),
        generated=iso_ms(generated or datetime.now(UTC)), version=__version__,
        **_view(docs), **_inline_assets())


def write_report(page: str, path: str) -> None:
    """Write ``page`` to ``path`` atomically as a private file (0600, never through a link).

    The page is written to a new temporary file next to ``path`` (created
    exclusively, so nothing planted there is followed) and renamed over it.
    """
    if os.path.islink(path):
        raise ConfigError(f"{path}: is a symbolic link; credwatch does not write through "
                          "links (name the real file)")
    if not os.path.isdir(os.path.dirname(path) or "."):
        raise ConfigError(f"{path}: folder does not exist")
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open_private_text(tmp, exclusive=True) as fh:
            fh.write(page)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise
