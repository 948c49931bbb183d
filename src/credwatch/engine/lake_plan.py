"""What ``run --engine duckdb|spark`` plans before an engine reads: files, partitions, filters.

Shared by the DuckDB side (:mod:`credwatch.engine.lake_run`) and the Spark side
(:mod:`credwatch.engine.spark_lake`); see :mod:`credwatch.engine.lake_run` for
how partitions and row groups are pruned.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from credwatch.alerts.build import iso_ms
from credwatch.backends.spark import require_pyspark
from credwatch.engine.convert import SPAN_FILE, day_name
from credwatch.engine.eventtime import TimeFields
from credwatch.engine.readpos import Span
from credwatch.engine.readreport import ReadReport
from credwatch.engine.scan import CompiledRule
from credwatch.errors import ConfigError, UnsupportedError
from credwatch.kql.ast import And, Literal, Node, Or, Range
from credwatch.kql.passes import fields as kql_fields
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.record import Record

__all__ = [
    "JAVA_HINT",
    "Engine",
    "LakeFile",
    "PartitionSummary",
    "ReadReport",
    "check_rules",
    "day_of_path",
    "java_problem",
    "keeps",
    "require_engine",
    "rules_query",
    "time_names",
    "time_query",
]

#: How to get the JVM Spark needs (named in the error when it is missing).
JAVA_HINT = ("install Java 17+ (e.g. `apt-get install openjdk-17-jre-headless`) and put it on PATH "
             "or set JAVA_HOME")
DUCKDB_HINT = "pip install duckdb"


def java_problem(environ: dict[str, str] | os._Environ[str] | None = None) -> str | None:
    """Why Spark could not start a JVM here (None: a ``java`` is there to start).

    Checked before pyspark launches one: its launcher fails with a page of shell
    noise and a Python traceback-shaped error instead of one line.
    """
    env = os.environ if environ is None else environ
    if "PYSPARK_GATEWAY_PORT" in env:
        return None  # launched by spark-submit: the JVM is already running
    home = env.get("JAVA_HOME")
    if home:
        java = os.path.join(home, "bin", "java")
        return None if os.access(java, os.X_OK) else f"JAVA_HOME={home} holds no bin/java"
    if shutil.which("java", path=env.get("PATH", "")) is None:
        return "no java on PATH and JAVA_HOME is not set"
    return None


def require_engine(engine: str) -> None:
    """Raise a one-line :class:`ConfigError` naming the install command when ``engine`` cannot run."""
    if engine == "duckdb":
        try:
            import duckdb  # noqa: F401  (a core dependency; a broken install says how to fix it)
        except ImportError:
            raise ConfigError(f"--engine duckdb needs duckdb, which is not installed: {DUCKDB_HINT}") from None
    elif engine == "spark":
        require_pyspark()
        problem = java_problem()
        if problem:
            raise ConfigError(f"--engine spark needs Java: {problem}; {JAVA_HINT}")


_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2}|unknown)$")
_DERIVED = "credwatch.normalized."
MARGIN_MS = 86_400_000
META_COLS = ("_cw_event", "_cw_source", "_cw_line", "_cw_index", "_cw_id", "_cw_version")


@dataclass(frozen=True, slots=True)
class PartitionSummary:
    """What ``convert`` recorded about a day partition: the envelope of its rows' times."""

    t0: int | None
    t1: int | None
    fields: frozenset[str]

    @classmethod
    def load(cls, folder: str) -> PartitionSummary | None:
        """The summary in ``folder``, or None (absent or unreadable: no exact pruning)."""
        try:
            with open(os.path.join(folder, SPAN_FILE), "rb") as fh:
                doc = orjson.loads(fh.read(65536))
            t0, t1, names = doc.get("t0"), doc.get("t1"), doc.get("fields")
            if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
                return None
            if (t0 is None) != (t1 is None) or not all(t is None or type(t) is int for t in (t0, t1)):
                return None
            return cls(t0, t1, frozenset(names))
        except (OSError, orjson.JSONDecodeError, AttributeError):
            return None


@dataclass(frozen=True, slots=True)
class LakeFile:
    """One input file, the day partition it is in (if any) and that partition's summary."""

    path: str
    day: str | None
    summary: PartitionSummary | None


def time_names(fields: TimeFields) -> frozenset[str]:
    return frozenset(f for f in (fields.primary, fields.secondary) if f)


def keeps(f: LakeFile, fields: TimeFields, span: Span) -> bool:
    """Whether the execution must read ``f`` (see the module docstring)."""
    names = time_names(fields)
    if f.day == "unknown" and names == {"@timestamp"}:
        return False  # no @timestamp: no window holds the event
    if f.summary is not None and names <= f.summary.fields:
        s = f.summary
        return s.t0 is not None and s.t1 is not None and s.t1 >= span.lo and s.t0 <= span.hi
    if f.day is None or names != {"@timestamp"}:
        return True
    if f.day == "unknown":
        return False  # no @timestamp: no window holds the event
    return day_name(span.lo - MARGIN_MS) <= f.day <= day_name(span.hi + MARGIN_MS)


def time_query(fields: TimeFields, span: Span) -> Node:
    """KQL for "a time field in ``span``": a superset of the events the span holds.

    A multi-valued field passes when some value is ≥ lo and some ≤ hi; the exact
    test (:meth:`Span.holds_any` on the event's times) is the execution's.
    """
    lo = Literal(iso_ms(datetime.fromtimestamp(span.lo / 1000, UTC)), quoted=True)
    hi = Literal(iso_ms(datetime.fromtimestamp(span.hi / 1000, UTC)), quoted=True)
    ranges: list[Node] = [And((Range(Literal(name), "gte", lo), Range(Literal(name), "lte", hi)))
                          for name in (fields.primary, fields.secondary) if name]
    return ranges[0] if len(ranges) == 1 else Or(tuple(ranges))


def day_of_path(path: str) -> str | None:
    for part in reversed(os.path.normpath(os.path.dirname(path)).split(os.sep)[-3:]):
        m = _DAY_DIR.match(part)
        if m:
            return m.group(1)
    return None


def check_rules(rules: Sequence[CompiledRule], engine: str) -> None:
    """Refuse rules the engine cannot evaluate (derived fields exist only in Python)."""
    for crule in rules:
        used = [f for f in kql_fields(crule.matcher.ast) if f.startswith(_DERIVED)]
        if used:
            raise UnsupportedError(f"rule {crule.rule.name!r} uses {used[0]}, which only the Python "
                                   f"engine derives; use --engine python (not {engine})")


class Engine:
    """What an engine does for one execution: the rows of one batch of files in a span."""

    name = "engine"
    #: Whether the engine says how many row groups and rows it scanned (Spark does not).
    reports_scans = True

    def rows(self, files: Sequence[LakeFile], fields: TimeFields, span: Span,
             report: ReadReport, diag: Diagnostics) -> Iterator[tuple[Record, bool]]:
        """Records of the span's rows (in file order, then row order) and whether the rules match.

        An input that cannot be read goes to ``diag.failed`` (``path: reason``); the others are read.
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release the engine."""


def rules_query(rules: Sequence[CompiledRule]) -> Node:
    """The OR of every rule's query (one filter for the engine; each rule re-checks its own)."""
    asts = [c.matcher.ast for c in rules]
    return asts[0] if len(asts) == 1 else Or(tuple(asts))
