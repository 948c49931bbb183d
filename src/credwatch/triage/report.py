"""A self-contained static HTML report of alerts and their triage.

One file, no scripts and no external assets (a Content-Security-Policy meta
tag forbids them anyway), so it can be mailed or attached to a ticket.

Arguments, paths and host names come from monitored machines and are
attacker-controlled. The page is rendered by Jinja2 from ``report.html`` with
autoescaping on: Python only builds plain view data (the ``_summary``,
``_timeline`` and ``_alert`` view models), never markup. Every value also
passes through :func:`credwatch.alerts.display.visible_text`, so NUL, bidi
overrides and other invisible characters appear as visible escapes
(``\\u202e``) instead of reordering or hiding text. The file is written 0600:
it holds full command lines.

Alerts without a ``credwatch.triage`` block (stored before triage existed,
or written by another tool) are enriched on the fly from their copy of the
source event; no correlation is possible then.
"""

from __future__ import annotations

import contextlib
import copy
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
from credwatch.triage.enrich import PREFIX, enrich_alert

_PRIORITIES = ("P1", "P2", "P3", "P4")
_TIMELINE_BUCKETS = 48
_TIMELINE_ROWS = 500
_EXPAND_UP_TO = 100


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


# -- view models: plain data for the template (no markup is built in Python) ---------------

def _count_table(title: str, counts: Counter[str], *, limit: int = 12) -> dict[str, Any]:
    return {"title": title, "rows": counts.most_common(limit),
            "more": max(len(counts) - limit, 0)}


