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
import os
import pkgutil
import re
import sys
from collections.abc import Sequence

from credwatch import __version__
from credwatch.alerts.display import terminal_lines, terminal_text
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

    def _get_formatter(self) -> argparse.HelpFormatter:
        # Commands ask for argparse's raw formatter; ours replaces it anyway (_fit_help), and
        # argparse's own reads the width through shutil (with bz2, lzma: ~2 ms of every start-up).
        cls = self.formatter_class
        if cls is argparse.RawDescriptionHelpFormatter:
            cls = HelpFormatter
        return cls(prog=self.prog)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that fits the terminal.

    Prose paragraphs of descriptions and epilogs are re-filled to its width.
    Indented lines (examples, tables) are kept as written when they fit; a longer
    one is folded: a trailing ``# comment`` goes on its own line above, a command
    continues on the next line after a `` \\`` (still copy-pasteable), and
    table rows continue under their text.
    """

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap  # only when help is printed (start-up: argparse imports it lazily too)

        out: list[str] = []
        for para in text.split("\n\n"):
            lines = para.split("\n")
            prose = all(line and not line[0].isspace() for line in lines)
            if prose and any(len(indent + line) > width for line in lines):
                out.append(textwrap.fill(" ".join(lines), width, initial_indent=indent,
                                         subsequent_indent=indent))
            else:
                out.append("\n".join(folded for line in lines
                                     for folded in _fold(indent + line if line else line, width)))
        return "\n\n".join(out)


def _columns() -> int:
    """The terminal's width as :func:`shutil.get_terminal_size` gives it (``$COLUMNS`` first)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


_COMMAND = re.compile(r"^(sudo )?(credwatch|zcat|curl|spark-submit) ")
_HANGING = re.compile(r"^\s*\S+\s+")


def _fold(line: str, width: int) -> list[str]:
    """One help line as lines of at most ``width`` characters (see :class:`HelpFormatter`)."""
    import textwrap

    if len(line) <= width or width < 30:
        return [line]
    lead = line[: len(line) - len(line.lstrip())]
    body = line.strip()
    cmd, sep, comment = body.partition("  # ")
    if sep and _COMMAND.match(cmd):
        return [*_fold(f"{lead}# {comment.strip()}", width), *_fold(lead + cmd.rstrip(), width)]
    if _COMMAND.match(body):
        parts = textwrap.wrap(body, width - len(lead) - 2, subsequent_indent="    ",
                              break_long_words=False, break_on_hyphens=False)
        return [lead + p + (" \\" if i < len(parts) - 1 else "") for i, p in enumerate(parts)]
    hang = _HANGING.match(line)
    rest = " " * min(len(hang.group(0)) if hang else len(lead), width // 2)
    return textwrap.wrap(line, width, initial_indent="", subsequent_indent=rest,
                         break_long_words=True, break_on_hyphens=False, drop_whitespace=True) or [line]


def _fit_help(parser: argparse.ArgumentParser) -> None:
    """Give every (sub-)parser the :class:`HelpFormatter` (commands pass argparse's raw one)."""
    if parser.formatter_class is argparse.RawDescriptionHelpFormatter:
        parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _fit_help(child)


class _UsageError(Exception):
    pass


class _ParserExit(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


EPILOG = """exit status (like grep):
  0   success; for scan, run and watch: every input evaluated, alerts were produced
  1   every input was evaluated and nothing alerted (never after a failure)
  2   error: bad usage, bad rule or config, bad input under --strict
  3   partial: some inputs or records could not be read or evaluated (reported
      on stderr as path: reason); the others were, and alerts may have been produced
  70  internal error (one line on stderr; run again with --debug for the traceback)
  130 interrupted
"""


def build_parser(only: str | None = None, *, commands_needed: bool = True) -> argparse.ArgumentParser:
    """Build the argument parser, discovering every command module.

    With ``only`` naming a command, just that command's module is imported:
    the heavy imports of the others (DuckDB SQL, HTML reports, Markdown) would
    otherwise cost a scan several hundred milliseconds of start-up. Without
    ``commands_needed`` (``credwatch --version``) none is.
    """
    parser = _Parser(
        prog="credwatch",
        description="Detect Kubernetes and cloud credential access in Linux process telemetry, "
        "with Elastic's detection semantics, without the Elastic Stack.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"credwatch {__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="print the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__)
                   if not m.name.startswith("_"))
    if only in names:
        names = [only]
    elif not commands_needed:
        names = []
    for name in names:
        module = importlib.import_module(f"{commands.__name__}.{name}")
        module.register(sub)
    _fit_help(parser)
    return parser


def program(argv: Sequence[str], env: Env | None = None) -> int:
    """Run credwatch with ``argv`` (without the program name) in ``env``."""
    env = env or Env()
    # --debug is accepted anywhere on the line, before or after the command.
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    first = next((a for a in argv if not a.startswith("-")), None)
    # `credwatch --version` prints and exits while parsing: no command module is needed.
    version_only = first is None and "--version" in argv and not {"-h", "--help"} & set(argv)
    parser = build_parser(first, commands_needed=not version_only)
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
        # Messages quote paths and values from the input (file names are attacker-chosen).
        env.stderr.write(f"credwatch: {terminal_lines(exc.render())}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        env.stderr.write("credwatch: interrupted\n")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return ExitStatus.OK
    except RecursionError:
        return _internal(env, "input nested too deeply", debug)
    except MemoryError:
        return _internal(env, "out of memory", debug)
    except Exception as exc:  # the last line of defence: one line, never a traceback
        return _internal(env, f"{type(exc).__name__}: {exc}", debug)


def _internal(env: Env, what: str, debug: bool) -> int:
    """Report an unexpected failure in one line (the traceback only with ``--debug``)."""
    first = what.splitlines()[0] if what else "unknown error"
    env.stderr.write(f"credwatch: internal error: {terminal_text(first[:500])}\n")
    if debug:
        import traceback  # only here: it costs every command's start-up ~10 ms

        env.stderr.write(traceback.format_exc())
    else:
        env.stderr.write("credwatch: run again with --debug for details\n")
    return ExitStatus.INTERNAL


def main() -> None:
    """Console-script entry point."""
    sys.exit(program(sys.argv[1:]))


if __name__ == "__main__":
    main()
