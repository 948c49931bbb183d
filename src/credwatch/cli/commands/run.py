"""``credwatch run``: run rules on their Kibana schedule over time-ranged sources."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from credwatch.alerts.build import iso_ms
from credwatch.alerts.display import terminal_text
from credwatch.alerts.store import AlertStore
from credwatch.cli.common import (
    add_input_format_arg,
    add_output_args,
    add_rule_args,
    open_store,
    output_sinks,
    select_rules,
    write_all,
)
from credwatch.cli.env import Env, ExitStatus
from credwatch.cli.exceptionsets import rule_exceptions
from credwatch.cli.filters import parse_time
from credwatch.cli.sinkopts import add_sink_args, finish_delivery, start_delivery
from credwatch.engine.exceptions import ExceptionStore
from credwatch.engine.parquet_read import refuse_parquet
from credwatch.engine.runs import RunStore
from credwatch.engine.scan import compile_rules
from credwatch.engine.schedule import (
    Clock,
    EventSource,
    Execution,
    RuleRunner,
    Scheduler,
    SimulatedClock,
    SystemClock,
)
from credwatch.errors import ConfigError, UnsupportedError
from credwatch.rules.model import Rule
from credwatch.timemath import ms_to_datetime

#: Kibana's Endpoint exception list, enforced by Elastic Defend rather than by rules.
ENDPOINT_LIST_ID = "endpoint_list"

DESCRIPTION = """\
Run rules the way Kibana schedules them: every `interval` (5m for the seed
rule) each rule searches [now+from, now] (now-9m..now), so executions overlap
by the look-back; events are taken in ascending time order (timestamp_override,
then @timestamp); max_signals caps each execution; an event alerts once, ever
(deterministic alert ids, checked against the store); a missed execution adds
up to 4 catch-up windows, and a longer gap fails the execution with Kibana's
message. Exception lists and alert suppression apply as in Kibana.

Every execution is committed atomically with its alerts and the scheduler
state, so after a crash or kill -9 a restart neither duplicates nor misses
alerts. History: `credwatch runs`.

Sources are files or folders in any format `scan` reads (NDJSON, JSON,
_search responses, raw audit.log, gzip). Each execution reads what its windows
need: a time-ordered NDJSON file is searched by offset for the window start,
and where each input was read up to is kept in the store (--db). An input that
cannot be read is reported as `path: reason`, the others are still evaluated,
and the exit status is 3; it is read again at the next execution.
"""

EXAMPLES = """\
examples:
  credwatch run /var/log/audit/                       # run forever on the real clock
  credwatch run --once events/                        # one execution now
  credwatch run --once --now 2026-03-01T10:05:00Z events.ndjson
  credwatch run --now 2026-03-01T00:00:00Z --until 2026-03-02T00:00:00Z day.ndjson  # replay a day
  credwatch run --exceptions tuning.ndjson --value-list ci-hosts.txt events/
