"""``credwatch watch``: follow a log live (default /var/log/audit/audit.log)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

from credwatch.alerts.display import terminal_text
from credwatch.cli.common import (
    add_output_args,
    add_rule_args,
    open_store,
    output_sinks,
    select_rules,
)
from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.sinkopts import add_sink_args, finish_delivery, start_delivery
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.watch import Watcher
from credwatch.errors import ConfigError, SourceError
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.follow_files import open_regular

DEFAULT_PATH = "/var/log/audit/audit.log"
#: How much of the followed file is looked at to tell its format.
_DETECT_BYTES = 1 << 20

DESCRIPTION = """\
Follow a log like `tail -F` and alert within a second of a matching exec.

Raw audit.log (default) is reassembled into events as auditd_manager would;
NDJSON of ECS events is followed line by line. The file is tracked by identity
(device and inode, real path): rotation by rename, copytruncate and rotations
compressed to .gz are followed without losing lines. The read position is
checkpointed in the alert store together with the alerts, so after a restart
(even after kill -9) credwatch resumes where it stopped, without losing or
duplicating alerts. Alerts go to the same sinks and store as `scan`.

Problems are reported on stderr as they happen and never stop the watch:
  path:line: evaluation failed: ...   a record made evaluation fail; it is passed,
                                      and not evaluated again after a restart
  path: reason                        an input could not be read (e.g. a corrupt
                                      rotated .gz; one still being written is retried)
  path:line: line too long ...        an over-long line was skipped (a note)

exit status: 0 alerts were emitted; 1 no alerts and no failure; 2 usage, rule or
config error; 3 PARTIAL: some record or input failed (see stderr), whether or not
alerts were emitted; 130 interrupted.
"""

EXAMPLES = """\
examples:
  credwatch watch
  credwatch watch --format ndjson --output /var/log/credwatch-alerts.ndjson
  credwatch watch /var/log/ecs/process.ndjson --input-format ndjson --from beginning
"""


def register(sub: Any) -> None:
    """Add the ``watch`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "watch", help="follow a log live and alert", description=DESCRIPTION, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", nargs="?", default=DEFAULT_PATH, help=f"log to follow (default {DEFAULT_PATH})")
    p.add_argument("--input-format", choices=("auto", "auditd", "ndjson"), default="auto")
    p.add_argument("--from", dest="start", choices=("end", "beginning"), default="end",
                   help="where to start when there is no checkpoint (default end)")
    p.add_argument("--poll-interval", type=float, default=0.15, help="seconds between polls")
    p.add_argument("--idle-close", type=float, default=0.3,
                   help="close an audit event after this many quiet seconds")
    p.add_argument("--max-idle", type=float, default=None,
                   help="exit after this many seconds without new lines (for tests and batch use)")
    p.add_argument("--all-indices", action="store_true", help=argparse.SUPPRESS)
    add_rule_args(p)
    add_output_args(p, store_optional=False)
    add_sink_args(p)
    p.set_defaults(func=run)


def _detect(path: str, choice: str) -> str:
    """The format of the followed file: the first line that tells, among its first 1 MiB.

    Lines that tell nothing (garbage, or a line longer than what is looked at) do not
    decide; with none that tells, the file is an audit log (watch's default input).
    """
    if choice != "auto":
        return choice
    try:
        fio, _ = open_regular(path)
    except OSError:
        return "auditd"
    with fio:
        head = fio.read(_DETECT_BYTES)
    for line in head.split(b"\n")[:-1]:
        text = line.strip()
        if text[:1] in (b"{", b"["):
            return "ndjson"
        if b"type=" in text and b"audit(" in text:
            return "auditd"
    return "auditd"


def run(args: argparse.Namespace, env: Env) -> int:
    """Follow until interrupted (or --max-idle); exit 0 alerts, 1 none, 3 some failure."""
    path = args.path
    if not os.path.exists(path) and not os.path.exists(os.path.dirname(path) or "."):
        raise ConfigError(f"{path}: no such file or folder")
    if not os.path.exists(path):
        env.stderr.write(f"credwatch: waiting for {path} to appear\n")
    elif not os.path.isfile(path):
        raise ConfigError(f"{path}: not a regular file (watch follows a log file)")
    elif not os.access(path, os.R_OK):
        raise ConfigError(f"{path}: permission denied (audit logs are usually root-only; "
                          "run as root or add your user to the log's group)")
    rules = compile_rules(select_rules(args, env))
    diag = Diagnostics()
    scanner = Scanner(rules, all_indices=args.all_indices, clock=env.clock, diagnostics=diag)
    # Live output must be line-buffered NDJSON unless a table was asked for explicitly.
    if args.format is None:
        args.format = "ndjson"
    sinks = output_sinks(args, env)
    if args.format == "table":
        raise ConfigError("watch streams alerts; use --format ndjson (the table needs the whole run)")
    store = open_store(args, env)
    try:
        delivery = start_delivery(args, env, store, sinks)
    except BaseException:
        store.close()
        raise
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    def report(err: SourceError) -> None:
        env.stderr.write(f"credwatch: {terminal_text(str(err))}\n")
        env.stderr.flush()

    watcher = Watcher(path, scanner, store, sinks, input_format=_detect(path, args.input_format),  # type: ignore[arg-type]
                      start=args.start, poll_interval=args.poll_interval,
                      idle_seconds=args.idle_close, on_problem=report)
    try:
        stats = watcher.run(stop, max_idle=args.max_idle)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sink in sinks:
            sink.close()
        finish_delivery(delivery, env, quiet=args.quiet)
        store.close()
    if not args.quiet:
        env.stderr.write(
            f"credwatch: watched {stats.lines} lines, {stats.events} exec events; "
            f"{stats.alerts} alert(s) emitted, {stats.duplicates} already stored"
            + (f"; {stats.failed_records} record(s) failed evaluation" if stats.failed_records else "")
            + (f"; {stats.failed_inputs} input(s) unreadable" if stats.failed_inputs else "")
            + "\n")
    if stats.failed:
        return ExitStatus.PARTIAL
    return ExitStatus.OK if stats.alerts else ExitStatus.NO_ALERTS
