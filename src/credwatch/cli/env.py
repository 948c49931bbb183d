"""The injectable environment a CLI command runs in (httpie's pattern).

Tests build an :class:`Env` with in-memory streams, a fixed clock and a fake
environment, then call :func:`credwatch.cli.main.program` directly.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO


class ExitStatus(enum.IntEnum):
    """Documented exit codes of every credwatch command."""

    # Like grep: 0 when something was found, 1 when nothing was, 2 on error.
    # So `credwatch scan ... && page-someone` reads naturally, and a hunt that
    # finds alerts is a successful hunt.
    # 1 is a promise: every input was evaluated and nothing alerted. Any failure,
    # even one beside alerts that were found, gets a code of its own.
    OK = 0  #: success (for scan/run/watch: every input evaluated, alerts were produced)
    NO_ALERTS = 1  #: every input was evaluated and produced no alerts
    ERROR = 2  #: bad usage, bad rule or config, bad input under --strict: nothing was evaluated
    PARTIAL = 3  #: some inputs or records could not be read or evaluated (see stderr); others were
    INTERNAL = 70  #: an unexpected internal error (EX_SOFTWARE); ``--debug`` shows the traceback
    INTERRUPTED = 130  #: stopped by Ctrl-C


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Env:
    """Streams, clock and environment variables for one command invocation."""

    stdin: IO[bytes] = field(default_factory=lambda: sys.stdin.buffer)
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], datetime] = _utcnow
    #: The effective user id (injectable so privilege checks are testable as any user).
    euid: Callable[[], int] = os.geteuid
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None

    def __post_init__(self) -> None:
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)
        if self.stderr_isatty is None:
            self.stderr_isatty = _isatty(self.stderr)


def _isatty(stream: object) -> bool:
    fn = getattr(stream, "isatty", None)
    try:
        return bool(fn()) if fn else False
    except (ValueError, OSError):
        return False
