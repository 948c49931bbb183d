"""Precision and recall of a rule over a labelled corpus (``credwatch quality``).

A *labels file* holds one JSON object per line, one labelled **case**::

    {"selectors": ["audit:node-1:1796365008.487:1207"], "expected": true, "group": "spelling"}
    {"event.id": "d1f0…", "expected": false}
    {"source.line": 17, "expected": false, "group": "benign"}

* the case's events are named by ``selector`` (one string) or ``selectors`` (a
  list: a case that ran several processes, e.g. ``sh -c`` and the ``cat`` it
  started), or by the shorthands ``event.id`` and ``source.line``;
* selector forms: ``audit:<node>:<stamp>:<serial>`` (the audit event's
  ``msg=audit(<stamp>:<serial>)`` and its ``node=``, empty when the log has
  none), ``id:<event.id>``, ``line:<n>`` or ``line:<path>:<n>`` (the record's
  first line in its input);
* ``expected`` is the verdict the rule should give: a case is *predicted
  positive* when the rule alerts on **any** of its events (a detection of the
  case), negative when it alerts on none;
* ``group`` (default ``all``) groups the table; other keys (``case``,
  ``command``…) are kept for the report.

Every size is bounded: :data:`MAX_LABELS` cases, :data:`MAX_SELECTORS` per
case, :data:`MAX_LINE` bytes per line. A label whose events are not in the
telemetry is reported as *unresolved* and left out of the figures.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credwatch.engine.scan import CompiledRule, Scanner
from credwatch.errors import SourceError
from credwatch.normalize.flatten import get_values
from credwatch.sources.record import Record

#: Cases read from one labels file.
MAX_LABELS = 1_000_000
#: Selectors per case.
MAX_SELECTORS = 64
#: Bytes per labels line.
MAX_LINE = 64 << 10
#: Characters of a selector, group or case name.
MAX_NAME = 512

_AUDIT_STAMP = re.compile(r"msg=audit\((\d+(?:\.\d+)?):(\d+)\)")


@dataclass(frozen=True, slots=True)
class Label:
    """One labelled case."""

    selectors: tuple[str, ...]
    expected: bool
    group: str = "all"
    case: str = ""
    command: str = ""
    line: int = 0  #: its line in the labels file

    @property
    def name(self) -> str:
        """How the report names the case."""
        return self.case or self.command or (self.selectors[0] if self.selectors else f"line {self.line}")


def _text(value: Any, what: str, path: str, line: int) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise SourceError(f"{what} must be a string", path, line)
    text = str(value)
    if not text or len(text) > MAX_NAME:
        raise SourceError(f"{what} must be 1 to {MAX_NAME} characters", path, line)
    return text


def _selectors(obj: Mapping[str, Any], path: str, line: int) -> tuple[str, ...]:
    raw: list[str] = []
    if "selector" in obj:
        raw.append(_text(obj["selector"], "selector", path, line))
    if "selectors" in obj:
        items = obj["selectors"]
        if not isinstance(items, list) or len(items) > MAX_SELECTORS:
            raise SourceError(f"selectors must be a list of at most {MAX_SELECTORS}", path, line)
        raw.extend(_text(s, "selector", path, line) for s in items)
    if "event.id" in obj:
        raw.append("id:" + _text(obj["event.id"], "event.id", path, line))
    if "source.line" in obj:
        raw.append("line:" + _text(obj["source.line"], "source.line", path, line))
    if not raw:
        raise SourceError("no event selector (selector, selectors, event.id or source.line)",
                          path, line)
    for sel in raw:
        if not sel.startswith(("audit:", "id:", "line:")):
            raise SourceError(f"unknown selector {sel[:80]!r} (audit:, id: or line:)", path, line)
    return tuple(dict.fromkeys(raw))


def parse_label(text: str, path: str = "<labels>", line: int = 0) -> Label:
    """One labels line as a :class:`Label` (:class:`SourceError` when malformed)."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise SourceError("not a JSON object", path, line) from None
    if not isinstance(obj, dict):
        raise SourceError("not a JSON object", path, line)
    expected = obj.get("expected")
    if not isinstance(expected, bool):
        raise SourceError("expected must be true or false", path, line)
    group = _text(obj.get("group", "all"), "group", path, line)
    case = obj.get("case")
    command = obj.get("command")
    return Label(_selectors(obj, path, line), expected, group,
                 case[:MAX_NAME] if isinstance(case, str) else "",
                 command[:MAX_NAME] if isinstance(command, str) else "", line)


