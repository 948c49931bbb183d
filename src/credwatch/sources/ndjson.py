"""The NDJSON line reader: one JSON document per line (a ``_search`` response or hit counts too)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from credwatch.sources import inputs
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import line_records_checked
from credwatch.sources.inputs import iter_lines
from credwatch.sources.record import Record


def ndjson_records(stream: IO[bytes], source: str, diag: Diagnostics,
                   first_line: int = 1) -> Iterator[Record]:
    """The records of every line of ``stream``, numbered from ``first_line``; bad lines are counted."""
    for lineno, raw in iter_lines(stream, first_line=first_line):
        if raw is None:
            diag.skip("line-too-long", source, lineno, f"over {inputs.MAX_LINE_BYTES} bytes")
            continue
        yield from line_records_checked(raw, source, lineno, diag)
