"""``credwatch alerts``: list, show and triage alerts in the embedded store.

Text output (the table, ``show``) passes every event-derived value through
:mod:`credwatch.alerts.display`, so control characters, escape sequences and
bidi overrides in attacker-chosen arguments are shown escaped; JSON output
stays exact (JSON-escaped).
"""

from __future__ import annotations

import argparse
from typing import IO, Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table

from credwatch.alerts.display import terminal_cell, terminal_text
from credwatch.alerts.store import WORKFLOW_STATUSES
from credwatch.cli.common import (
    OUTPUT_FORMATS,
    alert_id,
    format_sink,
    human_out,
    open_store,
    terminal_width,
)
from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.filters import AlertFilter, add_filter_args
from credwatch.errors import ConfigError
from credwatch.normalize.flatten import get_values
from credwatch.sinks.output.fields import add_fields_args
from credwatch.sinks.output.rows import alert_time, matched_path
from credwatch.sinks.output.table import WIDE

EXAMPLES = """\
examples:
  credwatch alerts list --rule 5f0fff18-f340-444b-9a98-c49ade766ff4 --status open
  credwatch alerts list --host k8s-node-1 --since now-24h --severity high --format csv
  credwatch alerts show 33d4d7e69ce7
  credwatch alerts ack 33d4d7e69ce7 --status closed
"""


def register(sub: Any) -> None:
    """Add ``alerts list|show|ack``."""
    p: argparse.ArgumentParser = sub.add_parser(
        "alerts", help="list, show and acknowledge stored alerts", epilog=EXAMPLES,
        description="Work with alerts in the embedded SQLite store.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", metavar="PATH", help="alert store (default in $XDG_DATA_HOME)")
    asub = p.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    lp = asub.add_parser("list", help="list alerts, newest first", epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    lp.add_argument("--rule", help="rule_id or rule name")
    add_filter_args(lp)
    lp.add_argument("--status", choices=WORKFLOW_STATUSES, help="workflow status")
    lp.add_argument("--limit", type=_limit, default=100,
                    help="at most this many, newest event first (default 100; 0 for all)")
    lp.add_argument("--format", choices=OUTPUT_FORMATS, default=None,
                    help="table on a terminal, ndjson when piped; json, csv or timeline")
    add_fields_args(lp)
    lp.set_defaults(func=run_list)

    sp = asub.add_parser("show", help="print one alert with its explanation")
    sp.add_argument("uuid", type=alert_id,
                    help="kibana.alert.uuid (or a unique prefix of 8+ characters)")
    sp.add_argument("--format", choices=("text", "json"), default="text")
    sp.set_defaults(func=run_show)

    ap = asub.add_parser("ack", help="set an alert's workflow status")
    ap.add_argument("uuid", nargs="+", type=alert_id,
                    help="alert uuid(s), or unique prefixes of 8+ characters")
    ap.add_argument("--status", choices=WORKFLOW_STATUSES, default="acknowledged",
                    help="new workflow status (default acknowledged)")
    ap.set_defaults(func=run_ack)
    for action in (lp, sp, ap):
        # also accepted after the action (as `exceptions` does); SUPPRESS keeps one given before
        action.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS,
                            help="alert store (default in $XDG_DATA_HOME)")


