"""Read ECS events from NDJSON, JSON arrays, ``_search`` responses and hits, gzip and stdin.

Every input becomes a stream of :class:`Record` objects that remember where
they came from (file and line) and, when the input says so, the Elasticsearch
``_index``, ``_id`` and ``_version``. Bad lines never stop a scan: each one is
counted by reason in :class:`Diagnostics` with a ``file:line`` sample, and the
rest of the input is still read (``strict=True`` makes the first one fatal).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from typing import IO

from credwatch.errors import SourceError
from credwatch.sources import inputs
from credwatch.sources.audit_records import audit_records
from credwatch.sources.detect import detect as sniff
from credwatch.sources.detect import prepare
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.documents import (
    check_types,
    documents_to_records,
    line_records,
    line_records_checked,
)
from credwatch.sources.inputs import (
    MAX_LINE_BYTES,
    READ_ERRORS,
    Input,
    OpenedInput,
    describe,
    expand_inputs,
    iter_lines,
)
from credwatch.sources.jsondoc import document_records
from credwatch.sources.literal_filter import LiteralFilter
from credwatch.sources.prefiltered import FastPath, prefiltered_records, worker_count
from credwatch.sources.record import Record

__all__ = [
    "INPUT_FORMATS",
    "MAX_LINE_BYTES",
    "Diagnostics",
    "Record",
    "check_types",
    "documents_to_records",
    "expand_paths",
    "iter_lines",
    "line_records",
    "line_records_checked",
    "open_binary",
    "read_records",
    "sniff",
]

INPUT_FORMATS = ("auto", "ndjson", "json", "search", "auditd")


# --- opening inputs ------------------------------------------------------------------------

def open_binary(path: str, stdin: IO[bytes] | None = None) -> IO[bytes]:
    """Open ``path`` (``-`` for stdin) for binary reading, transparently gunzipping.

    Raises :class:`SourceError`; :func:`read_records` reports failures instead.
    """
    try:
        return OpenedInput(Input(path, path, False), stdin).stream
    except READ_ERRORS as exc:
        raise SourceError(f"cannot open: {describe(exc)}", path) from None


def expand_paths(paths: Iterable[str], glob: str | None = None) -> list[str]:
    """Expand folders recursively (optionally filtered by ``glob`` on the file name), sorted."""
    out: list[str] = []
    for p in paths:
        if p != "-" and os.path.isdir(p):
            found: list[str] = []
            for root, _dirs, files in os.walk(p):
                for name in files:
                    if name.startswith("."):
                        continue
                    if glob and not fnmatch.fnmatch(name, glob):
                        continue
                    found.append(os.path.join(root, name))
            out.extend(sorted(found))
        elif p != "-" and not os.path.exists(p):
            raise SourceError("no such file or folder", p)
        else:
            out.append(p)
    return out


def _ndjson_records(stream: IO[bytes], source: str, diag: Diagnostics,
                    first_line: int = 1) -> Iterator[Record]:
    for lineno, raw in iter_lines(stream, first_line=first_line):
        if raw is None:
            diag.skip("line-too-long", source, lineno, f"over {inputs.MAX_LINE_BYTES} bytes")
            continue
        yield from line_records_checked(raw, source, lineno, diag)


def read_records(paths: Iterable[str], diag: Diagnostics, *, input_format: str = "auto",
                 glob: str | None = None, stdin: IO[bytes] | None = None,
                 fast: FastPath | None = None) -> Iterator[Record]:
    """Read every input in ``paths`` (files, folders, ``-``) as records, in order.

    An input that cannot be opened or read to its end is reported in
    ``diag.failed`` (``path: reason``) and the next one is read; what it yielded
    before the failure stays yielded. With ``fast``, NDJSON and audit inputs it
    engages for are read through the literal prefilter
    (:mod:`credwatch.sources.prefiltered`): only records that would alert or need a
    diagnostic are yielded, the rest are counted in ``diag``.
    """
    if input_format not in INPUT_FORMATS:
        raise SourceError(f"unknown input format {input_format!r}; use one of {', '.join(INPUT_FORMATS)}")
    for inp in expand_inputs(paths, diag, glob):
        diag.files += 1
        try:
            opened = OpenedInput(inp, stdin)
        except READ_ERRORS as exc:
            diag.fail(inp.source, f"cannot open: {describe(exc)}")
            continue
        try:
            yield from _read_one(opened, diag, input_format, fast)
            shrank = opened.shrank()
            if shrank:
                diag.fail(inp.source, shrank)
        except READ_ERRORS as exc:
            diag.fail(inp.source, describe(exc))
        finally:
            opened.close()


def _read_one(opened: OpenedInput, diag: Diagnostics, input_format: str,
              fast: FastPath | None) -> Iterator[Record]:
    """One opened input as records."""
    source = opened.input.source
    size = opened.plain_size
    path = opened.input.path if size is not None else None
    # Documents are filtered whatever their size: their elements are not bounded by lines
    # (ten million `{}` in 30 MB), and a unit without a literal cannot alert.
    doc_filter = None
    if fast is not None and fast.literals is not None and not diag.strict:
        doc_filter = LiteralFilter(fast.literals)
    if fast is not None and (diag.strict or not fast.engages(size)):
        fast = None
    stream, skipped, fmt = prepare(opened.stream, input_format)
    if fmt == "empty":
        diag.skip("empty-file", source, None)
        return
    if fast is not None and path is not None and fmt in ("auditd", "ndjson"):
        # Workers split the file by offset and number its lines from the start.
        opened.stream.seek(0)
        stream, skipped = opened.stream, 0
    if fmt == "auditd":
        yield from audit_records(stream, source, diag, fast, path, size, first_line=skipped + 1)
        return
    if fmt in ("json", "search"):
        yield from document_records(stream, source, diag, first_line=skipped + 1,
                                    literal_filter=doc_filter)
        return
    # Decoding every line gains only from workers; alone, the plain reader is as fast.
    if fast is not None and (fast.literals is not None or worker_count(fast, path, size) > 1):
        yield from prefiltered_records(stream, source, diag, fast, path, size, first_line=skipped + 1)
        return
    yield from _ndjson_records(stream, source, diag, first_line=skipped + 1)
