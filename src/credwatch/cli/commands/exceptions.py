"""``credwatch exceptions``: import, list and add Kibana exception-list items."""

from __future__ import annotations

import argparse
import os
from typing import Any

from credwatch.alerts.display import terminal_text
from credwatch.cli.common import alert_id, human_out, open_store
from credwatch.cli.env import Env, ExitStatus
from credwatch.engine.exceptions import (
    ExceptionList,
    ExceptionStore,
    entries_from_alert,
    list_container,
    load_export,
    new_item,
    write_export,
)
from credwatch.errors import ConfigError
from credwatch.normalize.flatten import get_values

DEFAULT_FIELDS = ("process.executable", "process.parent.executable")
DEFAULT_LIST_ID = "credwatch-tuning"

EXAMPLES = """\
examples:
  # the daily tuning loop: a known CI job reads kubeconfig; never alert on it again
  credwatch exceptions add 33d4d7e69ce7 --field process.parent.executable \\
      --field process.executable --field user.name --file tuning.ndjson \\
      --comment "CI deploy job, approved by SecOps"
  credwatch run --exceptions tuning.ndjson /var/log/audit/

  credwatch exceptions import kibana_exceptions_export.ndjson   # into the alert store
  credwatch exceptions list tuning.ndjson
"""


def register(sub: Any) -> None:
    """Add ``exceptions add|list|import``."""
    p: argparse.ArgumentParser = sub.add_parser(
        "exceptions", help="Kibana exception lists: add an item from an alert, import, list",
        description="Exception lists in Kibana's export format (NDJSON). Items exclude matching "
        "events from a rule before max_signals, as in Kibana.", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", metavar="PATH", help="alert store (default in $XDG_DATA_HOME)")
    esub = p.add_subparsers(dest="exceptions_command", metavar="ACTION", required=True)

    ap = esub.add_parser("add", help="write an exception item that matches a stored alert",
                         epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("uuid", type=alert_id,
                    help="kibana.alert.uuid of the alert (a unique prefix of 8+ characters works)")
    ap.add_argument("--field", action="append", default=[], metavar="FIELD",
                    help="a field whose value(s) the item must match (repeatable; default: "
                    + ", ".join(DEFAULT_FIELDS) + ")")
    ap.add_argument("--file", required=True, metavar="FILE",
                    help="exception-list NDJSON file to add the item to (created if missing)")
    ap.add_argument("--list-id", default=None,
                    help=f"list to add to (default: the file's only list, else {DEFAULT_LIST_ID})")
    ap.add_argument("--name", help="item name (default: derived from the values)")
    ap.add_argument("--comment", help="a comment stored with the item (why it is benign)")
    ap.set_defaults(func=run_add)

    lp = esub.add_parser("list", help="show exception lists and their items")
    lp.add_argument("files", nargs="*", metavar="FILE",
                    help="export files to show (default: lists imported into the store)")
    lp.set_defaults(func=run_list)

    ip = esub.add_parser("import", help="import a Kibana exception-list export into the store")
    ip.add_argument("files", nargs="+", metavar="FILE")
    ip.set_defaults(func=run_import)
    for sp in (ap, lp, ip):
        # also accepted after the action; SUPPRESS keeps a --db given before it
        sp.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS,
                        help="alert store (default in $XDG_DATA_HOME)")


def run_add(args: argparse.Namespace, env: Env) -> int:
    """Write an item built from a stored alert into an export file."""
    store = open_store(args, env)
    try:
        alert = store.get(args.uuid)
    finally:
        store.close()
    if alert is None:
        raise ConfigError(f"no stored alert with uuid {args.uuid!r}")
    # Explicit fields must exist on the alert; defaults are used where present
    # (auditd events, for instance, carry no process.parent.executable).
    fields = args.field or [f for f in DEFAULT_FIELDS if get_values(alert, f)]
    if not fields:
        raise ConfigError(f"the alert has none of {', '.join(DEFAULT_FIELDS)}; choose fields "
                          "with --field (e.g. user.name, host.name, process.args)")
    entries = entries_from_alert(alert, fields)
    lists: list[ExceptionList] = load_export(args.file) if os.path.exists(args.file) else []
    list_id = args.list_id or (lists[0].list_id if len(lists) == 1 else DEFAULT_LIST_ID)
    containers = [dict(lst.raw) or list_container(lst.list_id, lst.name) for lst in lists]
    items = [dict(item.raw) for lst in lists for item in lst.items]
    if not any(lst.list_id == list_id for lst in lists):
        containers.append(list_container(list_id))
    rule = alert.get("kibana.alert.rule.name", "rule")
    name = args.name or "credwatch: " + ", ".join(f"{e.field}={e.value}" for e in entries[:3])
    item = new_item(list_id, entries, name=name,
                    description=f"Written by credwatch from alert {alert.get('kibana.alert.uuid')} "
                    f"of {rule}", comment=args.comment)
    out = human_out(env)
    if any(i.get("item_id") == item["item_id"] for i in items):
        out.write(f"{args.file}: an identical item is already in list {list_id!r} "
                  f"({item['item_id']})\n")
        out.flush()
        return ExitStatus.OK
    items.append(item)
    write_export(args.file, containers, items)
    out.write(f"{args.file}: added item {item['item_id']} to list {list_id!r}:\n")
    for e in entries:
        out.write(f"  {e.describe()}\n")
    out.flush()
    return ExitStatus.OK


def _show(lists: list[ExceptionList], env: Env) -> None:
    # Names, ids and values come from export files (Kibana's or anyone's): escaped for the terminal.
    out = human_out(env)
    if not lists:
        out.write("no exception lists\n")
    for lst in lists:
        out.write(terminal_text(f"{lst.list_id} ({lst.namespace_type}, {lst.type}): {lst.name} "
                                f"- {len(lst.items)} item(s)") + "\n")
        for item in lst.items:
            extra = f" [os: {', '.join(item.os_types)}]" if item.os_types else ""
            if item.expire_time:
                extra += f" [expires {item.expire_time.isoformat()}]"
            out.write(terminal_text(f"  {item.item_id}: {item.name}{extra}") + "\n")
            for e in item.entries:
                out.write(terminal_text(f"    {e.describe()}") + "\n")
    out.flush()


def run_list(args: argparse.Namespace, env: Env) -> int:
    """Show lists from files, or those imported into the store."""
    if args.files:
        lists = [lst for f in args.files for lst in load_export(f)]
    else:
        store = open_store(args, env)
        try:
            lists = ExceptionStore(store.conn).lists()
        finally:
            store.close()
    _show(lists, env)
    return ExitStatus.OK


def run_import(args: argparse.Namespace, env: Env) -> int:
    """Validate export files and store their lists and items."""
    parsed = [lst for f in args.files for lst in load_export(f)]
    store = open_store(args, env)
    try:
        n_lists, n_items = ExceptionStore(store.conn).import_lists(parsed)
    finally:
        store.close()
    env.stdout.write(f"imported {n_lists} list(s) and {n_items} item(s)\n")
    return ExitStatus.OK
