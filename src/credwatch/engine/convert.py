"""``credwatch convert``: ECS events from any input credwatch reads → Parquet or NDJSON.

Inputs are read exactly as ``scan`` reads them (:func:`credwatch.sources.read.read_records`,
raw ``audit.log`` included), so a converted file holds the events ``scan`` would have seen.

The Parquet schema (see docs/engines.md) is built from the events themselves, in two
passes over a private spool file (memory stays bounded whatever the input size):

* every dotted field name becomes a column, nested as structs (``process.args`` →
  ``process: struct<args: ...>``); nested, flat-dotted and mixed inputs give the same
  columns;
* a leaf's type is ``string`` / ``bool`` / ``int64`` / ``float64`` when every value of
  the field has that type (ints and floats together → ``float64``); any other mix is a
  ``string`` holding each value's text (a string as is, others as JSON), which is what a
  keyword field searches;
* a field that is an array anywhere is ``list<type>`` everywhere; ``process.args`` is
  always ``list<string>``; objects inside arrays are flattened (``a: [{b: 1}]`` →
  ``a.b: list``), as Elasticsearch's ``object`` mapping does;
* ``_cw_event`` holds the event's exact JSON, and ``_cw_source``, ``_cw_line``,
  ``_cw_index``, ``_cw_id``, ``_cw_version`` where it came from, so an alert built from
  a converted row is the document (and ``kibana.alert.uuid``) built from the original.

A field that is both a value and an object (``a: 1`` in one event, ``a.b: 2`` in
another) keeps the side seen more often as columns (reported as ``not-a-column``
warnings); the other side stays in ``_cw_event``. Field names deeper than
:data:`MAX_FIELD_DEPTH` or with empty parts are not columns either.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from credwatch.engine.eventtime import time_ms
from credwatch.errors import ConfigError, SourceError
from credwatch.normalize.flatten import get_values
from credwatch.privatefile import make_private_dirs, open_private
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.read import read_records
from credwatch.sources.record import Record

Format = Literal["parquet", "ndjson"]
FORMATS: tuple[Format, ...] = ("parquet", "ndjson")
PARTITIONS = ("none", "day")
INSTALL_HINT = "pip install 'credwatch[lake]'"
#: Columns credwatch adds to every row (never taken as event fields).
META_PREFIX = "_cw_"
#: Bounds on what the input decides: columns in the schema, day partitions open at once.
MAX_COLUMNS = 20_000
#: Deeper field names are not columns (DuckDB reads at most 128 levels); they stay in ``_cw_event``.
MAX_FIELD_DEPTH = 32
MAX_PARTITIONS = 4_096
BATCH_ROWS = 20_000
ALWAYS_LIST = frozenset({"process.args"})
#: The time fields whose values make up a row's time envelope (``_cw_t0`` .. ``_cw_t1``, epoch ms):
#: ``@timestamp`` and Kibana's usual ``timestamp_override``.
ENVELOPE_FIELDS = ("@timestamp", "event.ingested")
#: Per-partition summary (dot-file: the readers and Spark skip it): rows and time envelope.
SPAN_FILE = ".credwatch-span.json"
_MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def require_pyarrow() -> Any:
    """Import pyarrow, or raise a :class:`ConfigError` naming the install command."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ConfigError(f"Parquet needs pyarrow, which is not installed: {INSTALL_HINT}") from None
    return pyarrow


_KINDS = {bool: "bool", int: "int", float: "float", str: "str"}


def leaves(obj: Any, prefix: str = "", in_list: bool = False) -> Iterator[tuple[str, Any, bool]]:
    """``(dotted name, scalar, inside an array)`` for every non-null leaf of an event."""
    stack: list[tuple[str, Any, bool]] = [(prefix, obj, in_list)]
    while stack:  # iterative: depth comes from the input
        name, value, listed = stack.pop()
        if isinstance(value, dict):
            for key, sub in reversed(list(value.items())):
                if not name and key.startswith(META_PREFIX):
                    continue
                stack.append((f"{name}.{key}" if name else key, sub, listed))
        elif isinstance(value, list):
            stack.extend((name, item, True) for item in reversed(value))
        elif value is not None and name:
            yield name, value, listed


@dataclass(slots=True)
class FieldStats:
    """What the first pass learnt about one dotted field."""

    kinds: set[str] = field(default_factory=set)
    listed: bool = False
    #: Values seen (decides a value-versus-object conflict).
    count: int = 0


def _leaf_type(pa: Any, stats: FieldStats) -> Any:
    kinds = stats.kinds
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds and kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()


