"""Argument groups and helpers shared by ``scan``, ``run`` and ``watch``.

Rule selection (``--rule``/``--rules``/``--query``), output selection
(``--format``/``--output``/``--bulk``) and the alert store (``--db``/``--no-store``)
behave identically in every command that produces alerts.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

from credwatch.alerts.display import terminal_lines
from credwatch.cli.env import Env
from credwatch.errors import ConfigError
from credwatch.privatefile import open_private_text, refuse_inputs_as_outputs
from credwatch.rules.builtin import default_rule
from credwatch.rules.model import Rule
from credwatch.sinks.output.base import Sink
from credwatch.sinks.output.fields import (
    DEFAULT_CSV_FIELDS,
    CsvSink,
    FieldsNdjsonSink,
    ProjectedSink,
    add_fields_args,
)
from credwatch.sinks.output.ndjson import JsonArraySink, NdjsonSink
from credwatch.sources.read import INPUT_FORMATS

if TYPE_CHECKING:
    from credwatch.alerts.store import AlertStore

#: The output formats of every command that prints alerts (scan, run, watch, alerts list).
OUTPUT_FORMATS = ("table", "ndjson", "json", "csv", "timeline")
FORMAT_HELP = ("table on a terminal, ndjson (full alert documents) when piped; json: one array; "
               "csv: one row per alert (" + ", ".join(DEFAULT_CSV_FIELDS[:3]) + ", ... or "
               "--fields); timeline: CSV ordered by event time with the columns timeline tools "
               "import (datetime, timestamp_desc, message, host, user, process, ...)")


#: Other spellings accepted for an input format (``compile`` used to say ``audit``).
_FORMAT_ALIASES = {"audit": "auditd", "audit.log": "auditd", "jsonl": "ndjson"}


def input_format(text: str) -> str:
    """An ``--input-format`` value: the names of :data:`INPUT_FORMATS` (and aliases), any case."""
    name = text.strip().lower()
    name = _FORMAT_ALIASES.get(name, name)
    if name not in INPUT_FORMATS:
        raise argparse.ArgumentTypeError(
            f"unknown input format {text[:40]!r} (choose from {', '.join(INPUT_FORMATS)})")
    return name


def add_input_format_arg(parser: argparse.ArgumentParser, *, default: str = "auto",
                         help: str = "override input detection") -> None:
    """``--input-format``: the same names in ``scan``, ``run``, ``watch`` and ``compile``."""
    parser.add_argument("--input-format", type=input_format, default=default,
                        metavar="{" + ",".join(INPUT_FORMATS) + "}", help=help)


#: The shortest alert id prefix accepted (a shorter one matches too many alerts to be safe).
MIN_ID_PREFIX = 8


def alert_id(text: str) -> str:
    """An alert id argument: a whole uuid, or a prefix of at least :data:`MIN_ID_PREFIX` characters."""
    if len(text) < MIN_ID_PREFIX:
        raise argparse.ArgumentTypeError(
            f"alert id prefix {text[:40]!r} is {len(text)} character(s) long; give at least "
            f"{MIN_ID_PREFIX} (ids are shown by 'credwatch alerts list')")
    return text


def add_rule_args(parser: argparse.ArgumentParser) -> None:
    """``--rule`` (repeatable), ``--rules DIR`` and ``--query KQL``."""
    group = parser.add_argument_group("rules (default: the built-in credential-path rule)")
    group.add_argument("--rule", action="append", default=[], metavar="ID|PATH",
                       help="a built-in rule_id or name, or a rule file (TOML or Kibana NDJSON); "
                       "repeatable")
    group.add_argument("--rules", action="append", default=[], metavar="DIR",
                       help="a folder of rule files; skipped files are reported")
    group.add_argument("--query", action="append", default=[], metavar="KQL",
                       help="an ad-hoc KQL query, run as a rule over every index; repeatable")


def adhoc_rule(query: str, n: int = 1) -> Rule:
    """A rule wrapping an ad-hoc ``--query`` (medium severity, no index restriction)."""
    digest = hashlib.sha256(query.encode("utf-8")).hexdigest()[:12]
    return Rule(rule_id=f"adhoc-{digest}", name=f"Ad-hoc query {n}",
                description=f"Ad-hoc KQL query: {query}", query=query, severity="medium",
                risk_score=47, index=(), source="--query")


def warn_lint(query: str, env: Env) -> None:
    """Print the linter's errors and warnings about an ad-hoc ``--query`` (hints are left out).

    A query that does not parse is reported once, when the rule is compiled.
    """
    from credwatch.kql.lint import HINT, lint  # the linter loads lark: only for ad-hoc queries

    for finding in lint(query):
        if finding.code != "KQL000" and finding.severity != HINT:
            env.stderr.write(f"credwatch: {terminal_lines(finding.render('--query'))}\n")


def select_rules(args: argparse.Namespace, env: Env) -> list[Rule]:
    """Resolve the rule arguments; the built-in seed rule when none is given."""
    rules: list[Rule] = []
    if args.rule or args.rules:
        # Rule files only when named: the built-in rules need neither tomllib nor the loader.
        from credwatch.rules.loader import load_folder, resolve_rules
    for ref in args.rule:
        rules.extend(resolve_rules(ref))
    for folder in args.rules:
        result = load_folder(folder)
        for skipped in result.skipped:
            env.stderr.write(f"credwatch: skipped {skipped.path}: {skipped.reason}\n")
        rules.extend(result.rules)
    for i, query in enumerate(args.query, 1):
        warn_lint(query, env)
        rules.append(adhoc_rule(query, i))
    if not rules and not (args.rule or args.rules or args.query):
        rules.append(default_rule())
    if not rules:
        raise ConfigError("no rules to run")
    return rules


def add_output_args(parser: argparse.ArgumentParser, *, store_optional: bool = True) -> None:
    """``--format``, ``--output``, ``--bulk``, ``--db`` and (optionally) ``--no-store``."""
    group = parser.add_argument_group("output")
    group.add_argument("--format", choices=OUTPUT_FORMATS, default=None, help=FORMAT_HELP)
    add_fields_args(group)
    group.add_argument("--output", "-o", metavar="FILE",
                       help="write alerts to FILE instead of standard output")
    group.add_argument("--bulk", metavar="FILE",
                       help="also write an Elasticsearch _bulk file for .alerts-security.alerts-default")
    group.add_argument("--db", metavar="PATH",
                       help="alert store (SQLite); default $XDG_DATA_HOME/credwatch/alerts.db")
    if store_optional:
        group.add_argument("--no-store", action="store_true",
                           help="do not write alerts to the store")
    group.add_argument("--quiet", "-q", action="store_true",
                       help="no progress bar and no summary on standard error")


def open_store(args: argparse.Namespace, env: Env) -> AlertStore:
    """Open the alert store named by ``--db`` (or the default).

    The default store's folder is created (0700) when missing; an explicit ``--db``
    in a folder that does not exist is an error. A ``--db`` that is one of the
    command's inputs is refused before SQLite touches it.
    """
    # sqlite3 only when a store is used (``--no-store`` scans never load it).
    from credwatch.alerts.store import AlertStore, default_db_path

    if args.db:
        refuse_inputs_as_outputs([("--db", args.db)], input_paths(args))
        return AlertStore(args.db)
    return AlertStore(default_db_path(env.environ), create_folder=True)


def input_paths(args: argparse.Namespace) -> list[str]:
    """Every file or folder the command reads.

    Event inputs (PATHs, watch's PATH, report's --input), --exceptions and
    --value-list files, and --rule arguments that name a file.
    """
    found: list[str] = []
    for name in ("paths", "exceptions", "value_list"):
        found.extend(str(p) for p in getattr(args, name, None) or [])
    for name in ("path", "input"):
        single = getattr(args, name, None)
        if isinstance(single, str):
            found.append(single)
    found.extend(ref for ref in getattr(args, "rule", None) or []
                 if isinstance(ref, str) and os.path.isfile(ref))
    return found


def terminal_width(env: Env) -> int | None:
    """The terminal's width in columns (``$COLUMNS`` first), or None when stdout is not one."""
    return _width(env, env.stdout) if env.stdout_isatty else None


