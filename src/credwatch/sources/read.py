"""Read ECS events from NDJSON, JSON arrays, ``_search`` responses and hits, raw audit logs, gzip and stdin.

The dispatcher: every input is opened (:mod:`credwatch.sources.inputs`), its
format detected (:mod:`credwatch.sources.detect`) and handed to its reader
(:mod:`credwatch.sources.ndjson`, :mod:`credwatch.sources.jsondoc`,
:mod:`credwatch.sources.audit_records`). Records remember where they came from
(file and line) and, when the input says so, the Elasticsearch ``_index``,
``_id`` and ``_version``. Bad lines never stop a scan: each one is counted by
reason in :class:`Diagnostics` with a ``file:line`` sample, and the rest of the
input is still read (``strict=True`` makes the first one fatal).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from credwatch.errors import SourceError
from credwatch.sources.detect import prepare
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.inputs import READ_ERRORS, Input, OpenedInput, describe, expand_inputs
from credwatch.sources.ndjson import ndjson_records
from credwatch.sources.record import Record

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


#: Reads one opened input as records (the engine passes its own, see read_inputs).
InputReader = Callable[[OpenedInput], Iterator[Record]]


def read_records(paths: Iterable[str], diag: Diagnostics, *, input_format: str = "auto",
                 glob: str | None = None, stdin: IO[bytes] | None = None,
                 literals: frozenset[str] | None = None) -> Iterator[Record]:
    """Read every input in ``paths`` (files, folders, ``-``) as records, in order.

    An input that cannot be opened or read to its end is reported in
    ``diag.failed`` (``path: reason``) and the next one is read; what it yielded
    before the failure stays yielded. With ``literals`` (a filter strategy), JSON
    documents' elements without one are counted, not decoded. Large inputs split
    across workers are the engine's job (:func:`credwatch.engine.workers.read_records`).
    """
    def read(opened: OpenedInput) -> Iterator[Record]:
        return read_input(opened, diag, input_format,
                          literals=None if diag.strict else literals)

    return read_inputs(paths, diag, read, input_format=input_format, glob=glob, stdin=stdin)


def read_inputs(paths: Iterable[str], diag: Diagnostics, read: InputReader, *, input_format: str = "auto",
                glob: str | None = None, stdin: IO[bytes] | None = None) -> Iterator[Record]:
    """Open every input in ``paths`` in order and ``read`` it; one failing input never stops the rest."""
    if input_format not in INPUT_FORMATS:
        raise SourceError(f"unknown input format {input_format!r}; use one of {', '.join(INPUT_FORMATS)}")
    return _each_input(paths, diag, read, glob, stdin)


def _each_input(paths: Iterable[str], diag: Diagnostics, read: InputReader,
                glob: str | None, stdin: IO[bytes] | None) -> Iterator[Record]:
    for inp in expand_inputs(paths, diag, glob):
        diag.files += 1
        try:
            opened = OpenedInput(inp, stdin)
        except READ_ERRORS as exc:
            diag.fail(inp.source, f"cannot open: {describe(exc)}")
            continue
        try:
            yield from read(opened)
            shrank = opened.shrank()
            if shrank:
                diag.fail(inp.source, shrank)
        except READ_ERRORS as exc:
            diag.fail(inp.source, describe(exc))
        finally:
            opened.close()


def read_input(opened: OpenedInput, diag: Diagnostics, input_format: str = "auto",
               literals: frozenset[str] | None = None) -> Iterator[Record]:
    """One opened input as records: its format detected, then its reader."""
    stream, skipped, fmt = prepare(opened.stream, input_format)
    return read_prepared(opened.input.source, stream, skipped, fmt, diag, literals=literals)


def read_prepared(source: str, stream: IO[bytes], skipped: int, fmt: str, diag: Diagnostics, *,
                  literals: frozenset[str] | None = None,
                  audit_needles: frozenset[bytes] | None = None) -> Iterator[Record]:
    """The reader for ``fmt`` over ``stream`` (``skipped`` lines already consumed by detection).

    ``literals`` filters JSON documents' elements and ``audit_needles`` audit events
    (see :mod:`credwatch.sources.literal_filter`, :mod:`credwatch.sources.audit_prefiltered`).
    """
    if fmt == "empty":
        diag.skip("empty-file", source, None)
        return
    # Each format's reader is imported when an input has that format: a scan of NDJSON
    # never loads the audit parser, reassembler and ECS mapping (~10 ms of start-up).
    if fmt == "auditd":
        from credwatch.sources.audit_records import audit_records

        yield from audit_records(stream, source, diag, audit_needles, first_line=skipped + 1)
        return
    if fmt in ("json", "search"):
        from credwatch.sources.jsondoc import document_records
        from credwatch.sources.literal_filter import LiteralFilter

        doc_filter = LiteralFilter(literals) if literals is not None else None
        yield from document_records(stream, source, diag, first_line=skipped + 1, literal_filter=doc_filter)
        return
    yield from ndjson_records(stream, source, diag, first_line=skipped + 1)