def shape_conflicts(stats: dict[str, FieldStats]) -> set[str]:
    """Fields left out of the columns because a name is a value in some events and an object in others.

    The side seen more often wins, so one odd event cannot remove a field every other
    event has (``process.args: {"x": 1}`` once does not hide ``process.args``); the
    losers stay in ``_cw_event``.
    """
    under: dict[str, int] = {}
    for name, st in stats.items():
        for i, c in enumerate(name):
            if c == ".":
                under[name[:i]] = max(under.get(name[:i], 0), st.count)
    dropped: set[str] = set()
    value_wins: set[str] = set()
    for prefix, inner in under.items():
        leaf = stats.get(prefix)
        if leaf is not None:
            (value_wins if leaf.count >= inner else dropped).add(prefix)
    # One pass over the names' own prefixes (linear in their length, not columns squared).
    for name in stats:
        if any(c == "." and name[:i] in value_wins for i, c in enumerate(name)):
            dropped.add(name)
    return dropped


def build_schema(stats: dict[str, FieldStats]) -> Any:
    """The Arrow schema for the fields seen (see the module docstring), meta columns first."""
    pa = require_pyarrow()
    dropped = shape_conflicts(stats)
    tree: dict[str, Any] = {}
    for name in sorted(stats):
        if name in dropped:
            continue
        st = stats[name]
        typ = pa.string() if name in ALWAYS_LIST else _leaf_type(pa, st)
        if st.listed or name in ALWAYS_LIST:
            typ = pa.list_(typ)
        node = tree
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = typ

    def to_fields(node: dict[str, Any]) -> list[Any]:
        return [pa.field(k, pa.struct(to_fields(v)) if isinstance(v, dict) else v)
                for k, v in sorted(node.items())]

    meta = [pa.field("_cw_event", pa.string()), pa.field("_cw_source", pa.string()),
            pa.field("_cw_line", pa.int64()), pa.field("_cw_index", pa.string()),
            pa.field("_cw_id", pa.string()), pa.field("_cw_version", pa.string()),
            pa.field("_cw_t0", pa.int64()), pa.field("_cw_t1", pa.int64())]
    return pa.schema(meta + to_fields(tree))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Column:
    """Where a dotted field goes in a row: its struct path, list or not, and how values are cast."""

    parts: tuple[str, ...]
    listed: bool
    cast: Any


def column_plan(schema: Any) -> dict[str, Column]:
    """Dotted field name → :class:`Column` for every leaf of ``schema`` (meta columns excluded).

    Built once per conversion: walking the Arrow schema per value costs ~1 ms an event.
    """
    pa = require_pyarrow()
    plan: dict[str, Column] = {}
    stack: list[tuple[tuple[str, ...], Any]] = [((f.name,), f.type) for f in schema
                                                if not f.name.startswith(META_PREFIX)]
    while stack:
        parts, typ = stack.pop()
        if pa.types.is_struct(typ):
            stack.extend(((*parts, typ.field(i).name), typ.field(i).type) for i in range(typ.num_fields))
            continue
        listed = pa.types.is_list(typ)
        elem = typ.value_type if listed else typ
        cast = _text if pa.types.is_string(elem) else float if pa.types.is_floating(elem) else _identity
        plan[".".join(parts)] = Column(parts, listed, cast)
    return plan


def event_row(rec: Record, plan: dict[str, Column],
              values: Iterable[tuple[str, Any]] | None = None) -> dict[str, Any]:
    """One Parquet row: the typed columns of ``rec.event`` and its meta columns.

    ``values`` are the event's ``(dotted name, scalar)`` leaves when already known.
    """
    row: dict[str, Any] = {
        "_cw_event": orjson.dumps(rec.event).decode(), "_cw_source": rec.source, "_cw_line": rec.line,
        "_cw_index": rec.index, "_cw_id": rec.id,
        "_cw_version": None if rec.version is None else orjson.dumps(rec.version).decode(),
    }
    row["_cw_t0"], row["_cw_t1"] = envelope(rec.event) or (None, None)
    if values is None:
        values = ((name, value) for name, value, _listed in leaves(rec.event))
    for name, value in values:
        col = plan.get(name)
        if col is None:
            continue  # a value where the schema has an object (see the module docstring)
        node = row
        for part in col.parts[:-1]:
            node = node.setdefault(part, {})
        if col.listed:
            node.setdefault(col.parts[-1], []).append(col.cast(value))
        else:
            node[col.parts[-1]] = col.cast(value)
    return row