def _width(env: Env, stream: IO[str]) -> int:
    """The width of the terminal ``stream`` writes to (``$COLUMNS`` first, else 80)."""
    cols = env.environ.get("COLUMNS", "")
    if cols.isdigit() and 20 <= int(cols) <= 10_000:
        return int(cols)
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80


_LABEL = re.compile(r"^\s*(?:- |[\w .()/-]{1,24}:\s+)")


def fold_line(line: str, width: int) -> list[str]:
    """``line`` as lines of at most ``width`` cells, continued under its label or bullet.

    ``  reason:    text...`` continues under ``text``, ``- item`` under ``item``,
    anything else four spaces in from its own indentation. Lines holding escape
    sequences (already styled for the terminal) are left as they are.
    """
    if len(line) <= width or "\x1b" in line or width < 30:
        return [line]
    m = _LABEL.match(line)
    lead = len(line) - len(line.lstrip())
    hang = m.end() if m and m.end() <= width // 2 else min(lead + 4, width // 2)
    import textwrap  # only for a line to fold (start-up)

    return textwrap.wrap(line, width, subsequent_indent=" " * hang, break_long_words=True,
                         break_on_hyphens=False) or [line]


class FoldingStream:
    """A text stream that folds each complete line to ``width`` (see :func:`fold_line`)."""

    def __init__(self, inner: IO[str], width: int) -> None:
        self.inner = inner
        self.width = width
        self._partial = ""

    def write(self, text: str) -> int:
        """Write ``text``; complete lines are folded, an unfinished one waits for its end."""
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self.inner.write("\n".join(fold_line(line, self.width)) + "\n")
        return len(text)

    def flush(self) -> None:
        """Write an unfinished last line as it is, and flush the stream below."""
        if self._partial:
            self.inner.write("\n".join(fold_line(self._partial, self.width)))
            self._partial = ""
        self.inner.flush()


