"""``credwatch sinks``: test a sink, show the outbox, deliver what is pending."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import UTC
from typing import Any

from credwatch.alerts.display import terminal_text
from credwatch.alerts.store import AlertStore, default_db_path
from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.sinkopts import config_path, select
from credwatch.errors import ConfigError
from credwatch.sinks.config import load_config
from credwatch.sinks.deliver import Deliverer, make_transport
from credwatch.sinks.outbox import Item, Outbox
from credwatch.sinks.throttle import single
from credwatch.sinks.transport import scrub

DESCRIPTION = """\
Sinks deliver alerts to people and systems: a JSON webhook, Slack, syslog
(RFC 5424 over UDP, TCP or a unix socket) and Elasticsearch _bulk. They are
declared in a TOML file (--config, default $XDG_CONFIG_HOME/credwatch/config.toml,
which must be private: chmod 600) and chosen with `run/watch --sink NAME`.
Every alert for a sink goes through the store's outbox, in the transaction
that stores it; delivery retries with backoff until the receiver takes it
(at least once: receivers can deduplicate by kibana.alert.uuid), and an alert
the receiver refuses (4xx other than 408, 409, 429) is parked with the reason.

  sinks test NAME     send a test alert now (not stored, not queued)
  sinks status        pending / failing / delivered / parked per sink
  sinks deliver       deliver what is due (as run and watch do in the background)
"""

EXAMPLES = """\
examples:
  credwatch sinks test oncall
  credwatch sinks status
  credwatch sinks deliver --flush          # throttled groups now, not at the window's end
  credwatch sinks deliver --retry-parked --sink siem
  credwatch sinks deliver --all            # the receiver is back: do not wait for the backoff
"""


def register(sub: Any) -> None:
    """Add the ``sinks`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "sinks", help="test sinks, show and deliver the outbox", description=DESCRIPTION,
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("test", "status", "deliver"))
    p.add_argument("name", nargs="?", help="the sink to test")
    p.add_argument("--config", metavar="PATH", help="sink configuration (TOML)")
    p.add_argument("--db", metavar="PATH", help="alert store (default in $XDG_DATA_HOME)")
    p.add_argument("--sink", action="append", default=[], metavar="NAME",
                   help="deliver: only these sinks (default: every sink in the config)")
    p.add_argument("--flush", action="store_true",
                   help="deliver: send throttled groups now instead of at the window's end")
    p.add_argument("--retry-parked", action="store_true",
                   help="deliver: queue parked alerts again first")
    p.add_argument("--all", action="store_true",
                   help="deliver: try every pending alert now, without waiting for its backoff "
                   "(the receiver is back)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="status output")
    p.set_defaults(func=run)


def _store(args: argparse.Namespace, env: Env) -> AlertStore:
    if args.db:
        return AlertStore(args.db)
    return AlertStore(default_db_path(env.environ), create_folder=True)


def test_alert(env: Env) -> dict[str, Any]:
    """A harmless alert that looks like the seed rule's, marked as a test."""
    now = env.clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"@timestamp": now, "kibana.alert.uuid": f"credwatch-test-{uuid.uuid4()}",
            "kibana.alert.rule.name": "credwatch sink test", "kibana.alert.rule.rule_id": "test",
            "kibana.alert.severity": "low", "kibana.alert.reason": "credwatch sink test: "
            "no action needed", "host": {"name": "credwatch-test"}, "user": {"name": "test"},
            "process": {"command_line": "credwatch sinks test", "name": "credwatch"},
            "credwatch.test": True}


def _test(args: argparse.Namespace, env: Env) -> int:
    if not args.name:
        raise ConfigError("sinks test: name the sink to test (sinks test NAME)")
    config = select(args, env, [args.name])[0]
    doc = test_alert(env)
    loop = asyncio.new_event_loop()
    transport = make_transport(config)
    try:
        item = Item(0, doc["kibana.alert.uuid"], doc, 0)
        outcome = loop.run_until_complete(transport.send([single(item)]))[0]
    finally:
        loop.run_until_complete(transport.aclose())
        loop.close()
    if outcome.verdict == "ok":
        env.stdout.write(f"sink {terminal_text(config.name)}: test alert "
                         f"{doc['kibana.alert.uuid']} delivered\n")
        return ExitStatus.OK
    reason = scrub(outcome.reason, config.secret_values)
    env.stderr.write(f"credwatch: sink {terminal_text(config.name)}: test alert not delivered: "
                     f"{terminal_text(reason)}\n")
    return ExitStatus.PARTIAL


def _status(args: argparse.Namespace, env: Env) -> int:
    with _store(args, env) as store:
        counts = Outbox(store).status()
    rows = [{"sink": name, "pending": st.pending, "failing": st.failing,
             "delivered": st.delivered, "parked": st.parked, "last_error": st.last_error}
            for name, st in sorted(counts.items())]
    if args.format == "json":
        env.stdout.write(json.dumps(rows, indent=2) + "\n")
        return ExitStatus.OK
    env.stdout.write(f"{'SINK':<20} {'PENDING':>8} {'FAILING':>8} {'DELIVERED':>10} {'PARKED':>7}"
                     "  LAST ERROR\n")
    for r in rows:
        env.stdout.write(f"{terminal_text(r['sink']):<20} {r['pending']:>8} {r['failing']:>8} "
                         f"{r['delivered']:>10} {r['parked']:>7}  "
                         f"{terminal_text(r['last_error'] or '')[:120]}\n")
    return ExitStatus.OK


def _deliver(args: argparse.Namespace, env: Env) -> int:
    names = args.sink or list(load_config(config_path(args, env), env.environ))
    configs = select(args, env, names)
    with _store(args, env) as store:
        if args.retry_parked:
            with store.transaction() as conn:
                conn.executemany("UPDATE outbox SET state='pending', next_at=0 WHERE sink=? "
                                 "AND state='parked'", [(c.name,) for c in configs])
        if args.all:
            with store.transaction() as conn:
                conn.executemany("UPDATE outbox SET next_at=0 WHERE sink=? AND state='pending'",
                                 [(c.name,) for c in configs])
        deliverer = Deliverer(store, configs)
        try:
            report = deliverer.drain(force=args.flush)
        finally:
            deliverer.close()
        status = Outbox(store).status()
    for c in configs:
        st = status.get(c.name)
        env.stderr.write(f"credwatch: sink {terminal_text(c.name)}: {report.delivered.get(c.name, 0)}"
                         f" delivered, {report.parked.get(c.name, 0)} parked, "
                         f"{report.retried.get(c.name, 0)} to retry; "
                         f"{st.pending if st else 0} pending\n")
        if c.name in report.errors:
            env.stderr.write(f"credwatch: sink {terminal_text(c.name)}: "
                             f"{terminal_text(report.errors[c.name])}\n")
    if report.retried or report.parked:
        return ExitStatus.PARTIAL
    return ExitStatus.OK if report.delivered else ExitStatus.NO_ALERTS


def run(args: argparse.Namespace, env: Env) -> int:
    """Dispatch ``sinks test|status|deliver``."""
    if args.action == "test":
        return _test(args, env)
    if args.action == "status":
        return _status(args, env)
    return _deliver(args, env)
