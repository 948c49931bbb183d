"""``credwatch convert``: write the ECS events of any input as Parquet or NDJSON."""

from __future__ import annotations

import argparse
from typing import Any

from credwatch.alerts.display import terminal_text
from credwatch.cli.common import add_input_format_arg
from credwatch.cli.env import Env, ExitStatus
from credwatch.engine.convert import FORMATS, PARTITIONS, convert
from credwatch.errors import ConfigError
from credwatch.privatefile import refuse_inputs_as_outputs
from credwatch.sources.diagnostics import Diagnostics

DESCRIPTION = """\
Read events as `scan` reads them (NDJSON nested or flat-dotted, JSON arrays,
_search responses, Kibana exports, raw audit.log, gzip, folders) and write them
as Parquet (a stable ECS schema: dotted names nested as structs, process.args a
list of strings; see docs/engines.md) or as NDJSON. Parquet needs the `lake`
extra: pip install 'credwatch[lake]'.
"""

EXAMPLES = """\
examples:
  credwatch convert /var/log/audit/audit.log --to parquet events.parquet
  credwatch convert exports/ --to parquet --partition-by day lake/
  credwatch convert --to ndjson audit.log.gz events.ndjson

exit status: 0 written, 2 usage or configuration error, 3 some input could not be read.
"""


class _Intermixed(argparse.ArgumentParser):
    """Lets options sit between the inputs and OUT (``convert IN --to parquet OUT``).

    A plain parser binds every positional at the first run of them, so OUT after
    ``--to`` would be refused; the intermixed parse collects positionals around options.
    """

    _inner = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inner:
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return super().parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def register(sub: Any) -> None:
    """Add the ``convert`` sub-command."""
    p: argparse.ArgumentParser = sub.add_parser(
        "convert", help="write events as Parquet or NDJSON", description=DESCRIPTION,
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="IN... OUT",
                   help="inputs (files, folders, or - for stdin), then the output (unless --output)")
    p.add_argument("--to", dest="fmt", choices=FORMATS, required=True, help="output format")
    p.add_argument("--output", "-o", dest="out", metavar="OUT",
                   help="output file, or folder with --partition-by day (default: the last PATH)")
    p.add_argument("--partition-by", choices=PARTITIONS, default="none",
                   help="day: OUT/day=YYYY-MM-DD/part-00000.<fmt> by @timestamp")
    add_input_format_arg(p)
    p.add_argument("--glob", metavar="PATTERN", help="only files whose name matches, in folders")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary on stderr")
    # The sub-command parser is made by the caller's class (which raises instead of exiting):
    # keep that class and add the intermixed parse on top of it.
    p.__class__ = type("ConvertParser", (_Intermixed, type(p)), {})
    p.set_defaults(func=run)


def run(args: argparse.Namespace, env: Env) -> int:
    """Convert; exit 0 when every input was written, 3 when some could not be read."""
    paths, out = list(args.paths), args.out
    if out is None:
        if len(paths) < 2:
            raise ConfigError("convert needs IN... OUT (or --output OUT)")
        out = paths.pop()
    if out == "-":
        raise ConfigError("convert writes files; name an output path, not -")
    refuse_inputs_as_outputs([("OUT", out)], paths, glob=args.glob)
    diag = Diagnostics()
    result = convert(paths, out, args.fmt, diag, partition_by=args.partition_by,
                     input_format=args.input_format, glob=args.glob, stdin=env.stdin)
    if not args.quiet:
        for sample in diag.samples:
            env.stderr.write(f"credwatch: {terminal_text(sample)}\n")
        env.stderr.write(f"credwatch: {diag.summary()}; wrote {result.events} event(s), "
                         f"{result.columns} field(s) to {len(result.files)} file(s)\n")
    for failure in diag.failed:
        env.stderr.write(f"credwatch: {terminal_text(failure)}\n")
    return ExitStatus.PARTIAL if diag.failed else ExitStatus.OK
