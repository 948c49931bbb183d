"""Read ECS events from NDJSON, JSON arrays, ``_search`` responses and hits, gzip and stdin.

Every input becomes a stream of :class:`Record` objects that remember where
they came from (file and line) and, when the input says so, the Elasticsearch
``_index``, ``_id`` and ``_version``. Bad lines never stop a scan: each one is
counted by reason in :class:`Diagnostics` with a ``file:line`` sample, and the
rest of the input is still read (``strict=True`` makes the first one fatal).
"""

from __future__ import annotations

import fnmatch
import gzip
import io
import os
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import orjson

from credwatch.errors import SourceError
from credwatch.kql.fields import ECS_FIELD_TYPES, NUMERIC_TYPES, field_type

if TYPE_CHECKING:
    from credwatch.sources.prefiltered import FastPath

#: Lines longer than this are skipped (and reported) without being held in memory.
MAX_LINE_BYTES = 16 * 1024 * 1024
INPUT_FORMATS = ("auto", "ndjson", "json", "search", "auditd")
_SAMPLE_LIMIT = 20


@dataclass(slots=True)
class Record:
    """One event and where it came from."""

    event: dict[str, Any]
    source: str
    line: int
    index: str | None = None
    id: str | None = None
    version: int | str | None = None
    #: Alerts already built for this record by a fast-path worker (their location is
    #: fixed up by :class:`~credwatch.engine.scan.Scanner`).
    prebuilt: list[dict[str, object]] | None = None


@dataclass
class Diagnostics:
    """Counts of what was read, skipped (by reason) and matched, with file:line samples."""

    files: int = 0
    events: int = 0
    matched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    strict: bool = False
    #: Events counted without being decoded or dismissed by the literal prefilter.
    prefiltered: int = 0
    #: Called by readers that count many events at once (see :meth:`tick`), e.g. a progress bar.
    progress: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def tick(self) -> None:
        """Tell :attr:`progress` that the counts moved."""
        if self.progress is not None:
            self.progress()

    def skip(self, reason: str, source: str, line: int | None, detail: str = "") -> None:
        """Record a skipped input unit; raise :class:`SourceError` under ``strict``."""
        self.skipped[reason] += 1
        where = f"{source}:{line}" if line is not None else source
        message = f"{where}: {reason}" + (f" ({detail})" if detail else "")
        if self.strict:
            raise SourceError(f"{reason}" + (f" ({detail})" if detail else ""), source, line)
        if len(self.samples) < _SAMPLE_LIMIT:
            self.samples.append(message)

    def warn(self, reason: str, source: str, line: int | None, detail: str = "") -> None:
        """Record something odd that was still evaluated (e.g. a string where an array is usual)."""
        self.warnings[reason] += 1
        if len(self.samples) < _SAMPLE_LIMIT:
            where = f"{source}:{line}" if line is not None else source
            self.samples.append(f"{where}: warning: {reason}" + (f" ({detail})" if detail else ""))

    @property
    def skipped_total(self) -> int:
        """Total number of skipped input units."""
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One line: events read, skipped by reason, matched."""
        parts = [f"{self.events} events read from {self.files} input(s)"]
        if self.prefiltered:
            parts[0] += f" ({self.prefiltered} ruled out by the literal prefilter)"
        if self.skipped:
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.skipped.items()))
            parts.append(f"{self.skipped_total} skipped ({reasons})")
        else:
            parts.append("0 skipped")
        if self.warnings:
            parts.append(", ".join(f"{n} {r}" for r, n in sorted(self.warnings.items())))
        parts.append(f"{self.matched} matched")
        return "; ".join(parts)


# --- opening inputs ------------------------------------------------------------------------

def open_binary(path: str, stdin: IO[bytes] | None = None) -> IO[bytes]:
    """Open ``path`` (``-`` for stdin) for binary reading, transparently gunzipping."""
    raw: IO[bytes]
    if path == "-":
        if stdin is None:
            raise SourceError("no standard input available", "-")
        raw = stdin if isinstance(stdin, io.BufferedReader) else io.BufferedReader(_RawWrap(stdin))
    else:
        try:
            raw = open(path, "rb", buffering=1 << 20)  # noqa: SIM115 - the caller closes it
        except OSError as exc:
            raise SourceError(f"cannot open: {exc.strerror or exc}", path) from None
    try:
        head = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
    except OSError:
        head = b""
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


class _RawWrap(io.RawIOBase):
    """Give any binary stream (e.g. BytesIO in tests) a ``readinto`` for BufferedReader."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        data = self.inner.read(len(buf))
        n = len(data)
        buf[:n] = data
        return n


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