def _summary(alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    prio: Counter[str] = Counter({p: 0 for p in _PRIORITIES})
    prio.update(str(_t(a, "priority", "?")) for a in alerts)
    kinds: Counter[str] = Counter()
    for a in alerts:
        labels = {str(c.get("label")) for c in _records(a, "credentials")}
        kinds.update(labels or {"(no credential kind)"})
    return {
        "priorities": [(p, prio.get(p, 0)) for p in _PRIORITIES],
        "exfil": sum(1 for a in alerts if _t(a, "exfil_indicators") or _t(a, "followup_exfil")),
        "benign": sum(1 for a in alerts if _t(a, "likely_benign")),
        "tables": [
            _count_table("By rule", Counter(_first(a, "kibana.alert.rule.name") for a in alerts)),
            _count_table("By host", Counter(_first(a, "host.name") for a in alerts)),
            _count_table("By credential kind", kinds),
        ],
    }


def _event_time(alert: Mapping[str, Any]) -> datetime | None:
    return parse_event_time(_first(alert, "kibana.alert.original_time") or
                            _first(alert, "@timestamp"))


def _timeline_bars(timed: Sequence[tuple[datetime, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    start, end = timed[0][0], timed[-1][0]
    span = max((end - start).total_seconds(), 1.0)
    counts = [0] * _TIMELINE_BUCKETS
    hot = [False] * _TIMELINE_BUCKETS
    for t, a in timed:
        i = min(_TIMELINE_BUCKETS - 1, int((t - start).total_seconds() / span * _TIMELINE_BUCKETS))
        counts[i] += 1
        hot[i] = hot[i] or _t(a, "priority") == "P1"
    peak = max(counts)
    return [{"n": n, "hot": h, "height": max(1, round(100 * n / peak))}
            for n, h in zip(counts, hot, strict=True)]


def _timeline_row(t: datetime, a: Mapping[str, Any]) -> dict[str, Any]:
    return {"time": iso_ms(t), "priority": str(_t(a, "priority", "?")),
            "host": _first(a, "host.name"), "user": _first(a, "user.name"),
            "process": _first(a, "process.name"), "uuid": _first(a, "kibana.alert.uuid"),
            "credentials": ", ".join(str(c.get("path")) for c in _records(a, "credentials"))}


def _timeline(alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    timed = sorted(((t, a) for a in alerts if (t := _event_time(a)) is not None),
                   key=lambda x: x[0])
    if not timed:
        return None
    return {"bars": _timeline_bars(timed), "start": iso_ms(timed[0][0]),
            "end": iso_ms(timed[-1][0]),
            "rows": [_timeline_row(t, a) for t, a in timed[:_TIMELINE_ROWS]],
            "more": max(len(timed) - _TIMELINE_ROWS, 0)}


def _present(pairs: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Key/value pairs worth showing (empty values dropped)."""
    return [(k, v) for k, v in pairs if v not in (None, "", [], {})]


def _tags(alert: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(css class, label)`` badges under an alert's headline."""
    tags = []
    if _t(alert, "exfil_indicators"):
        tags.append(("bad", "exfil in command"))
    if _t(alert, "followup_exfil"):
        tags.append(("bad", "network/exfil follow-up"))
    if _t(alert, "likely_benign"):
        tags.append(("ok", "likely benign"))
    tags.extend(("", str(k)) for k in _items(_t(alert, "kinds")))
    return tags


def _command(alert: Mapping[str, Any]) -> dict[str, Any]:
    cmd = _mapping(alert, "command_line")
    reconstructed = cmd.get("reconstructed", "(no arguments recorded)")
    extra = [(key, cmd[key]) for key in ("command_line", "title")
             if cmd.get(key) and cmd.get(key) != cmd.get("reconstructed")]
    return {"reconstructed": reconstructed, "extra": extra}


def _context(alert: Mapping[str, Any]) -> dict[str, Any]:
    """User, parent chain, workload and verdict: the two-column block."""
    work = _mapping(alert, "workload")
    user = _mapping(alert, "user")
    return {
        "user": _present(user.items()),
        "chain": _rows(alert, "parent_chain",
                       ("role", "name", "executable", "pid", "command_line", "entry_type")),
        "workload": _present((k, v) for k, v in work.items() if k != "location_reasons"),
        "location_reasons": _items(work.get("location_reasons")),
        "verdict": _present([("likely benign", _t(alert, "likely_benign")),
                             ("why", _t(alert, "benign_reason"))]),
        "score_factors": _items(_t(alert, "score_factors")),
    }


def _footer(alert: Mapping[str, Any]) -> str:
    text = (f"alert {_first(alert, 'kibana.alert.uuid')}; status "
            f"{_first(alert, 'kibana.alert.workflow_status')}")
    src = _first(alert, "credwatch.source.path")
    if src:
        text += f"; source {src}:{_first(alert, 'credwatch.source.line')}"
    return text


def _alert(alert: Mapping[str, Any], *, expand: bool = False) -> dict[str, Any]:
    """Everything the template shows for one alert."""
    prio = str(_t(alert, "priority", "?"))
    explanation = alert.get("credwatch.explanation") or get_values(alert, "credwatch.explanation")
    return {
        "uuid": _first(alert, "kibana.alert.uuid"), "priority": prio,
        "open": expand or prio == "P1",
        "process": _first(alert, "process.name") or "?", "host": _first(alert, "host.name") or "?",
        "time": _first(alert, "kibana.alert.original_time"), "score": _t(alert, "score", "?"),
        "rule": _first(alert, "kibana.alert.rule.name"), "tags": _tags(alert),
        "summary": _t(alert, "summary", ""), "reason": _first(alert, "kibana.alert.reason"),
        "command": _command(alert), "explanation": _items(explanation),
        "indicators": _rows(alert, "indicators", ("type", "exfil", "tool", "evidence")),
        "context": _context(alert),
        "related": [{**r, "categories": ", ".join(map(str, _items(r["categories"])))}
                    for r in _rows(alert, "related",
                                   ("delta_s", "relation", "process", "args", "categories"))],
        "credentials": [{**c, "response": _items(c["response"]), "review": _items(c["review"])}
                        for c in _rows(alert, "credentials",
                                       ("label", "path", "blast_radius", "response", "review"))],
        "next_steps": _items(_t(alert, "next_steps")), "footer": _footer(alert),
    }


# -- rendering ------------------------------------------------------------------------------

def _finalize(value: Any) -> Any:
    """Every ``{{ value }}``: None is empty, NUL/bidi/invisible characters shown escaped.

    Autoescaping then HTML-escapes the result; template-made Markup passes as is.
    """
    if isinstance(value, Markup):
        return value
    return visible_text(value)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    def load(name: str) -> str:
        return resources.files("credwatch.triage").joinpath(name).read_text(encoding="utf-8")

    return Environment(loader=FunctionLoader(load), autoescape=True, finalize=_finalize,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _sort_key(alert: Mapping[str, Any]) -> tuple[str, float, str]:
    t = _event_time(alert)
    return (str(_t(alert, "priority", "P9")), -(t.timestamp() if t else 0.0),
            _first(alert, "kibana.alert.uuid"))


def render_report(alerts: Iterable[Mapping[str, Any]], *, title: str = "credwatch alert report",
                  generated: datetime | None = None, source: str = "") -> str:
    """The HTML report for ``alerts`` (triage computed where missing)."""
    docs = [ensure_triage(a) for a in alerts]
    docs.sort(key=_sort_key)
    # Without scripts, a collapsed <details> hides its content from print and search:
    # expand everything in small reports, and P1 always.
    expand = len(docs) <= _EXPAND_UP_TO
    return _environment().get_template("report.html").render(
        title=title, meta=f"{len(docs)} alert(s)" + (f" from {source}" if source else ""),
        summary=_summary(docs), timeline=_timeline(docs),
        alerts=[_alert(a, expand=expand) for a in docs],
        generated=iso_ms(generated or datetime.now(UTC)), version=__version__)


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
