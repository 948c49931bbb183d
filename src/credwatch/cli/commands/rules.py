"""``credwatch rules``: list, show, lint and test detection rules.

Examples::

    credwatch rules list
    credwatch rules show 5f0fff18-f340-444b-9a98-c49ade766ff4 --format json
    credwatch rules lint my-rules/
    credwatch rules test                      # the built-in rule's own tests
    credwatch rules test my-rule.toml
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.table import Table

from credwatch.alerts.display import terminal_text
from credwatch.cli.common import human_out
from credwatch.cli.env import Env, ExitStatus
from credwatch.engine.ruletests import run_rule_tests
from credwatch.errors import CredwatchError
from credwatch.kql.lint import ERROR
from credwatch.rules import builtin_rules, load_paths, resolve_rules
from credwatch.rules.lint import lint_path, lint_rule
from credwatch.rules.model import Rule
from credwatch.rules.ndjson_format import dumps_ndjson, rule_to_export_object
from credwatch.rules.schedule_math import format_duration, lookback
from credwatch.rules.toml_format import dumps_toml

_RULE_HELP = "a built-in rule_id or name, a rule file, or a folder (default: the built-in rule)"


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add ``rules`` and its sub-commands."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = subparsers.add_parser(
        "rules", help="list, show, lint and test detection rules",
        description="Work with detection rules: the built-in ones and your own "
        "(elastic/detection-rules TOML or Kibana rule export NDJSON).",
        epilog="examples:\n  credwatch rules list\n  credwatch rules show "
        "5f0fff18-f340-444b-9a98-c49ade766ff4 --format json\n  credwatch rules lint rules/\n"
        "  credwatch rules test my-rule.toml", formatter_class=fmt)
    sub = parser.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=_run_help, rules_parser=parser)

    p = sub.add_parser("list", help="list the built-in rules and any given rule files",
                       description="List rules: the built-in ones, plus every rule in the given "
                       "files or folders. Folder entries that are not loadable are reported.",
                       epilog="example:\n  credwatch rules list ./my-rules", formatter_class=fmt)
    p.add_argument("paths", nargs="*", metavar="PATH", help="rule files or folders to list too")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="output format (default: table)")
    p.set_defaults(func=run_list)

    p = sub.add_parser("show", help="show one rule in full",
                       description="Show every field of a rule: metadata, schedule, query, "
                       "ATT&CK mapping, investigation guide and setup.",
                       epilog="examples:\n  credwatch rules show "
                       "5f0fff18-f340-444b-9a98-c49ade766ff4\n"
                       "  credwatch rules show my-rule.toml --format toml", formatter_class=fmt)
    p.add_argument("ref", metavar="ID|PATH", help=_RULE_HELP.replace(" (default: the built-in rule)", ""))
    p.add_argument("--format", choices=("text", "json", "toml", "ndjson"), default="text",
                   help="text (human), json (Kibana rule object), toml (detection-rules), "
                   "ndjson (Kibana export)")
    p.set_defaults(func=run_show)

    p = sub.add_parser("lint", help="lint rule files: the KQL query and the metadata",
                       description="Lint rule files. Errors (exit status 2) are problems that "
                       "stop a rule from loading or change what it matches, such as an unquoted "
                       "value that runs onto the next line. Warnings and hints are printed but "
                       "leave the exit status 0.",
                       epilog="example:\n  credwatch rules lint rules/ extra.toml",
                       formatter_class=fmt)
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="rule files or folders (default: the built-in rules)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="output format (default: text)")
    p.set_defaults(func=run_lint)

    p = sub.add_parser("test", help="run a rule's embedded test events",
                       description="Run the true-positive and true-negative test events written "
                       "in a rule file ([[credwatch.tests]]). Prints pass/fail per test and the "
                       "clauses that fired; exit status 2 if any test fails.",
                       epilog="examples:\n  credwatch rules test\n  credwatch rules test "
                       "my-rule.toml -v", formatter_class=fmt)
    p.add_argument("refs", nargs="*", metavar="ID|PATH", help=_RULE_HELP)
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="output format (default: text)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show every clause that fired, not only failures")
    p.set_defaults(func=run_test)


def _console(env: Env) -> Console:
    tty = bool(env.stdout_isatty)
    return Console(file=env.stdout, force_terminal=tty, no_color=not tty, highlight=False,
                   width=None if tty else 120, soft_wrap=not tty)


def _run_help(args: argparse.Namespace, env: Env) -> int:
    args.rules_parser.print_help(env.stdout)
    return ExitStatus.ERROR


def _rules_for(refs: Sequence[str]) -> list[Rule]:
    if not refs:
        return builtin_rules()
    out: list[Rule] = []
    for ref in refs:
        out.extend(resolve_rules(ref))
    return out


def run_list(args: argparse.Namespace, env: Env) -> int:
    """``rules list``."""
    rules = builtin_rules()
    builtin_ids = {r.rule_id for r in rules}
    skipped = []
    if args.paths:
        result = load_paths(args.paths)
        rules = rules + [r for r in result.rules if r.rule_id not in builtin_ids]
        skipped = result.skipped
    if args.format == "json":
        rows = [{"rule_id": r.rule_id, "name": r.name, "version": r.version, "type": r.type,
                 "severity": r.severity, "risk_score": r.risk_score, "interval": r.interval,
                 "from": r.from_, "tests": len(r.tests.tests),
                 "builtin": r.rule_id in builtin_ids, "source": r.source} for r in rules]
        json.dump({"rules": rows, "skipped": [{"path": s.path, "reason": s.reason}
                                               for s in skipped]}, env.stdout, indent=2)
        env.stdout.write("\n")
    else:
        table = Table(title="credwatch rules")
        for col in ("rule_id", "name", "severity", "risk", "schedule", "tests", "source"):
            table.add_column(col, overflow="fold")
        for r in rules:
            cells = (r.rule_id, r.name, r.severity, str(r.risk_score),
                     f"every {r.interval} over {r.from_}..{r.to}", str(len(r.tests.tests)),
                     "built-in" if r.rule_id in builtin_ids else (r.source or ""))
            table.add_row(*(escape(c) for c in cells))
        _console(env).print(table)
    for s in skipped:
        env.stderr.write(f"credwatch: skipped {s.path}: {s.reason}\n")
    return ExitStatus.OK


def run_show(args: argparse.Namespace, env: Env) -> int:
    """``rules show``."""
    rules = resolve_rules(args.ref)
    if args.format == "json":
        objs = [rule_to_export_object(r) for r in rules]
        json.dump(objs[0] if len(objs) == 1 else objs, env.stdout, indent=2, ensure_ascii=False)
        env.stdout.write("\n")
    elif args.format == "toml":
        env.stdout.write("\n".join(dumps_toml(r) for r in rules))
    elif args.format == "ndjson":
        env.stdout.write(dumps_ndjson(rules))
    else:
        console = _console(env)
        for rule in rules:
            _show_text(console, rule)
    return ExitStatus.OK


def _show_text(console: Console, r: Rule) -> None:
    console.rule(f"[bold]{escape(r.name)}")
    try:
        extra = f" (look-back {format_duration(lookback(r.interval, r.from_, r.to))})"
    except CredwatchError:
        extra = ""
    rows = [
        ("rule_id", r.rule_id), ("version", str(r.version)), ("type", f"{r.type} ({r.language})"),
        ("severity", f"{r.severity}, risk score {r.risk_score}"),
        ("schedule", f"every {r.interval}, window {r.from_}..{r.to}{extra}, "
                     f"max {r.max_signals} alerts per run"),
        ("index", ", ".join(r.index)), ("timestamp", r.timestamp_override or "@timestamp"),
        ("author", ", ".join(r.author)), ("license", r.license or ""),
        ("tags", ", ".join(r.tags)), ("references", "\n".join(r.references)),
        ("false positives", "\n".join(r.false_positives)),
        ("tests", str(len(r.tests.tests))), ("source", r.source or ""),
    ]
    for t in r.threat:
        techs = "; ".join(
            f"{x.id} {x.name}" + "".join(f", {s.id} {s.name}" for s in x.subtechnique)
            for x in t.technique)
        rows.append(("threat", f"{t.tactic.id} {t.tactic.name}: {techs}"))
    # plain key/value lines: no padding to the terminal width, easy to grep
    for key, value in rows:
        if value:
            lines = value.splitlines()
            console.print(f"[bold]{key:<16}[/bold] {escape(lines[0])}")
            for more in lines[1:]:
                console.print(f"{'':<16} {escape(more)}")
    console.print("[bold]description")
    console.print(r.description.strip(), markup=False)
    console.print("[bold]query")
    console.print(r.query.rstrip(), markup=False)
    for title, text in (("investigation guide", r.note), ("setup", r.setup)):
        if text:
            console.rule(title)
            console.print(Markdown(text))


def run_lint(args: argparse.Namespace, env: Env) -> int:
    """``rules lint``."""
    findings = []
    if args.paths:
        for path in args.paths:
            findings.extend(lint_path(path))
    else:
        for rule in builtin_rules():
            findings.extend(lint_rule(rule))
    errors = sum(1 for f in findings if f.severity == ERROR)
    if args.format == "json":
        json.dump([{"path": f.path, "line": f.line, "column": f.column, "severity": f.severity,
                    "code": f.code, "message": f.message, "rule": f.rule_name}
                   for f in findings], env.stdout, indent=2)
        env.stdout.write("\n")
    else:
        for f in findings:
            env.stdout.write(f.render() + "\n")
        others = len(findings) - errors
        env.stdout.write(f"{errors} error(s), {others} warning(s)/hint(s)\n")
    return ExitStatus.ERROR if errors else ExitStatus.OK


def run_test(args: argparse.Namespace, env: Env) -> int:
    """``rules test``."""
    rules = _rules_for(args.refs)
    reports = [run_rule_tests(rule) for rule in rules]
    failed = sum(rep.failed for rep in reports)
    if args.format == "json":
        json.dump([rep.as_dict() for rep in reports], env.stdout, indent=2, ensure_ascii=False)
        env.stdout.write("\n")
    else:
        out = human_out(env)
        for rep in reports:
            out.write(terminal_text(f"{rep.rule.name} ({rep.rule.source or rep.rule.rule_id})")
                             + "\n")
            if not rep.results:
                out.write("  no embedded tests ([[credwatch.tests]])\n")
            for res in rep.results:
                out.write(f"  {'PASS' if res.passed else 'FAIL'}  {terminal_text(res.test.name)}\n")
                if not res.passed:
                    out.write(f"        {terminal_text(res.problem)}\n")
                if args.verbose or not res.passed:
                    for line in res.explanation:
                        out.write(f"        fired: {terminal_text(line)}\n")
                elif res.matched:
                    out.write(f"        fired: {', '.join(res.key_clauses)}\n")
            out.write(f"  {rep.passed} passed, {rep.failed} failed\n")
        out.flush()
    if failed or any(not rep.results for rep in reports):
        return ExitStatus.ERROR
    return ExitStatus.OK