def iter_lines(stream: IO[bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(line number, bytes)``; an over-long line yields ``None`` and is skipped in pieces."""
    lineno = 0
    while True:
        try:
            chunk = stream.readline(max_bytes + 1)
        except (OSError, EOFError) as exc:  # e.g. a truncated gzip member
            raise SourceError(f"read error: {exc}", getattr(stream, "name", "<input>")) from None
        if not chunk:
            return
        lineno += 1
        if len(chunk) > max_bytes and not chunk.endswith(b"\n"):
            # Drain the rest of the long line without keeping it.
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(max_bytes)
            yield lineno, None
            continue
        yield lineno, chunk


# --- detection ------------------------------------------------------------------------------

def sniff(head: bytes) -> str:
    """Guess an input format from its first bytes: ``ndjson``, ``json``, ``auditd`` or ``empty``."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not text:
        return "empty"
    if text[:1] == b"[":
        return "json"
    if text[:1] == b"{":
        if b"\n" not in text:
            # The first line is longer than what we peeked (or the only line):
            # a pretty-printed document would have broken the line already.
            return "ndjson"
        first = text.split(b"\n", 1)[0].strip()
        try:
            orjson.loads(first)
            return "ndjson"
        except orjson.JSONDecodeError:
            return "json"
    if (text.startswith((b"type=", b"node=", b"----")) or b"msg=audit(" in text[:4096]):
        return "auditd"
    return "ndjson"


# --- documents → records -------------------------------------------------------------------

def _hit_to_record(hit: Mapping[str, Any], source: str, line: int) -> Record | None:
    src = hit.get("_source")
    if isinstance(src, dict):
        event: dict[str, Any] = src
    elif isinstance(hit.get("fields"), dict):
        # `fields` is flat-dotted with array values, which the evaluator reads as is.
        event = dict(hit["fields"])
    else:
        return None
    index = hit.get("_index")
    doc_id = hit.get("_id")
    return Record(event, source, line, index if isinstance(index, str) else None,
                  str(doc_id) if doc_id is not None else None, hit.get("_version"))


def _is_hit(doc: Mapping[str, Any]) -> bool:
    return ("_source" in doc or "fields" in doc) and ("_id" in doc or "_index" in doc)


def documents_to_records(doc: Any, source: str, line: int, diag: Diagnostics) -> Iterator[Record]:
    """Turn one parsed JSON document (event, hit, ``_search`` response, array) into records."""
    if isinstance(doc, list):
        for item in doc:
            yield from documents_to_records(item, source, line, diag)
        return
    if not isinstance(doc, dict):
        diag.skip("not-an-object", source, line, f"JSON {type(doc).__name__}, expected an event object")
        return
    hits = doc.get("hits")
    if isinstance(hits, dict) and isinstance(hits.get("hits"), list):
        for hit in hits["hits"]:
            if isinstance(hit, dict) and (rec := _hit_to_record(hit, source, line)) is not None:
                yield rec
            else:
                diag.skip("bad-hit", source, line, "hit without _source or fields")
        return
    if _is_hit(doc):
        rec = _hit_to_record(doc, source, line)
        if rec is None:
            diag.skip("bad-hit", source, line, "hit without _source or fields")
        else:
            yield rec
        return
    yield Record(doc, source, line)


def check_types(rec: Record, diag: Diagnostics) -> bool:
    """Reject what Elasticsearch's ECS mapping would reject; note what it would coerce.

    An object where a keyword/number is mapped, or a non-numeric string in a
    numeric field, makes Elasticsearch refuse the whole document, so it is
    skipped. A single string where ECS usually has an array (``process.args``,
    ``event.category``) is indexed fine by Elasticsearch; it is counted as a
    warning and evaluated.
    """
    event = rec.event
    proc = event.get("process")
    args: Any = proc.get("args") if isinstance(proc, dict) else event.get("process.args")
    if isinstance(args, str):
        diag.warn("string-for-array", rec.source, rec.line, "process.args is a string, read as one value")
    elif isinstance(args, dict):
        diag.skip("wrong-type", rec.source, rec.line, "process.args is an object")
        return False
    bad = _non_numeric_string(event, _NUMERIC_TRIE, "")
    if bad is not None:
        name, value = bad
        diag.skip("wrong-type", rec.source, rec.line,
                  f"{name} is {field_type(name)}, got {value[:40]!r}")
        return False
    return True


#: ECS fields mapped to a numeric type (a string there must parse as a number), as a
#: trie of their dotted parts; the key ``None`` marks a field's end (no key of an
#: event can collide with it, not even an empty one). Walking an event along the trie
#: skips every subtree that holds no numeric field (``process.args``, ``user.*``).
_NUMERIC_TRIE: dict[str | None, Any] = {}
for _name, _ftype in ECS_FIELD_TYPES.items():
    if _ftype in NUMERIC_TYPES:
        _node = _NUMERIC_TRIE
        for _part in _name.split("."):
            _node = _node.setdefault(_part, {})
        _node[None] = True


def _non_numeric_string(obj: Mapping[str, Any], trie: dict[str | None, Any], path: str
                        ) -> tuple[str, str] | None:
    """The first ``(field, value)``, in document order, of a non-numeric string in a numeric field.

    Keys may be dotted (``{"process.pid": "x"}``) or nested, or both.
    """
    for key, value in obj.items():
        node = trie.get(key)
        if node is None:
            if "." not in key:
                continue
            node = trie
            for part in key.split("."):
                node = node.get(part)
                if node is None:
                    break
            if node is None:
                continue
        found = _check_value(value, node, f"{path}{key}")
        if found is not None:
            return found
    return None


def _check_value(value: Any, node: dict[str | None, Any], name: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        if None in node:
            try:
                float(value)
            except ValueError:
                return name, value
        return None
    if isinstance(value, dict):
        return _non_numeric_string(value, node, name + ".")
    if isinstance(value, list):
        for item in value:
            found = _check_value(item, node, name)
            if found is not None:
                return found
    return None


def line_records(raw: bytes, source: str, lineno: int, diag: Diagnostics) -> Iterator[Record]:
    """Records of one NDJSON line (none for a blank line; a bad line is counted in ``diag``)."""
    if not raw.strip():
        return
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            diag.skip("invalid-utf8", source, lineno)
            return
        reason = "binary" if b"\x00" in raw else "malformed-json"
        diag.skip(reason, source, lineno, str(exc).split(":")[0])
        return
    yield from documents_to_records(doc, source, lineno, diag)


def line_records_checked(raw: bytes, source: str, lineno: int, diag: Diagnostics) -> Iterator[Record]:
    """:func:`line_records` without the events Elasticsearch's mapping would reject."""
    for rec in line_records(raw, source, lineno, diag):
        if check_types(rec, diag):
            yield rec


def _ndjson_records(stream: IO[bytes], source: str, diag: Diagnostics) -> Iterator[Record]:
    for lineno, raw in iter_lines(stream):
        if raw is None:
            diag.skip("line-too-long", source, lineno, f"over {MAX_LINE_BYTES} bytes")
            continue
        yield from line_records_checked(raw, source, lineno, diag)


def _json_records(stream: IO[bytes], source: str, diag: Diagnostics) -> Iterator[Record]:
    data = stream.read()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # Not one JSON document: maybe NDJSON that starts with a pretty object.
        diag.skip("malformed-json", source, None, str(exc))
        return
    for rec in documents_to_records(doc, source, 1, diag):
        if check_types(rec, diag):
            yield rec


def read_records(paths: Iterable[str], diag: Diagnostics, *, input_format: str = "auto",
                 glob: str | None = None, stdin: IO[bytes] | None = None,
                 fast: FastPath | None = None) -> Iterator[Record]:
    """Read every input in ``paths`` (files, folders, ``-``) as records, in order.

    With ``fast``, NDJSON inputs it engages for are read through the literal
    prefilter (:mod:`credwatch.sources.prefiltered`): only records that would
    alert or need a diagnostic are yielded, the rest are counted in ``diag``.
    """
    if input_format not in INPUT_FORMATS:
        raise SourceError(f"unknown input format {input_format!r}; use one of {', '.join(INPUT_FORMATS)}")
    for path in expand_paths(paths, glob):
        diag.files += 1
        stream = open_binary(path, stdin)
        try:
            source = path if path != "-" else "<stdin>"
            size = _plain_size(path, stream) if fast is not None else None
            if fast is not None and fast.engages(size) and not diag.strict:
                yield from _read_one(stream, source, diag, input_format, fast,
                                     path if size is not None else None, size)
            else:
                yield from _read_one(stream, source, diag, input_format)
        finally:
            if path != "-":
                stream.close()


def _plain_size(path: str, stream: IO[bytes]) -> int | None:
    """The size of an uncompressed regular file (``None`` for stdin, gzip, pipes)."""
    if path == "-" or isinstance(stream, gzip.GzipFile):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _read_one(stream: IO[bytes], source: str, diag: Diagnostics, input_format: str,
              fast: FastPath | None = None, path: str | None = None,
              size: int | None = None) -> Iterator[Record]:
    """One input as records; ``path`` and ``size`` are given only for an uncompressed regular file."""
    fmt = input_format
    if fmt == "auto":
        try:
            head = stream.peek(65536)[:65536] if hasattr(stream, "peek") else b""
        except (OSError, EOFError) as exc:
            diag.skip("unreadable", source, None, str(exc))
            return
        fmt = sniff(head)
    if fmt == "empty":
        diag.skip("empty-file", source, None)
        return
    if fmt == "auditd":
        from credwatch.sources.audit_records import audit_records

        yield from audit_records(stream, source, diag, fast, path, size)
        return
    if fmt in ("json", "search"):
        yield from _json_records(stream, source, diag)
        return
    if fast is not None:
        from credwatch.sources.prefiltered import prefiltered_records, worker_count

        # Decoding every line gains only from workers; alone, the plain reader is as fast.
        if fast.literals is not None or worker_count(fast, path, size) > 1:
            yield from prefiltered_records(stream, source, diag, fast, path, size)
            return
    yield from _ndjson_records(stream, source, diag)