def human_out(env: Env) -> Any:
    """Standard output for text meant for a person: folded to the terminal's width on one."""
    width = terminal_width(env)
    return FoldingStream(env.stdout, width) if width else env.stdout


def say(env: Env, text: str) -> None:
    """Write ``credwatch: text`` to stderr, wrapped to the terminal's width when it is one.

    ``text`` must already be escaped (:func:`terminal_text`) where it quotes input.
    """
    line = f"credwatch: {text}"
    width = _width(env, env.stderr) if env.stderr_isatty else 0
    if width >= 20 and len(line) > width:
        import textwrap  # only for a line to wrap (start-up)

        line = textwrap.fill(line, width=width, subsequent_indent="  ", break_long_words=True,
                             break_on_hyphens=False)
    env.stderr.write(line + "\n")


def format_sink(fmt: str, stream: IO[str], env: Env, *, owns: bool, to_terminal: bool,
                fields: Any = None, limit: int | None = None, streaming: bool = False) -> Sink:
    """The sink printing alerts in ``fmt`` to ``stream``.

    ``fields`` projects ndjson/json/csv output; ``limit`` caps the table;
    ``streaming`` (watch) makes the table one line per alert as it comes.
    """
    if fields is not None and fmt in ("table", "timeline"):
        raise ConfigError(f"--fields applies to ndjson, json and csv output, not to --format {fmt} "
                          "(add --format ndjson or --format csv)")
    width = terminal_width(env) if to_terminal else None
    # The table, line and timeline sinks are imported for their format only (start-up).
    if fmt == "table" and streaming:
        from credwatch.sinks.output.lines import LineSink

        return LineSink(stream, width=width, owns=owns)
    if fmt == "table":
        from credwatch.sinks.output.table import TableSink

        return TableSink(stream, color=to_terminal, width=width, limit=limit)
    if fmt == "json":
        sink: Sink = JsonArraySink(stream, owns=owns)
        return ProjectedSink(sink, fields) if fields is not None else sink
    if fmt == "csv":
        return CsvSink(stream, fields or DEFAULT_CSV_FIELDS, owns=owns)
    if fmt == "timeline":
        from credwatch.sinks.output.timeline import TimelineSink

        return TimelineSink(stream, owns=owns)
    if fields is not None:
        return FieldsNdjsonSink(stream, fields, owns=owns)
    return NdjsonSink(stream, owns=owns)


def output_sinks(args: argparse.Namespace, env: Env, *, streaming: bool = False) -> list[Sink]:
    """Build the output sinks for ``--format``/``--output``/``--bulk``/``--fields``.

    Output files are created 0600 and never through a symbolic link; an output
    that is also an input (or lies in an input folder) is refused before any
    file is opened or truncated. ``sinks[0]`` is the printed output; the others
    (``--bulk``) get full documents.
    """
    refuse_inputs_as_outputs([("--output", args.output), ("--bulk", args.bulk)],
                             input_paths(args), glob=getattr(args, "glob", None))
    fields = getattr(args, "fields", None)
    to_terminal = bool(env.stdout_isatty and not args.output)
    fmt = args.format or ("table" if to_terminal and fields is None else "ndjson")
    if fields is not None and fmt in ("table", "timeline"):
        format_sink(fmt, env.stdout, env, owns=False, to_terminal=False, fields=fields)  # raises
    stream: IO[str] = env.stdout
    owns = False
    if args.output:
        stream = open_private_text(args.output)
        owns = True
    sinks: list[Sink] = [format_sink(fmt, stream, env, owns=owns, to_terminal=to_terminal,
                                     fields=fields, limit=getattr(args, "limit", None),
                                     streaming=streaming)]
    if args.bulk:
        from credwatch.sinks.output.bulk import BulkSink  # json: only for --bulk

        try:
            sinks.append(BulkSink(str(args.bulk)))
        except ConfigError:
            if owns:
                stream.close()
            raise
    return sinks


def write_all(sinks: list[Sink], alert: Mapping[str, Any]) -> None:
    """Send one alert to every sink."""
    for sink in sinks:
        sink.write(alert)
