"""``credwatch watch``: follow a log live (default /var/log/audit/audit.log)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any, Literal

from credwatch.alerts.display import terminal_text
from credwatch.alerts.store import AlertStore
from credwatch.cli.common import (
    add_input_format_arg,
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
from credwatch.sources.follow_files import LineBlock, open_regular

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
  credwatch watch --no-store --format csv /var/log/audit/audit.log

On a terminal each alert is printed as one line as it comes (--format table);
piped, as NDJSON. The input format is detected from the first line that tells
(a JSON object, or an audit record); a file that is empty or missing at start
is detected when its first data arrives. --no-store keeps the alerts and the
read position in memory only: nothing is written to the store, and a restart
starts again from --from.
"""


def register(sub: Any) -> None:
    """Add the ``watch`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "watch", help="follow a log live and alert", description=DESCRIPTION, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", nargs="?", default=DEFAULT_PATH, help=f"log to follow (default {DEFAULT_PATH})")
    add_input_format_arg(p, help="auto (default), auditd or ndjson: watch follows line-based "
                                 "logs")
    p.add_argument("--from", dest="start", choices=("end", "beginning"), default="end",
                   help="where to start when there is no checkpoint (default end)")
    p.add_argument("--poll-interval", type=float, default=0.15, help="seconds between polls")
    p.add_argument("--idle-close", type=float, default=0.3,
                   help="close an audit event after this many quiet seconds")
    p.add_argument("--max-idle", type=float, default=None,
                   help="exit after this many seconds without new lines (for tests and batch use)")
    p.add_argument("--all-indices", action="store_true", help=argparse.SUPPRESS)
    add_rule_args(p)
    add_output_args(p)
    add_sink_args(p)
    p.set_defaults(func=run)


def _tells(line: bytes) -> str | None:
    """The format one line shows: ndjson for a JSON value, auditd for an audit record, else None."""
    text = line.strip()
    if text[:1] in (b"{", b"["):
        return "ndjson"
    if b"type=" in text and b"audit(" in text:
        return "auditd"
    return None


def _detect(path: str, choice: str) -> str | None:
    """The format of the followed file: the first line that tells, among its first 1 MiB.

    None when nothing tells yet (the file is missing, empty or holds only lines that
    tell nothing): the watcher decides when data arrives.
    """
    if choice != "auto":
        return choice
    try:
        fio, _ = open_regular(path)
    except OSError:
        return None
    with fio:
        head = fio.read(_DETECT_BYTES)
    for line in head.split(b"\n")[:-1]:
        found = _tells(line)
        if found:
            return found
    return None


class DetectingWatcher(Watcher):
    """A :class:`Watcher` whose input format is decided by the first line that tells.

    Until then (a new, empty file), lines that tell nothing are evaluated as
    NDJSON, which reports them as malformed lines: nothing is guessed.
    """

    def __init__(self, *args: Any, detected: str | None, **kwargs: Any) -> None:
        fmt: Literal["auditd", "ndjson"] = "ndjson" if detected == "ndjson" else "auditd"
        super().__init__(*args, input_format=fmt, **kwargs)
        self.decided = detected is not None

    def process_blocks(self, blocks: list[LineBlock]) -> int:
        if not self.decided:
            found = next((fmt for blk in blocks for line in blk.data.split(b"\n")
                          if (fmt := _tells(line))), None)
            if found:
                self.input_format = found  # type: ignore[assignment]
                self.decided = True
            elif any(blk.data.strip() for blk in blocks):
                self.input_format = "ndjson"
        return super().process_blocks(blocks)


def _store(args: argparse.Namespace, env: Env) -> AlertStore:
    if not args.no_store:
        return open_store(args, env)
    if args.sink:
        raise ConfigError("--no-store cannot be combined with --sink: alerts are delivered "
                          "through the store's outbox")
    # Dedup and the read position still need a store: one in memory, gone at exit.
    return AlertStore(":memory:")


def _check_path(path: str, env: Env) -> None:
    """Refuse what cannot be followed; say so when the file does not exist yet."""
    if not os.path.exists(path) and not os.path.exists(os.path.dirname(path) or "."):
        raise ConfigError(f"{path}: no such file or folder")
    if not os.path.exists(path):
        env.stderr.write(f"credwatch: waiting for {terminal_text(path)} to appear\n")
    elif not os.path.isfile(path):
        raise ConfigError(f"{path}: not a regular file (watch follows a log file)")
    elif not os.access(path, os.R_OK):
        raise ConfigError(f"{path}: permission denied (audit logs are usually root-only; "
                          "run as root or add your user to the log's group)")


def run(args: argparse.Namespace, env: Env) -> int:
    """Follow until interrupted (or --max-idle); exit 0 alerts, 1 none, 3 some failure."""
    path = args.path
    _check_path(path, env)
    rules = compile_rules(select_rules(args, env))
    diag = Diagnostics()
    scanner = Scanner(rules, all_indices=args.all_indices, clock=env.clock, diagnostics=diag)
    if args.input_format not in ("auto", "auditd", "ndjson"):
        raise ConfigError(f"--input-format {args.input_format}: watch follows line-based logs; "
                          "use auditd or ndjson (or auto)")
    detected = _detect(path, args.input_format)
    # On a terminal one line per alert as it comes (the streaming table); piped, NDJSON.
    sinks = output_sinks(args, env, streaming=True)
    try:
        store = _store(args, env)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
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

    watcher = DetectingWatcher(path, scanner, store, sinks, detected=detected,
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
            f"{stats.alerts} alert(s) emitted, {stats.duplicates} already "
            + ("emitted" if args.no_store else "stored")
            + (f"; {stats.failed_records} record(s) failed evaluation" if stats.failed_records else "")
            + (f"; {stats.failed_inputs} input(s) unreadable" if stats.failed_inputs else "")
            + "\n")
    if stats.failed:
        return ExitStatus.PARTIAL
    return ExitStatus.OK if stats.alerts else ExitStatus.NO_ALERTS