def load_labels(path: str | Path) -> list[Label]:
    """Read a labels file (JSON lines; blank lines and ``#`` comments are skipped)."""
    name = str(path)
    labels: list[Label] = []
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise SourceError("labels must be a regular file", name)  # a FIFO would block
        with open(path, "rb") as fh:
            n = 0
            while raw := fh.readline(MAX_LINE + 1):  # bounded: a line without end is not read whole
                n += 1
                if len(raw) > MAX_LINE:
                    raise SourceError(f"line longer than {MAX_LINE} bytes", name, n)
                text = raw.decode("utf-8", errors="replace").strip()
                if not text or text.startswith("#"):
                    continue
                if len(labels) >= MAX_LABELS:
                    raise SourceError(f"more than {MAX_LABELS} labels", name, n)
                labels.append(parse_label(text, name, n))
    except OSError as exc:
        raise SourceError(f"cannot read labels: {exc.strerror or exc}", name) from None
    if not labels:
        raise SourceError("no labels", name)
    return labels


def record_selectors(rec: Record) -> list[str]:
    """Every selector that names ``rec``."""
    out: list[str] = []
    if rec.line is not None:
        out.append(f"line:{rec.line}")
        if rec.source:
            out.append(f"line:{rec.source}:{rec.line}")
    for value in get_values(rec.event, "event.id")[:4]:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            out.append(f"id:{value}")
    originals = get_values(rec.event, "event.original")
    if originals and isinstance(originals[0], str):
        m = _AUDIT_STAMP.search(originals[0][:4096])
        if m:
            hosts = get_values(rec.event, "host.name")
            node = hosts[0] if hosts and isinstance(hosts[0], str) else ""
            out.append(f"audit:{node}:{m.group(1)}:{m.group(2)}")
    return out


@dataclass(slots=True)
class Counts:
    """A confusion matrix."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, expected: bool, predicted: bool) -> None:
        """Count one case."""
        if expected and predicted:
            self.tp += 1
        elif expected:
            self.fn += 1
        elif predicted:
            self.fp += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float | None:
        """TP / (TP + FP); None when the rule flagged nothing."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        """TP / (TP + FN); None when there is no positive case."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
                "precision": self.precision, "recall": self.recall}


@dataclass(slots=True)
class QualityReport:
    """The figures of one rule over one labelled corpus."""

    rule_id: str
    rule_name: str
    overall: Counts = field(default_factory=Counts)
    groups: dict[str, Counts] = field(default_factory=dict)
    missed: list[Label] = field(default_factory=list)  #: expected positive, not flagged
    false_alarms: list[Label] = field(default_factory=list)  #: expected negative, flagged
    unresolved: list[Label] = field(default_factory=list)  #: no event of the case was read
    detected: list[Label] = field(default_factory=list)  #: every case the rule flagged

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (``--format json``)."""
        def names(labels: Sequence[Label]) -> list[dict[str, Any]]:
            return [{"case": lb.name, "group": lb.group, "command": lb.command or None,
                     "selectors": list(lb.selectors), "labels_line": lb.line} for lb in labels]
        return {"rule_id": self.rule_id, "name": self.rule_name,
                "overall": self.overall.as_dict(),
                "groups": {g: c.as_dict() for g, c in sorted(self.groups.items())},
                "missed": names(self.missed), "false_positives": names(self.false_alarms),
                "unresolved": names(self.unresolved)}


def scan_corpus(crules: Sequence[CompiledRule], records: Iterable[Record], wanted: set[str],
                all_indices: bool = False) -> tuple[set[str], list[set[str]]]:
    """One pass over ``records``: the selectors (among ``wanted``) read, and per rule those it flags.

    Each rule is evaluated exactly as ``scan`` evaluates it (index selection,
    derived fields); records no label names are not evaluated at all.
    """
    scanners = [Scanner([c], all_indices=all_indices, triage=False) for c in crules]
    seen: set[str] = set()
    flagged: list[set[str]] = [set() for _ in crules]
    for rec in records:
        sels = [s for s in record_selectors(rec) if s in wanted]
        if not sels:
            continue
        seen.update(sels)
        for scanner, out in zip(scanners, flagged, strict=True):
            if scanner.would_alert(rec):
                out.update(sels)
    return seen, flagged


def measure(crule: CompiledRule, labels: Sequence[Label], seen: set[str],
            flagged: set[str]) -> QualityReport:
    """Score ``labels`` given which selectors were read and which the rule flagged."""
    report = QualityReport(crule.rule.rule_id, crule.rule.name)
    for label in labels:
        if not any(s in seen for s in label.selectors):
            report.unresolved.append(label)
            continue
        predicted = any(s in flagged for s in label.selectors)
        report.overall.add(label.expected, predicted)
        report.groups.setdefault(label.group, Counts()).add(label.expected, predicted)
        if predicted:
            report.detected.append(label)
        if label.expected and not predicted:
            report.missed.append(label)
        elif predicted and not label.expected:
            report.false_alarms.append(label)
    return report


def all_selectors(labels: Iterable[Label]) -> set[str]:
    """Every selector the labels use."""
    return {s for label in labels for s in label.selectors}