"""


def register(sub: Any) -> None:
    """Add the ``run`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "run", help="run rules on their schedule (interval, look-back, gaps, dedup)",
        description=DESCRIPTION, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to read events from")
    sched = p.add_argument_group("schedule")
    sched.add_argument("--once", action="store_true",
                       help="run one execution of every rule, then exit")
    sched.add_argument("--now", metavar="TIMESTAMP",
                       help="act as if the current time were TIMESTAMP (ISO 8601, or now-1h, 1h)")
    sched.add_argument("--until", metavar="TIMESTAMP",
                       help="replay: advance a simulated clock from --now (or the real time) "
                       "to TIMESTAMP without waiting, running every due execution, then exit")
    add_input_format_arg(p)
    p.add_argument("--glob", metavar="PATTERN", help="only files whose name matches, in folders")
    p.add_argument("--engine", choices=("python", "duckdb", "spark"), default="python",
                   help="where each execution's window is evaluated: python (default), duckdb "
                   "(NDJSON and Parquet files) or spark (NDJSON and Parquet; local files or "
                   "s3a:// gs:// hdfs:// URLs); the time range and the rules' filter are pushed into the engine, "
                   "day=YYYY-MM-DD partitions and row groups outside the window are not read "
                   "(see docs/engines.md)")
    p.add_argument("--spark-master", metavar="URL", default=None,
                   help="--engine spark: the cluster (default: spark-submit's, else local[*])")
    p.add_argument("--all-indices", action="store_true",
                   help="evaluate every event, even when its index is outside the rule's patterns")
    exc = p.add_argument_group("exceptions")
    exc.add_argument("--exceptions", action="append", default=[], metavar="FILE",
                     help="a Kibana exception-list export (NDJSON) attached to every rule; "
                     "rules' own exceptions_list references also resolve against it; repeatable")
    exc.add_argument("--value-list", action="append", default=[], metavar="PATH",
                     help="a value-list file (one value per line; its name is the list id) or "
                     "a folder of them, for 'list' exception entries; repeatable")
    add_rule_args(p)
    add_output_args(p, store_optional=False)
    add_sink_args(p)
    p.set_defaults(func=run)


def parse_timestamp(text: str, option: str, now: datetime | None = None) -> datetime:
    """A time from the command line, in the forms every command takes (ISO 8601, now-1h, 1h)."""
    ms = parse_time(text, option, now or datetime.now(UTC))
    t = ms_to_datetime(ms)
    if t is None:
        raise ConfigError(f"{option} {text[:60]!r} is outside the years 1 to 9999")
    return t


def build_runners(rules: list[Rule], store: AlertStore, exception_files: list[str],
                  value_lists: list[str], env: Env, *, all_indices: bool = False,
                  quiet: bool = False) -> list[RuleRunner]:
    """Compile rules and attach their exception lists (store-imported, then files).

    A referenced list that is not found is reported once on standard error (Kibana
    silently applies no items for it), and so is an imported list no rule references.
    """
    crules = compile_rules(rules)
    filters = rule_exceptions(crules, stored=ExceptionStore(store.conn).lists(),
                              files=exception_files, value_lists=value_lists, env=env, quiet=quiet)
    runners = [RuleRunner(crule, flt, all_indices=all_indices)
               for crule, flt in zip(crules, filters, strict=True)]
    return runners


def lake_source(args: argparse.Namespace, runners: list[RuleRunner]) -> EventSource:
    """The event source of ``--engine duckdb|spark`` (options checked before anything is read)."""
    if args.input_format not in ("auto", "ndjson"):
        raise UnsupportedError(f"--input-format {args.input_format} is not supported by --engine "
                               f"{args.engine} (NDJSON and Parquet only); run `credwatch convert` first")
    if "-" in args.paths:
        raise UnsupportedError(f"--engine {args.engine} reads files, not standard input")
    # The lake engines' modules only when asked for (start-up of every run).
    from credwatch.engine.lake_plan import require_engine

    require_engine(args.engine)  # one line naming the install command, before DuckDB is imported
    from credwatch.engine.lake_run import DuckDbEngine, LakeEventSource  # only when asked for
    from credwatch.engine.spark_lake import SparkRunEngine

    rules = [r.crule for r in runners]
    if args.engine == "spark":
        return LakeEventSource(list(args.paths), glob=args.glob,
                               engine=SparkRunEngine(rules, args.spark_master))
    return LakeEventSource(list(args.paths), glob=args.glob, engine=DuckDbEngine(rules))


def make_source(args: argparse.Namespace, env: Env, runners: list[RuleRunner]) -> EventSource:
    """The inputs of ``run``: read in-process, or by the ``--engine`` asked for."""
    if args.engine == "python":
        refuse_parquet(args.paths, args.glob, "run")
        return EventSource(args.paths, input_format=args.input_format, glob=args.glob,
                           stdin=env.stdin)
    return lake_source(args, runners)


def already_stored(e: Execution) -> int:
    """Matching events of an execution that gave no new alert because their alert was stored.

    The engine drops an event whose (deterministic) alert id is already in the
    store before building it; what is neither created nor suppressed was that, or
    (when the execution warns so) over ``max_signals``. An alert another process
    stored first counts too.
    """
    r = e.record
    dropped = max(r.events_matched - r.alerts_created - r.suppressed, 0)
    return dropped + len(e.new_flags) - sum(e.new_flags)


def _describe(e: Execution) -> str:
    r = e.record
    line = (f"{r.rule_name}: execution at {iso_ms(r.started_at)}: {r.status}; "
            f"{len(r.windows)} window(s), {r.events_searched} event(s) searched, "
            f"{r.events_matched} matched, {r.events_excluded} excluded, "
            f"{sum(e.new_flags)} new alert(s), {already_stored(e)} already stored")
    if r.alerts_updated:
        line += f", {r.alerts_updated} updated"
    if r.status != "succeeded":
        line += f": {r.message}"
    if r.read is not None:  # what --engine duckdb|spark read, as stored with the execution
        line += f" ({r.read.engine}: {r.read.text()})"
    return line


def _summary(args: argparse.Namespace, env: Env, source: EventSource, line: str) -> None:
    """The end of a run on stderr: input samples, the counts, the engine's read report."""
    for sample in source.diagnostics.samples[:20]:
        env.stderr.write(f"credwatch: {terminal_text(sample)}\n")
    env.stderr.write(f"credwatch: {line}\n")
    total = getattr(source, "total_report", None)
    if total is not None:
        env.stderr.write(f"credwatch: {args.engine}, all executions: {terminal_text(total.text())}\n")


def run(args: argparse.Namespace, env: Env) -> int:
    """Run the schedule; exit 0 when alerts were created, 1 when none, 3 if an input failed."""
    now = parse_timestamp(args.now, "--now", env.clock()) if args.now else None
    until = parse_timestamp(args.until, "--until", now or env.clock()) if args.until else None
    if args.once and until is not None:
        raise ConfigError("--once and --until cannot be combined")
    rules = select_rules(args, env)
    store = open_store(args, env)
    # Running on the clock, a terminal gets one line per alert as it comes (not a table at exit).
    sinks = output_sinks(args, env, streaming=not (args.once or until is not None))
    created = stored = 0
    source: EventSource | None = None
    delivery = None
    try:
        delivery = start_delivery(args, env, store, sinks)
        runs = RunStore(store)
        runners = build_runners(rules, store, args.exceptions, args.value_list, env,
                                all_indices=args.all_indices, quiet=args.quiet)
        source = make_source(args, env, runners)
        clock: Clock
        if args.once or until is not None:
            clock = SimulatedClock(now or env.clock())
        else:
            clock = SystemClock(now)

        failed: dict[str, None] = {}  # each unreadable input once, in order

        def report(e: Execution) -> None:
            nonlocal created, stored
            for doc, new in zip(e.created, e.new_flags, strict=True):
                if new:
                    created += 1
                    write_all(sinks, doc)
            stored += already_stored(e)
            for problem in e.input_errors:
                if problem not in failed:
                    failed[problem] = None
                    env.stderr.write(f"credwatch: {terminal_text(problem)}\n")
            if not args.quiet:
                env.stderr.write(f"credwatch: {terminal_text(_describe(e))}\n")
                env.stderr.flush()

        scheduler = Scheduler(runners, source, store, runs, clock, on_execution=report)
        executions = len(scheduler.run_once()) if args.once else scheduler.run(until=until)
        if not args.quiet:
            _summary(args, env, source, f"{executions} execution(s) of {len(runners)} rule(s); "
                     f"{source.lines_read} line(s) read; {created} new alert(s), "
                     f"{stored} already stored")
    finally:
        if source is not None:
            source.close()
        for sink in sinks:
            sink.close()
        finish_delivery(delivery, env, quiet=args.quiet)
        store.close()
    if failed:
        return ExitStatus.PARTIAL
    return ExitStatus.OK if created else ExitStatus.NO_ALERTS
