"""Helpers to run the CLI in-process with captured streams and a fixed clock."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from credwatch.cli.env import Env
from credwatch.cli.main import program

FIXED_NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def alerts(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.out.splitlines() if line.strip()]


def run_cli(*argv: str, stdin: bytes = b"", environ: dict[str, str] | None = None,
            tty: bool = False) -> Result:
    out, err = io.StringIO(), io.StringIO()
    env = Env(stdin=io.BytesIO(stdin), stdout=out, stderr=err, environ=environ or {},
              clock=lambda: FIXED_NOW, stdout_isatty=tty, stderr_isatty=False)
    code = program(list(argv), env)
    return Result(code, out.getvalue(), err.getvalue())


def stable(alert: dict[str, Any]) -> dict[str, Any]:
    """An alert without the fields that legitimately differ between equal inputs."""
    return {k: v for k, v in alert.items()
            if not k.startswith("credwatch.source.") and k not in ("credwatch.explain",
                                                                  "credwatch.explanation")}


def write_ndjson(path: Path, docs: list[Any]) -> Path:
    """Write ``docs`` to ``path`` as NDJSON (orjson, one per line) and return the path."""
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))
    return path
