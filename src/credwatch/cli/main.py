"""Entry point: ``credwatch <command> ...``.

The CLI is thin. Each sub-command lives in its own module under
:mod:`credwatch.cli.commands`, exposing ``register(subparsers)``; the module
sets ``func(args, env) -> int`` as the parser default. Commands are discovered
so that adding one never edits a shared list.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from credwatch import __version__
from credwatch.cli import commands
from credwatch.cli.env import Env, ExitStatus
from credwatch.errors import CredwatchError


class _Parser(argparse.ArgumentParser):
    """ArgumentParser that raises instead of exiting, so ``program`` stays pure."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: error: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            sys.stderr.write(message)  # redirected to env.stderr by program()
        raise _ParserExit(status)


class _UsageError(Exception):
    pass


class _ParserExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


EPILOG = """exit status (like grep):
  0  success; for scan and run: alerts were produced
  1  scan or run succeeded and produced no alerts
  2  error (bad usage, bad rule, unreadable input, bad input under --strict)
  130 interrupted
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the argument parser, discovering every command module.

    With ``only`` naming a command, just that command's module is imported:
    the heavy imports of the others (DuckDB SQL, HTML reports, Markdown) would
    otherwise cost a scan several hundred milliseconds of start-up.
    """
    parser = _Parser(
        prog="credwatch",
        description="Detect Kubernetes and cloud credential access in Linux process telemetry, "
        "with Elastic's detection semantics, without the Elastic Stack.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"credwatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__)
                   if not m.name.startswith("_"))
    if only in names:
        names = [only]
    for name in names:
        module = importlib.import_module(f"{commands.__name__}.{name}")
        module.register(sub)
    return parser


def program(argv: Sequence[str], env: Env | None = None) -> int:
    """Run credwatch with ``argv`` (without the program name) in ``env``."""
    env = env or Env()
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first)
    try:
        # argparse prints --help and usage errors to sys.stdout/sys.stderr.
        with contextlib.redirect_stdout(env.stdout), contextlib.redirect_stderr(env.stderr):
            args = parser.parse_args(list(argv))
    except _UsageError as exc:
        env.stderr.write(f"{exc}\n")
        return ExitStatus.ERROR
    except _ParserExit as exc:
        return exc.status
    if not getattr(args, "func", None):
        parser.print_help(env.stdout)
        return ExitStatus.ERROR
    try:
        return int(args.func(args, env))
    except CredwatchError as exc:
        env.stderr.write(f"credwatch: {exc.render()}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        env.stderr.write("credwatch: interrupted\n")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return ExitStatus.OK


def main() -> None:
    """Console-script entry point."""
    sys.exit(program(sys.argv[1:]))


if __name__ == "__main__":
    main()
