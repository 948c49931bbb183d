"""``credwatch scan``: hunt over telemetry files once and report alerts."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from credwatch.alerts.display import terminal_text
from credwatch.cli.common import (
    add_output_args,
    add_rule_args,
    open_store,
    output_sinks,
    select_rules,
    write_all,
)
from credwatch.cli.env import Env, ExitStatus
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.workers import AUTO_MIN_BYTES, PREFILTER_MODES, read_records
from credwatch.sinks.output.fields import add_fields_args, apply_fields
from credwatch.sinks.output.store import StoreSink
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import INPUT_FORMATS
from credwatch.sources.record import Record

DESCRIPTION = """\
Scan telemetry once with one or more rules (default: Elastic's "Kubernetes and
Cloud Credential Path Access via Process Arguments") and print alerts.

Inputs are detected automatically: NDJSON of ECS events (nested or flat-dotted),
a JSON array, an Elasticsearch _search response or its hits, Kibana/Discover
NDJSON exports, raw audit.log (ENRICHED/RAW, ausearch -i), and gzip of any of
them. PATH may be a file, a folder (recursive), or - for standard input.
"""

EXAMPLES = """\
examples:
  credwatch scan /var/log/audit/audit.log
  credwatch scan --format ndjson exports/ > alerts.ndjson
  credwatch scan --query 'process.args:*/.kube/config' events.ndjson.gz
  zcat events.ndjson.gz | credwatch scan -

exit status:
  0  alerts were produced and every input was read
  1  every input was read and nothing alerted
  2  bad usage, rule or configuration (or, with --strict, a bad input line)
  3  PARTIAL: some input could not be read, or not to its end (unreadable, corrupt
     or truncated gzip, dangling link, socket, FIFO inside a folder, file that
     shrank while read); each is reported as "path: reason" and every other input
     was still evaluated. Alerts found meanwhile are still written.
  Malformed lines or values inside a readable input (bad JSON, garbage lines,
  wrong ECS types) are counted and reported with file:line samples; they do not
  change the exit status unless --strict makes the first one fatal.
"""


def register(sub: Any) -> None:
    """Add the ``scan`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "scan", help="hunt over telemetry files once", description=DESCRIPTION, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, folders, or - for stdin")
    p.add_argument("--input-format", choices=INPUT_FORMATS, default="auto",
                   help="override input detection")
    p.add_argument("--glob", metavar="PATTERN", help="only files whose name matches, in folders")
    p.add_argument("--all-indices", action="store_true",
                   help="evaluate every event, even when its index is outside the rule's patterns")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line")
    p.add_argument("--prefilter", choices=PREFILTER_MODES, default="auto",
                   help="skip NDJSON lines that hold none of the rules' literals without decoding them: "
                        f"auto (files of {AUTO_MIN_BYTES >> 20} MB or more), always, or never "
                        "(decode and check every line, for exact diagnostics)")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="processes for prefiltered large files (default: one per CPU)")
    p.add_argument("--engine", choices=("python", "duckdb", "spark"), default="python",
                   help="where the rules are evaluated: python (default), duckdb (NDJSON and "
                        "Parquet files) or spark (Parquet; see docs/engines.md)")
    p.add_argument("--spark-master", metavar="URL", default=None,
                   help="--engine spark: the cluster (default: spark-submit's, else local[*])")
    add_rule_args(p)
    add_output_args(p)
    add_fields_args(p)
    p.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _with_progress(records: Iterator[Record], env: Env, enabled: bool,
                   diag: Diagnostics) -> Iterator[Record]:
    """Show events read so far on a terminal.

    The count is ``diag.events``: with the literal fast path most events are
    counted without ever becoming a record, and the reader ticks ``diag`` after
    each range it has counted.
    """
    if not enabled:
        yield from records
        return
    console = Console(file=env.stderr, force_terminal=True)
    with Progress(TextColumn("scanning"), BarColumn(bar_width=None), TextColumn("{task.completed:,} events"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        task = progress.add_task("scan", total=None, rate="")

        def show() -> None:
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(task, completed=diag.events, rate=f"{diag.events / elapsed:,.0f} events/s")

        diag.progress = show
        try:
            for n, rec in enumerate(records, 1):
                if n % 5000 == 0:
                    show()
                yield rec
        finally:
            diag.progress = None
        show()


def run(args: argparse.Namespace, env: Env) -> int:
    """Run a scan; exit 0 when alerts were produced, 1 when none, 2 on error, 3 when partial."""
    rules = select_rules(args, env)
    compiled = compile_rules(rules)
    diag = Diagnostics(strict=args.strict)
    scanner = Scanner(compiled, all_indices=args.all_indices, clock=env.clock, diagnostics=diag)
    lake = None
    if args.engine != "python":
        from credwatch.engine.lake import plan_scan  # DuckDB is imported only when asked for

        lake = plan_scan(args, scanner)  # unsupported inputs/options fail before outputs open
    sinks = apply_fields(args, env, output_sinks)
    store = None if args.no_store else open_store(args, env)
    store_sink = StoreSink(store) if store else None
    alerts = 0
    try:
        fast = scanner.fast_path(args.prefilter, args.workers)
        records = lake.records(diag) if lake else read_records(
            args.paths, diag, input_format=args.input_format, glob=args.glob, stdin=env.stdin, fast=fast)
        show_progress = bool(env.stderr_isatty) and not args.quiet
        for alert in scanner.scan(_with_progress(records, env, show_progress, diag)):
            alerts += 1
            write_all(sinks, alert)
            if store_sink:
                store_sink.write(alert)
    finally:
        for sink in sinks:
            sink.close()
        if store_sink:
            store_sink.close()
        if store:
            store.close()
    if not args.quiet:
        for sample in diag.samples:
            env.stderr.write(f"credwatch: {terminal_text(sample)}\n")
        line = f"credwatch: {diag.summary()}; {alerts} alert(s)"
        if store_sink:
            line += f" ({store_sink.new} new in store, {store_sink.duplicates} already stored)"
        env.stderr.write(line + "\n")
    # Failed inputs are reported even with --quiet: the exit status alone would not say which.
    for failure in diag.failed:
        env.stderr.write(f"credwatch: {terminal_text(failure)}\n")
    if diag.failed:
        return ExitStatus.PARTIAL
    return ExitStatus.OK if alerts else ExitStatus.NO_ALERTS
