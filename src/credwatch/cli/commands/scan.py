"""``credwatch scan``: hunt over telemetry files once and report alerts."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from credwatch.alerts.display import terminal_text
from credwatch.cli.common import (
    add_input_format_arg,
    add_output_args,
    add_rule_args,
    open_store,
    output_sinks,
    say,
    select_rules,
    write_all,
)
from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.exceptionsets import exceptions_apply, rule_exceptions
from credwatch.cli.filters import AlertFilter, add_filter_args
from credwatch.engine.scan import Scanner, compile_rules
from credwatch.engine.workers import AUTO_MIN_BYTES, PREFILTER_MODES, read_records
from credwatch.sources.diagnostics import Diagnostics

if TYPE_CHECKING:
    from credwatch.engine.exceptions import ExceptionFilter
    from credwatch.sinks.output.base import Sink
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
  credwatch scan --since now-24h --severity high --host node-1 /var/log/audit/
  credwatch scan --exceptions tuning.ndjson --format timeline /var/log/audit/ > timeline.csv
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
    add_input_format_arg(p)
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
                   help="where the rules are evaluated: python (default; also reads Parquet), "
                        "duckdb (NDJSON and Parquet files) or spark (NDJSON and Parquet, local "
                        "files or s3a:// gs:// hdfs:// URLs); see docs/engines.md")
    p.add_argument("--spark-master", metavar="URL", default=None,
                   help="--engine spark: the cluster (default: spark-submit's, else local[*])")
    add_rule_args(p)
    filters = p.add_argument_group("filters (on the event's time, not the alert's)")
    add_filter_args(filters)
    exc = p.add_argument_group("exceptions")
    exc.add_argument("--exceptions", action="append", default=[], metavar="FILE",
                     help="a Kibana exception-list export (NDJSON) applied to every rule of the "
                     "hunt; repeatable. Lists imported in the store apply to the rules that "
                     "reference them")
    exc.add_argument("--value-list", action="append", default=[], metavar="PATH",
                     help="a value-list file or folder, for 'list' exception entries; repeatable")
    add_output_args(p)
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="print at most N alerts, most urgent first in the table, and say 'N of M' "
                        "(the store and --bulk still get every alert)")
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
    # rich only for a progress bar on a terminal: it costs every other scan ~30 ms of start-up.
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

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


@dataclass
class Hunt:
    """What a scan keeps between the rules and the outputs: exceptions, filters, one alert per event.

    An event read twice (a rotated log and its compressed copy, two exports of the
    same index) has the same alert id, so it is kept once.
    """

    scanner: Scanner
    exceptions: dict[str, ExceptionFilter]
    alert_filter: AlertFilter
    seen: set[int | str] = field(default_factory=set)
    duplicates: int = 0
    excluded: int = 0
    filtered: int = 0

    def alerts(self, records: Iterable[Any]) -> Iterator[dict[str, object]]:
        """The alerts of ``records`` that survive exceptions, filters and de-duplication."""
        diag = self.scanner.diagnostics
        for rec in records:
            diag.events += 1
            found = self.scanner.alerts_for(rec)
            if not found:
                continue
            diag.matched += 1
            for alert in found:
                key = _id_key(alert.get("kibana.alert.uuid"))
                if key in self.seen:
                    self.duplicates += 1
                    continue
                self.seen.add(key)
                flt = self.exceptions.get(str(alert.get("kibana.alert.rule.rule_id")))
                if flt is not None and flt.excluded_by(rec.event) is not None:
                    self.excluded += 1
                elif not self.alert_filter.keeps(alert):
                    self.filtered += 1
                else:
                    yield alert

    def summary(self) -> str:
        """What was left out, for the summary line ('' when nothing was)."""
        parts = [f"{n} {what}" for n, what in (
            (self.duplicates, "duplicate(s) of an event already read"),
            (self.excluded, "excluded by exceptions"), (self.filtered, "left out by filters"))
            if n]
        return f" ({', '.join(parts)})" if parts else ""


def _id_key(uuid: object) -> int | str:
    """What a hunt remembers of an alert id: 128 of its bits as an int (a third of the string's
    memory, and no collision in practice among sha256 ids), the text when it is not hex."""
    text = str(uuid)
    if len(text) < 32:
        return text
    try:
        return int(text[:32], 16)
    except ValueError:
        return text


def _hunt(args: argparse.Namespace, env: Env, scanner: Scanner, store: Any) -> Hunt:
    stored = []
    if store is not None:
        from credwatch.engine.exceptions import ExceptionStore  # with a store only (start-up)

        stored = ExceptionStore(store.conn).lists()
    now = env.clock()
    if not exceptions_apply(scanner.rules, stored=stored, files=args.exceptions,
                            value_lists=args.value_list):
        return Hunt(scanner, {}, AlertFilter.from_args(args, now))
    filters = rule_exceptions(scanner.rules, stored=stored, files=args.exceptions,
                              value_lists=args.value_list, env=env, quiet=args.quiet)
    exceptions = {crule.rule.rule_id: flt.active(now)
                  for crule, flt in zip(scanner.rules, filters, strict=True) if len(flt)}
    return Hunt(scanner, exceptions, AlertFilter.from_args(args, now))


def _prints_table(sink: Sink) -> bool:
    from credwatch.sinks.output.table import TableSink  # only with --limit (start-up)

    return isinstance(sink, TableSink)


def run(args: argparse.Namespace, env: Env) -> int:
    """Run a scan; exit 0 when alerts were produced, 1 when none, 2 on error, 3 when partial."""
    rules = select_rules(args, env)
    compiled = compile_rules(rules)
    diag = Diagnostics(strict=args.strict)
    scanner = Scanner(compiled, all_indices=args.all_indices, clock=env.clock, diagnostics=diag)
    AlertFilter.from_args(args, env.clock())  # a bad --since/--until fails before any output opens
    lake = None
    if args.engine != "python":
        # The lake engines' modules (and DuckDB, Spark) are imported only when asked for.
        from credwatch.engine.lake_plan import require_engine

        require_engine(args.engine)  # a missing duckdb/pyspark/Java: one line, exit 2
        from credwatch.engine.lake import plan_scan

        lake = plan_scan(args, scanner)  # unsupported inputs/options fail before outputs open
    sinks = output_sinks(args, env)
    store = None if args.no_store else open_store(args, env)
    store_sink = None
    if store:
        from credwatch.sinks.output.store import StoreSink  # with a store only (start-up)

        store_sink = StoreSink(store)
    alerts = 0
    try:
        hunt = _hunt(args, env, scanner, store)
        fast = scanner.fast_path(args.prefilter, args.workers)
        records = lake.records(diag) if lake else read_records(
            args.paths, diag, input_format=args.input_format, glob=args.glob, stdin=env.stdin, fast=fast)
        show_progress = bool(env.stderr_isatty) and not args.quiet
        # The table sorts and cuts to --limit itself; other outputs stop printing at the limit.
        print_all = args.limit is None or _prints_table(sinks[0])
        for alert in hunt.alerts(_with_progress(records, env, show_progress, diag)):
            alerts += 1
            if print_all or alerts <= args.limit:
                write_all(sinks[:1], alert)
            write_all(sinks[1:], alert)
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
        line = f"{diag.summary()}; {alerts} alert(s)" + hunt.summary()
        if args.limit is not None and alerts > args.limit:
            line += f"; {args.limit} of {alerts} shown (--limit)"
        if store_sink:
            line += f" ({store_sink.new} new in store, {store_sink.duplicates} already stored)"
        say(env, line)
    # Failed inputs are reported even with --quiet: the exit status alone would not say which.
    for failure in diag.failed:
        env.stderr.write(f"credwatch: {terminal_text(failure)}\n")
    if diag.failed:
        return ExitStatus.PARTIAL
    return ExitStatus.OK if alerts else ExitStatus.NO_ALERTS
