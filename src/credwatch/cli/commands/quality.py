"""``credwatch quality``: precision and recall of rules over a labelled corpus."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from credwatch.alerts.display import terminal_text
from credwatch.cli.common import add_input_format_arg, add_rule_args, human_out, select_rules
from credwatch.cli.env import Env, ExitStatus
from credwatch.engine.quality import (
    Counts,
    QualityReport,
    all_selectors,
    load_labels,
    measure,
    scan_corpus,
)
from credwatch.engine.scan import compile_rules
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import read_records

DESCRIPTION = """\
Measure how well rules separate labelled cases: read the telemetry, evaluate
each rule exactly as `credwatch scan` does, and compare with a labels file
(JSON lines: an event selector -- "selector"/"selectors" such as
audit:<node>:<stamp>:<serial>, id:<event.id>, line:<n> -- or the shorthands
"event.id"/"source.line", "expected": true|false, optional "group").
A case counts as flagged when the rule alerts on any of its events.
Prints true/false positives/negatives, precision and recall per group and
overall, and lists the missed cases and the false positives.
"""

EPILOG = """\
examples:
  credwatch quality tests/fixtures/quality/host_execs.log \\
      --labels tests/fixtures/quality/host_execs.labels.jsonl \\
      --rule credwatch-credential-path-hardened --min-recall 0.95 --min-precision 1
  credwatch quality events.ndjson --labels labels.jsonl --format json

exit status:
  0  every rule meets the bars (or no bar was given)
  1  some rule is below --min-recall or --min-precision
  2  bad usage, rule or labels file
  3  PARTIAL: some input could not be read, or some labelled case has no event in
     the telemetry (listed as unresolved); the figures leave those cases out
"""


def register(sub: Any) -> None:
    """Add the ``quality`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "quality", help="precision and recall of rules over a labelled corpus",
        description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="telemetry files, folders, or -")
    p.add_argument("--labels", required=True, metavar="FILE", help="labels (JSON lines)")
    add_input_format_arg(p)
    p.add_argument("--all-indices", action="store_true",
                   help="evaluate every event, even when its index is outside the rule's patterns")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    p.add_argument("--min-recall", type=_fraction, metavar="R",
                   help="exit 1 when a rule's overall recall is below R (0..1)")
    p.add_argument("--min-precision", type=_fraction, metavar="P",
                   help="exit 1 when a rule's overall precision is below P (0..1)")
    p.add_argument("--max-listed", type=int, default=50, metavar="N",
                   help="cases listed per kind in the table (default 50)")
    add_rule_args(p)
    p.set_defaults(func=run)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def below_bars(report: QualityReport, min_recall: float | None,
               min_precision: float | None) -> list[str]:
    """Why ``report`` fails the bars (empty when it passes). A figure that is n/a fails."""
    out = []
    recall, precision = report.overall.recall, report.overall.precision
    if min_recall is not None and (recall is None or recall < min_recall):
        out.append(f"recall {_pct(recall)} < {_pct(min_recall)}")
    if min_precision is not None and (precision is None or precision < min_precision):
        out.append(f"precision {_pct(precision)} < {_pct(min_precision)}")
    return out


def _row(name: str, c: Counts) -> str:
    return (f"  {name[:24]:<24} {c.tp:>5} {c.fp:>5} {c.fn:>5} {c.tn:>5} "
            f"{_pct(c.precision):>10} {_pct(c.recall):>8}")


def render_table(report: QualityReport, max_listed: int) -> str:
    """The human report of one rule."""
    lines = [f"{report.rule_name} ({report.rule_id})",
             f"  {'group':<24} {'TP':>5} {'FP':>5} {'FN':>5} {'TN':>5} {'precision':>10} {'recall':>8}"]
    lines += [_row(g, c) for g, c in sorted(report.groups.items())]
    lines.append(_row("overall", report.overall))
    for title, labels in (("missed", report.missed), ("false positives", report.false_alarms),
                          ("unresolved (no event in the telemetry)", report.unresolved)):
        if not labels:
            continue
        lines.append(f"  {title}: {len(labels)}")
        for label in labels[:max_listed]:
            what = f"{label.name}: {label.command}" if label.command and label.case else label.name
            lines.append(f"    [{label.group}] {terminal_text(what)}")
        if len(labels) > max_listed:
            lines.append(f"    ... {len(labels) - max_listed} more")
    return "\n".join(lines)


def run(args: argparse.Namespace, env: Env) -> int:
    """Score every selected rule; see the exit status in the epilog."""
    labels = load_labels(args.labels)
    crules = compile_rules(select_rules(args, env))
    diag = Diagnostics()
    records = read_records(args.paths, diag, input_format=args.input_format, stdin=env.stdin)
    seen, flagged = scan_corpus(crules, records, all_selectors(labels), args.all_indices)
    reports = [measure(c, labels, seen, f) for c, f in zip(crules, flagged, strict=True)]
    failures = {r.rule_id: below_bars(r, args.min_recall, args.min_precision) for r in reports}
    if args.format == "json":
        out = [{**r.as_dict(), "below_bars": failures[r.rule_id]} for r in reports]
        json.dump(out if len(out) > 1 else out[0], env.stdout, indent=2)
        env.stdout.write("\n")
    else:
        text = human_out(env)
        for r in reports:
            text.write(render_table(r, max(args.max_listed, 0)) + "\n")
            for reason in failures[r.rule_id]:
                text.write(f"  BELOW BAR: {reason}\n")
        text.flush()
    for failure in diag.failed:
        env.stderr.write(f"credwatch: {terminal_text(failure)}\n")
    if diag.failed or any(r.unresolved for r in reports):
        return ExitStatus.PARTIAL
    return ExitStatus.NO_ALERTS if any(failures.values()) else ExitStatus.OK