def _limit(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise argparse.ArgumentTypeError(f"not a whole number of 0 or more: {text[:20]!r}")
    return int(text)


def _first(doc: Any, field: str) -> str:
    vals = get_values(doc, field)
    return str(vals[0]) if vals else ""


def run_list(args: argparse.Namespace, env: Env) -> int:
    """List stored alerts matching the filters, newest event first; "N of M" when cut."""
    alert_filter = AlertFilter.from_args(args, env.clock())
    with open_store(args, env) as store:
        alerts, total = store.select(rule=args.rule, status=args.status, limit=args.limit or None,
                                     **alert_filter.store_args())
    fmt = args.format or ("table" if env.stdout_isatty and args.fields is None else "ndjson")
    if fmt != "table":
        sink = format_sink(fmt, env.stdout, env, owns=False, to_terminal=False, fields=args.fields)
        for a in alerts:
            sink.write(a)
        sink.close()
        return ExitStatus.OK
    if args.fields is not None:
        format_sink("table", env.stdout, env, owns=False, to_terminal=False, fields=args.fields)
    shown = f"{len(alerts)} of {total} alert(s)" if len(alerts) < total else f"{total} alert(s)"
    width = terminal_width(env) or 160
    Console(file=env.stdout, force_terminal=bool(env.stdout_isatty), highlight=False,
            width=width).print(_alert_table(alerts, shown, wide=width >= WIDE))
    return ExitStatus.OK


def _alert_table(alerts: list[dict[str, Any]], title: str, *, wide: bool) -> Table:
    """The ``alerts list`` table.

    On narrow terminals: the id's first 8 characters (a prefix every command
    accepts), the event time to the minute, status, host, process and what
    matched; from :data:`WIDE` columns, the 12-character id, seconds, the
    severity and the rule name too.
    """
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("event time", no_wrap=True)
    for col in ("status", *(["sev"] if wide else []), "host", "process", "matched",
                *(["rule"] if wide else [])):
        table.add_column(col, overflow="fold")
    for a in alerts:
        when = alert_time(a).replace("T", " ")
        uuid = _first(a, "kibana.alert.uuid")
        cells = [uuid[:12] if wide else uuid[:8], when[:23] if wide else when[:16],
                 _first(a, "kibana.alert.workflow_status"),
                 *([_first(a, "kibana.alert.severity")] if wide else []),
                 _first(a, "host.name"), _first(a, "process.name"), matched_path(a),
                 *([_first(a, "kibana.alert.rule.name")] if wide else [])]
        table.add_row(*(terminal_cell(v) for v in cells))
    return table


def run_show(args: argparse.Namespace, env: Env) -> int:
    with open_store(args, env) as store:
        alert = store.get(args.uuid)
    if alert is None:
        raise ConfigError(f"no alert with uuid {args.uuid!r} in the store")
    if args.format == "json":
        env.stdout.write(orjson.dumps(alert, option=orjson.OPT_INDENT_2).decode() + "\n")
        return ExitStatus.OK
    out = human_out(env)
    _show_text(alert, out)
    out.flush()
    return ExitStatus.OK


def _show_text(alert: dict[str, Any], out: IO[str]) -> None:
    """The human-readable form of one alert; every value escaped for the terminal."""
    def line(label: str, value: str) -> None:
        out.write(f"  {label + ':':<10} {terminal_text(value)}\n")

    out.write(f"{terminal_text(_first(alert, 'kibana.alert.rule.name'))}\n")
    line("uuid", _first(alert, "kibana.alert.uuid"))
    line("severity", f"{_first(alert, 'kibana.alert.severity')} "
                     f"(risk {_first(alert, 'kibana.alert.risk_score')})")
    line("status", _first(alert, "kibana.alert.workflow_status"))
    line("event at", _first(alert, "kibana.alert.original_time"))
    line("reason", _first(alert, "kibana.alert.reason"))
    line("command", " ".join(str(a) for a in get_values(alert, "process.args")))
    src = _first(alert, "credwatch.source.path")
    if src:
        line("source", f"{src}:{_first(alert, 'credwatch.source.line')}")
    out.write("  why it matched:\n")
    for reason in _list(alert, "credwatch.explanation"):
        out.write(f"    - {terminal_text(reason)}\n")
    for label, field in (("priority", "credwatch.triage.priority"),
                         ("triage", "credwatch.triage.summary")):
        val = _first(alert, field)
        if val:
            line(label, val)
    for step in _list(alert, "credwatch.triage.next_steps"):
        out.write(f"    - {terminal_text(step)}\n")


def _list(alert: dict[str, Any], field: str) -> list[Any]:
    """A list-valued field, flat-dotted or nested (a stored document may be either)."""
    value = alert.get(field)
    if isinstance(value, list):
        return value
    return list(get_values(alert, field)) if value is None else [value]


def run_ack(args: argparse.Namespace, env: Env) -> int:
    missing = []
    with open_store(args, env) as store:
        for uuid in args.uuid:
            full = store.get(uuid)
            target = _first(full, "kibana.alert.uuid") if full else uuid
            if not store.set_status(target, args.status):
                missing.append(uuid)
            else:
                env.stdout.write(f"{terminal_text(target)} {args.status}\n")
    if missing:
        raise ConfigError(f"no alert with uuid {', '.join(missing)} in the store")
    return ExitStatus.OK
