"""``credwatch report``: a self-contained HTML report of alerts with their triage."""

from __future__ import annotations

import argparse
from typing import Any

from credwatch.alerts.store import WORKFLOW_STATUSES
from credwatch.cli.common import open_store
from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.filters import AlertFilter, add_filter_args
from credwatch.privatefile import refuse_inputs_as_outputs
from credwatch.sources.read import open_binary
from credwatch.triage.report import (
    filter_alerts,
    read_alerts_ndjson,
    render_report,
    write_report,
)

EXAMPLES = """\
examples:
  credwatch report -o report.html
  credwatch report --status open --since now-24h --severity high -o open-today.html
  credwatch scan /var/log/audit/audit.log --format ndjson --no-store > alerts.ndjson
  credwatch report --input alerts.ndjson -o report.html
"""


def register(sub: Any) -> None:
    """Add ``report``."""
    p: argparse.ArgumentParser = sub.add_parser(
        "report", help="write a static HTML report of alerts and their triage", epilog=EXAMPLES,
        # Raw formatter (for the examples): the description is wrapped by hand to 80 columns.
        description="Write one self-contained HTML file (no external assets; a small inline\n"
        "script sorts and filters the alert table) with a summary by priority, host,\n"
        "credential category and rule, a timeline, every alert with its evidence, and\n"
        "each rule's guide and each credential category's response steps once.\n"
        "Alerts come from the store or from an alerts NDJSON file.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", "-i", metavar="FILE",
                   help="alerts NDJSON (or a JSON array) instead of the store; - for stdin")
    p.add_argument("--db", metavar="PATH", help="alert store (default in $XDG_DATA_HOME)")
    p.add_argument("--output", "-o", metavar="FILE", default="credwatch-report.html",
                   help="where to write the HTML (default credwatch-report.html; - for stdout)")
    p.add_argument("--title", default="credwatch alert report", help="report title")
    p.add_argument("--rule", help="rule_id or rule name")
    add_filter_args(p)
    p.add_argument("--status", choices=WORKFLOW_STATUSES, help="workflow status")
    p.add_argument("--limit", type=int, default=10000,
                   help="at most this many alerts, newest first (default 10000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, env: Env) -> int:
    """Read, filter, render and write."""
    # --since/--until/--severity/--host mean what they mean for scan and alerts list.
    alert_filter = AlertFilter.from_args(args, env.clock())
    filters = {"rule": args.rule, "status": args.status}
    # Refuse -o naming the --input file (or the store) before reading or writing anything.
    refuse_inputs_as_outputs([("--output", args.output)],
                             [p for p in (args.input, args.db) if p])
    if args.input:
        stream = open_binary(args.input, env.stdin)
        try:
            alerts = alert_filter.apply(filter_alerts(read_alerts_ndjson(stream, args.input),
                                                      **filters))
        finally:
            if args.input != "-":
                stream.close()
        alerts = alerts[: args.limit] if args.limit else alerts
        source = "stdin" if args.input == "-" else args.input
    else:
        with open_store(args, env) as store:
            alerts, _total = store.select(limit=args.limit or None, **filters,
                                          **alert_filter.store_args())
            source = str(store.path)
    page = render_report(alerts, title=args.title, generated=env.clock(), source=source)
    if args.output == "-":
        env.stdout.write(page)
        return ExitStatus.OK
    write_report(page, args.output)
    env.stderr.write(f"credwatch: wrote {len(alerts)} alert(s) to {args.output}\n")
    return ExitStatus.OK if alerts else ExitStatus.NO_ALERTS
