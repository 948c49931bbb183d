"""``credwatch runs``: the history of scheduled executions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from credwatch.alerts.build import iso_ms
from credwatch.alerts.display import terminal_text
from credwatch.cli.common import open_store
from credwatch.cli.env import Env, ExitStatus
from credwatch.engine.runs import STATUSES, RunStore

EXAMPLES = """\
examples:
  credwatch runs                         # newest first
  credwatch runs --status failed         # gaps and errors
  credwatch runs --rule 5f0fff18-f340-444b-9a98-c49ade766ff4 --format json
  credwatch runs --watch                 # each followed file: counts and lag of credwatch watch
"""


def register(sub: Any) -> None:
    """Add the ``runs`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "runs", help="list the history of scheduled executions (credwatch run)",
        description="List rule executions recorded by `credwatch run`: start, windows, status "
        "(succeeded / partial failure / failed), events searched, alerts created, warnings, "
        "and what --engine duckdb|spark read (files, partitions, row groups, rows).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rule", help="rule_id, rule name or rule uuid")
    p.add_argument("--status", choices=STATUSES, help="only executions with this status")
    p.add_argument("--since", metavar="TIMESTAMP", help="only executions started at or after")
    p.add_argument("--limit", type=int, default=50, help="at most N executions (0: all)")
    p.add_argument("--oldest-first", action="store_true", help="oldest first")
    p.add_argument("--format", choices=("table", "json", "ndjson"), default="table")
    p.add_argument("--db", metavar="PATH", help="alert store (default in $XDG_DATA_HOME)")
    p.add_argument("--watch", action="store_true",
                   help="show the status of `credwatch watch` per followed file (lag in bytes and seconds)")
    p.set_defaults(func=run)


def _watch_status(args: argparse.Namespace, env: Env) -> int:
    """Print the ``watch_status`` rows."""
    store = open_store(args, env)
    try:
        rows = RunStore(store).watch_statuses()
    finally:
        store.close()
    if args.format != "table":
        docs = [r.to_json() for r in rows]
        text = json.dumps(docs, indent=2) if args.format == "json" else "\n".join(json.dumps(d) for d in docs)
        env.stdout.write(text + "\n" if text else "")
        return ExitStatus.OK
    if not rows:
        env.stdout.write("no watch recorded\n")
    for r in rows:
        state = "running" if r.running else "stopped"
        env.stdout.write(
            f"{terminal_text(r.path)}: {state} (pid {r.pid}, {r.input_format}), updated "
            f"{iso_ms(r.updated_at)}; {r.lines} lines, {r.events} events ({r.prefiltered} prefiltered), "
            f"{r.alerts} alerts, {r.failed} failed; lag {r.lag_bytes} bytes, {r.lag_seconds:.1f} s "
            f"(max {r.max_lag_seconds:.1f} s)\n")
    return ExitStatus.OK


def run(args: argparse.Namespace, env: Env) -> int:
    """Print the run history (or, with ``--watch``, the watch statuses)."""
    if args.watch:
        return _watch_status(args, env)
    store = open_store(args, env)
    try:
        records = RunStore(store).history(rule=args.rule, status=args.status, since=args.since,
                                          limit=args.limit or None,
                                          newest_first=not args.oldest_first)
    finally:
        store.close()
    if args.format == "json":
        env.stdout.write(json.dumps([r.to_json() for r in records], indent=2) + "\n")
        return ExitStatus.OK
    if args.format == "ndjson":
        for r in records:
            env.stdout.write(json.dumps(r.to_json()) + "\n")
        return ExitStatus.OK
    if not records:
        env.stdout.write("no executions recorded\n")
        return ExitStatus.OK
    header = f"{'STARTED':24} {'STATUS':15} {'WIN':>3} {'SEARCHED':>8} {'MATCHED':>7} " \
             f"{'EXCL':>4} {'ALERTS':>6} {'MS':>5}  RULE"
    env.stdout.write(header + "\n")
    for r in records:
        env.stdout.write(
            f"{iso_ms(r.started_at):24} {r.status:15} {len(r.windows):>3} {r.events_searched:>8} "
            f"{r.events_matched:>7} {r.events_excluded:>4} {r.alerts_created:>6} "
            f"{r.duration_ms:>5}  {terminal_text(r.rule_name)}\n")
        if r.read is not None:
            env.stdout.write(f"{'':24} read ({r.read.engine}): {terminal_text(r.read.text())}\n")
        for w in r.warnings:
            env.stdout.write(f"{'':24} warning: {terminal_text(w)}\n")
        for e in r.errors:
            env.stdout.write(f"{'':24} error: {terminal_text(e)}\n")
    return ExitStatus.OK