def record_from_row(row: dict[str, Any], source: str, line: int) -> Record:
    """A :class:`Record` from a Parquet row: the exact original when credwatch wrote it.

    Parquet written by others (no ``_cw_event``) becomes its columns as nested
    objects, nulls dropped, with ``source``/``line`` naming the file and row.
    """
    text = row.get("_cw_event")
    if isinstance(text, str):
        event = orjson.loads(text)
        version = row.get("_cw_version")
        return Record(event, row.get("_cw_source") or source, row.get("_cw_line") or line,
                      row.get("_cw_index"), row.get("_cw_id"),
                      orjson.loads(version) if isinstance(version, str) else None)
    return Record(_drop_nulls({k: v for k, v in row.items() if not k.startswith(META_PREFIX)}),
                  source, line)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def envelope(event: dict[str, Any]) -> tuple[int, int] | None:
    """Earliest and latest time (epoch ms, UTC) of the event's :data:`ENVELOPE_FIELDS`, if any.

    Any window that holds the event under ``@timestamp`` or ``event.ingested`` (with or
    without the fallback) overlaps this envelope, so engines prune row groups on it
    (integers: their Parquet statistics compare as times, whatever the text's zone or width).
    """
    times = [ms for f in ENVELOPE_FIELDS for v in get_values(event, f) if (ms := time_ms(v)) is not None]
    return (min(times), max(times)) if times else None


