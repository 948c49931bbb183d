"""Linting rule files: the KQL linter on the query plus checks of the rule's metadata.

Severities follow :mod:`credwatch.kql.lint`: ``error`` means the rule would
not load or would match something other than what its author meant (exit
status non-zero); ``warning`` is probably wrong; ``hint`` is worth a look.

Codes: ``RULE0xx`` are metadata checks, ``KQLxxx`` come from the KQL linter,
``LOAD`` is a file that cannot be read as a rule at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from credwatch.errors import RuleLoadError
from credwatch.kql.lint import ERROR, HINT, WARNING
from credwatch.kql.lint import lint as lint_kql
from credwatch.rules.loader import RULE_EXTENSIONS, check_supported, read_rules
from credwatch.rules.model import Rule
from credwatch.rules.schedule_math import DateMathError, parse_date_math, parse_duration

_TACTIC_RE = re.compile(r"^TA\d{4}$")
_TECHNIQUE_RE = re.compile(r"^T\d{4}$")
_SUBTECHNIQUE_RE = re.compile(r"^T\d{4}\.\d{3}$")
#: Kibana's default risk score for each severity (what the rule-creation UI suggests).
_DEFAULT_RISK = {"low": 21, "medium": 47, "high": 73, "critical": 99}

_Add = Callable[[str, str, str], None]


@dataclass(frozen=True, slots=True)
class RuleFinding:
    """One finding about a rule file, with a 1-based position in the file when known."""

    path: str
    severity: str
    code: str
    message: str
    line: int | None = None
    column: int | None = None
    excerpt: str | None = None
    rule_name: str | None = None

    def render(self) -> str:
        """``path:line:col: severity[code] message`` plus any excerpt."""
        loc = self.path
        if self.line is not None:
            loc += f":{self.line}"
            if self.column is not None:
                loc += f":{self.column}"
        text = f"{loc}: {self.severity}[{self.code}] {self.message}"
        return f"{text}\n{self.excerpt}" if self.excerpt else text


def _query_origin(rule: Rule) -> tuple[str, int]:
    """The file a rule came from, and the file line where its query starts (best effort)."""
    src = rule.source or "<rule>"
    path = re.sub(r"(:\d+|\[\d+\])$", "", src)
    lines = rule.query.splitlines()
    idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if path.endswith(".toml") and idx is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return path, 0
        pos = text.find(lines[idx])
        if pos >= 0:
            return path, text.count("\n", 0, pos) + 1 - idx
    return path, 0


def lint_rule(rule: Rule) -> list[RuleFinding]:
    """All findings for one loaded rule (query and metadata)."""
    out: list[RuleFinding] = []
    path, qline = _query_origin(rule)
    where = rule.source or path

    def add(severity: str, code: str, message: str) -> None:
        out.append(RuleFinding(where, severity, code, message, rule_name=rule.name))

    try:
        check_supported(rule)
    except RuleLoadError as exc:
        add(ERROR, "RULE001", exc.message)
        return out
    for f in lint_kql(rule.query):
        in_toml = path.endswith(".toml") and qline > 0
        out.append(RuleFinding(
            path if in_toml else where, f.severity, f.code,
            f.message + ("" if in_toml else f" (query line {f.line}, column {f.column})"),
            line=qline + f.line - 1 if in_toml else None,
            column=f.column if in_toml else None, excerpt=f.excerpt, rule_name=rule.name))
    _check_schedule(rule, add)
    _check_threat(rule, add)
    if not (rule.note and rule.note.strip()):
        add(WARNING, "RULE020", "no investigation guide: `note` is missing or empty")
    if not (rule.setup and rule.setup.strip()):
        add(HINT, "RULE021", "no setup guide: `setup` is missing or empty")
    if not rule.index:
        add(WARNING, "RULE022", "no `index` patterns: Kibana would search its default indices")
    if not rule.threat:
        add(HINT, "RULE023", "no ATT&CK mapping (`threat`)")
    if _DEFAULT_RISK.get(rule.severity) not in (None, rule.risk_score):
        add(HINT, "RULE024", f"risk_score {rule.risk_score} differs from Kibana's default "
            f"{_DEFAULT_RISK[rule.severity]} for severity {rule.severity}")
    if not rule.tests.tests:
        add(HINT, "RULE025", "no embedded test events ([[credwatch.tests]])")
    elif not any(t.expect for t in rule.tests.tests) or all(t.expect for t in rule.tests.tests):
        add(HINT, "RULE026", "tests should include both true positives and true negatives")
    return out


def _check_schedule(rule: Rule, add: _Add) -> None:
    try:
        interval = parse_duration(rule.interval)
    except DateMathError as exc:
        add(ERROR, "RULE010", f"bad interval: {exc}")
        interval = None
    try:
        start, end = parse_date_math(rule.from_), parse_date_math(rule.to)
        window = end.offset() - start.offset()
    except DateMathError as exc:
        add(ERROR, "RULE011", f"bad from/to: {exc}")
        return
    if window.total_seconds() <= 0:
        add(ERROR, "RULE012", f"'from' ({rule.from_}) must be earlier than 'to' ({rule.to})")
    elif interval is not None and window < interval:
        add(WARNING, "RULE013", f"the window {rule.from_}..{rule.to} is shorter than the interval "
            f"{rule.interval}: every run leaves a gap and events are missed")


def _check_threat(rule: Rule, add: _Add) -> None:
    for t in rule.threat:
        if not _TACTIC_RE.match(t.tactic.id):
            add(WARNING, "RULE030", f"ATT&CK tactic id {t.tactic.id!r} is not of the form TA0000")
        elif not t.tactic.reference.rstrip("/").endswith(t.tactic.id):
            add(HINT, "RULE033", f"tactic {t.tactic.id} reference {t.tactic.reference} does not "
                "point at it")
        for tech in t.technique:
            if not _TECHNIQUE_RE.match(tech.id):
                add(WARNING, "RULE031", f"ATT&CK technique id {tech.id!r} is not of the form T0000")
            elif not tech.reference.rstrip("/").endswith(tech.id):
                add(HINT, "RULE033", f"technique {tech.id} reference {tech.reference} does not "
                    "point at it")
            for sub in tech.subtechnique:
                if not _SUBTECHNIQUE_RE.match(sub.id):
                    add(WARNING, "RULE032",
                        f"ATT&CK subtechnique id {sub.id!r} is not of the form T0000.000")
                elif not sub.id.startswith(tech.id + "."):
                    add(WARNING, "RULE034", f"subtechnique {sub.id} is listed under {tech.id}")


def lint_path(path: str | Path) -> list[RuleFinding]:
    """Lint every rule in a file, or in every rule file under a folder."""
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in RULE_EXTENSIONS) \
        if p.is_dir() else [p]
    out: list[RuleFinding] = []
    for f in files:
        try:
            rules = read_rules(f)
        except RuleLoadError as exc:
            msg = f"[{exc.field}] {exc.message}" if exc.field else exc.message
            out.append(RuleFinding(str(f), ERROR, "LOAD", msg, excerpt=exc.detail))
            continue
        for rule in rules:
            out.extend(lint_rule(rule))
    return out
