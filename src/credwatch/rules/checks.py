"""The load-time checks every rule passes: type and language, schedule, query.

* its type must be ``query`` and its language ``kuery``; anything else is a
  :class:`RuleLoadError` naming the type (or language) and the file;
* ``interval``, ``from`` and ``to`` must parse, and ``from`` must come first;
* the query must parse; a syntax error carries the KQL line, column and caret.
"""

from __future__ import annotations

from datetime import UTC, datetime

from credwatch.errors import KqlSyntaxError, RuleLoadError
from credwatch.rules.model import (
    KNOWN_UNSUPPORTED_TYPES,
    SUPPORTED_LANGUAGES,
    SUPPORTED_TYPES,
    Rule,
)
from credwatch.rules.schedule_math import DateMathError, parse_date_math, parse_duration

_REFERENCE_NOW = datetime(2000, 1, 1, tzinfo=UTC)


def _field(rule: Rule, name: str) -> str:
    # detection-rules files nest the API fields under [rule]
    return f"rule.{name}" if (rule.source or "").endswith(".toml") else name


def _path_of(rule: Rule) -> str | None:
    return rule.source


def check_supported(rule: Rule) -> None:
    """Raise :class:`RuleLoadError` unless credwatch can run ``rule`` (type and language)."""
    if rule.type not in SUPPORTED_TYPES:
        kind = "unsupported" if rule.type in KNOWN_UNSUPPORTED_TYPES else "unknown"
        raise RuleLoadError(
            f"{kind} rule type {rule.type!r} (rule {rule.name!r}): credwatch runs custom query "
            "rules (type 'query') only",
            path=_path_of(rule), field=_field(rule, "type"))
    if rule.language not in SUPPORTED_LANGUAGES:
        raise RuleLoadError(
            f"unsupported query language {rule.language!r} (rule {rule.name!r}): credwatch "
            "evaluates KQL (language 'kuery') only",
            path=_path_of(rule), field=_field(rule, "language"))


def check_schedule(rule: Rule) -> None:
    """Raise :class:`RuleLoadError` unless interval, from and to parse and from < to."""
    try:
        parse_duration(rule.interval)
    except DateMathError as exc:
        raise RuleLoadError(str(exc), path=_path_of(rule), field=_field(rule, "interval")) from None
    try:
        start = parse_date_math(rule.from_).resolve(_REFERENCE_NOW)
    except DateMathError as exc:
        raise RuleLoadError(str(exc), path=_path_of(rule), field=_field(rule, "from")) from None
    try:
        end = parse_date_math(rule.to).resolve(_REFERENCE_NOW)
    except DateMathError as exc:
        raise RuleLoadError(str(exc), path=_path_of(rule), field=_field(rule, "to")) from None
    if start >= end:
        raise RuleLoadError(f"'from' ({rule.from_}) must be earlier than 'to' ({rule.to})",
                            path=_path_of(rule), field=_field(rule, "from"))


def check_query(rule: Rule) -> None:
    """Raise :class:`RuleLoadError` (with line, column and caret) if the query does not parse."""
    from credwatch.kql.parser import parse  # imported late: only rules from files need it

    if not rule.query.strip():
        raise RuleLoadError("query is empty", path=_path_of(rule), field=_field(rule, "query"))
    try:
        parse(rule.query)
    except KqlSyntaxError as exc:
        raise RuleLoadError.invalid_kql(exc, _path_of(rule), _field(rule, "query")) from None


def validate(rule: Rule) -> Rule:
    """Run every load-time check on ``rule`` and return it."""
    check_supported(rule)
    check_schedule(rule)
    check_query(rule)
    return rule