def day_name(ms: int) -> str:
    """``YYYY-MM-DD`` of an epoch-ms instant, in UTC."""
    return (_EPOCH + timedelta(days=ms // _MS_PER_DAY)).strftime("%Y-%m-%d")


def day_of(event: dict[str, Any]) -> str:
    """The ``day=`` partition of an event: the UTC date of its earliest ``@timestamp``, else ``unknown``.

    UTC, so that a window (always UTC) maps onto partitions whatever zone the text was in.
    """
    times = [ms for v in get_values(event, "@timestamp") if (ms := time_ms(v)) is not None]
    return day_name(min(times)) if times else "unknown"


@dataclass
class ConvertResult:
    """What a conversion wrote."""

    events: int = 0
    files: list[str] = field(default_factory=list)
    columns: int = 0


def _column_name(name: str) -> bool:
    """A dotted name that can be a struct path: no empty part, not too deep."""
    parts = name.split(".")
    return len(parts) <= MAX_FIELD_DEPTH and all(parts)


def _spool(records: Iterable[Record], spool: IO[bytes], stats: dict[str, FieldStats],
           diag: Diagnostics) -> int:
    n = 0
    for rec in records:
        try:
            # orjson refuses more than 254 levels (the readers accept up to 1024).
            line = orjson.dumps([rec.event, rec.source, rec.line, rec.index, rec.id, rec.version])
        except TypeError:
            diag.skip("too-deep", rec.source, rec.line, "nested too deeply to be written")
            diag.events += 1  # read, not written
            continue
        flat: list[Any] = []
        names: set[str] = set()
        for name, value, listed in leaves(rec.event):
            if not _column_name(name):
                continue
            flat.append((name, value))
            # `{"process": {"name": "cat"}, "process.name": "dog"}` is one multi-valued field.
            listed = listed or name in names
            names.add(name)
            st = stats.get(name)
            if st is None:
                if len(stats) >= MAX_COLUMNS:
                    raise SourceError(f"more than {MAX_COLUMNS} distinct fields; "
                                      "not a table credwatch will write", rec.source, rec.line)
                st = stats[name] = FieldStats()
            st.kinds.add(_KINDS.get(type(value), "other"))
            st.listed = st.listed or listed
            st.count += 1
        # The leaves go in the spool too: the second pass then does not walk the event again.
        spool.write(line[:-1] + b"," + orjson.dumps(flat) + b"]\n")
        n += 1
    return n


def _unspool(spool: IO[bytes]) -> Iterator[tuple[Record, list[tuple[str, Any]]]]:
    spool.seek(0)
    for raw in spool:
        ev, src, line, index, doc_id, version, flat = orjson.loads(raw)
        yield Record(ev, src, line, index, doc_id, version), flat


def _target(out: Path, fmt: Format, day: str | None) -> Path:
    if day is None:
        if not out.parent.exists():
            make_private_dirs(out.parent)
        return out
    folder = out / f"day={day}"
    make_private_dirs(folder)
    return folder / f"part-00000.{fmt}"


class _Writers:
    """Output files by partition, each created 0600 and never through a link."""

    def __init__(self, out: Path, fmt: Format, schema: Any, partition: bool) -> None:
        self.out, self.fmt, self.schema, self.partition = out, fmt, schema, partition
        self.open: dict[str | None, Any] = {}
        self.files: list[str] = []
        #: Per partition: rows, and the envelope of their times (None: no timed row).
        self.spans: dict[str | None, list[Any]] = {}

    def note(self, day: str | None, row: dict[str, Any]) -> None:
        """Count ``row`` in its partition's summary."""
        span = self.spans.setdefault(day, [0, None, None])
        span[0] += 1
        t0, t1 = row.get("_cw_t0"), row.get("_cw_t1")
        if t0 is not None and t1 is not None:
            span[1] = t0 if span[1] is None else min(span[1], t0)
            span[2] = t1 if span[2] is None else max(span[2], t1)

    def get(self, day: str | None) -> Any:
        if day in self.open:
            return self.open[day]
        if len(self.open) >= MAX_PARTITIONS:
            raise ConfigError(f"more than {MAX_PARTITIONS} day partitions in one conversion")
        path = _target(self.out, self.fmt, day)
        stream = os.fdopen(open_private(path), "wb")
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            writer: Any = (pq.ParquetWriter(stream, self.schema, compression="zstd"), stream)
        else:
            writer = (None, stream)
        self.open[day] = writer
        self.files.append(str(path))
        return writer

    def close(self) -> None:
        for pq_writer, stream in self.open.values():
            if pq_writer is not None:
                pq_writer.close()
            stream.close()
        if self.partition:
            for day, (rows, t0, t1) in self.spans.items():
                self._summary(day, rows, t0, t1)

    def _summary(self, day: str | None, rows: int, t0: int | None, t1: int | None) -> None:
        """Write the partition's :data:`SPAN_FILE`: ``run --engine duckdb|spark`` prunes on it."""
        doc = {"rows": rows, "t0": t0, "t1": t1, "fields": list(ENVELOPE_FIELDS),
               "files": [Path(f).name for f in self.files if Path(f).parent.name == f"day={day}"]}
        with os.fdopen(open_private(self.out / f"day={day}" / SPAN_FILE), "wb") as fh:
            fh.write(orjson.dumps(doc) + b"\n")


def _ndjson_line(rec: Record) -> bytes:
    if rec.index is None and rec.id is None:
        return orjson.dumps(rec.event) + b"\n"
    hit: dict[str, Any] = {"_index": rec.index, "_id": rec.id, "_source": rec.event}
    if rec.version is not None:
        hit["_version"] = rec.version
    return orjson.dumps({k: v for k, v in hit.items() if v is not None}) + b"\n"


def convert(paths: Iterable[str], out: str | os.PathLike[str], fmt: Format, diag: Diagnostics, *,
            partition_by: str = "none", input_format: str = "auto", glob: str | None = None,
            stdin: IO[bytes] | None = None) -> ConvertResult:
    """Convert every input to ``out`` (a file, or a folder of ``day=YYYY-MM-DD`` partitions).

    Unreadable inputs are reported in ``diag.failed`` as ``scan`` reports them.
    """
    pa = require_pyarrow() if fmt == "parquet" else None
    if partition_by not in PARTITIONS:
        raise ConfigError(f"unknown partitioning {partition_by!r}; use one of {', '.join(PARTITIONS)}")
    result = ConvertResult()
    stats: dict[str, FieldStats] = {}
    with tempfile.TemporaryFile(prefix="credwatch-convert-") as spool:
        records = read_records(paths, diag, input_format=input_format, glob=glob, stdin=stdin)
        result.events = _spool(records, spool, stats, diag)
        diag.events += result.events
        schema = build_schema(stats) if pa is not None else None
        result.columns = len(stats)
        if pa is not None:
            for name in sorted(shape_conflicts(stats))[:20]:
                diag.warn("not-a-column", str(out), None, f"{name}: a value in some events and an "
                          "object in others; kept in _cw_event only")
        writers = _Writers(Path(out), fmt, schema, partition_by == "day")
        try:
            _write_all(_unspool(spool), writers, pa)
            if not writers.open and partition_by == "none":
                writers.get(None)  # an empty input still gives a (valid, empty) file
        finally:
            writers.close()
        result.files = writers.files
    return result


def _write_all(records: Iterator[tuple[Record, list[tuple[str, Any]]]], writers: _Writers,
               pa: Any) -> None:
    batches: dict[str | None, list[Any]] = {}
    plan = column_plan(writers.schema) if pa is not None else {}
    for rec, flat in records:
        day = day_of(rec.event) if writers.partition else None
        pq_writer, stream = writers.get(day)
        if pa is None:
            stream.write(_ndjson_line(rec))
            t0, t1 = envelope(rec.event) or (None, None)
            writers.note(day, {"_cw_t0": t0, "_cw_t1": t1})
            continue
        batch = batches.setdefault(day, [])
        batch.append(row := event_row(rec, plan, flat))
        writers.note(day, row)
        if len(batch) >= BATCH_ROWS:
            pq_writer.write_table(pa.Table.from_pylist(batch, schema=writers.schema))
            batch.clear()
    for day, batch in batches.items():
        if batch:
            writers.get(day)[0].write_table(pa.Table.from_pylist(batch, schema=writers.schema))
