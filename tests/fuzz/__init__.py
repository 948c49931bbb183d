"""Fuzz targets: hypothesis properties that no input makes credwatch raise an uncaught exception.

In the normal test run each target tries ``FUZZ_EXAMPLES`` (default 200) inputs. The long run
(README, "Security and failure behaviour") sets ``CREDWATCH_FUZZ_EXAMPLES=100000``:

    CREDWATCH_FUZZ_EXAMPLES=100000 .venv/bin/pytest -q tests/fuzz -p no:randomly

Inputs that once crashed credwatch are kept in ``tests/fuzz/corpus/<target>/`` and replayed by
every run (see :func:`corpus`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hypothesis import HealthCheck, settings

F = TypeVar("F", bound=Callable[..., object])

FUZZ_EXAMPLES = int(os.environ.get("CREDWATCH_FUZZ_EXAMPLES", "200"))
CORPUS = Path(__file__).parent / "corpus"


def fuzz(func: F) -> F:
    """Hypothesis settings for a fuzz target: ``FUZZ_EXAMPLES`` cases, no deadline."""
    wrapped: F = settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
        database=None,
    )(func)
    return wrapped


def corpus(target: str) -> list[bytes]:
    """The saved crash inputs of ``target`` (one file per input), for regression replay."""
    folder = CORPUS / target
    if not folder.is_dir():
        return []
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()]
