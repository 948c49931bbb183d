"""elastic/detection-rules TOML: reader and writer.

A detection-rules file has a ``[metadata]`` table (creation/updated dates,
maturity, integrations) and a ``[rule]`` table holding Kibana's API fields,
with the ATT&CK mapping as ``[[rule.threat]]``, ``[rule.threat.tactic]``,
``[[rule.threat.technique]]`` and ``[[rule.threat.technique.subtechnique]]``.
credwatch adds an optional ``[credwatch]`` table with the rule's own test
events (``test_defaults`` and ``[[credwatch.tests]]``); detection-rules and
Kibana never see it. Other top-level tables (``[transform]`` …) are kept.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

import tomli_w

from credwatch.errors import RuleLoadError
from credwatch.rules.convert import (
    metadata_from_table,
    metadata_to_table,
    rule_from_api,
    rule_to_api,
    tests_from_table,
    tests_to_table,
)
from credwatch.rules.limits import MAX_DEPTH, DepthError, check_value_depth
from credwatch.rules.model import Rule

#: Where the ``[rule]`` keys go when written, so files read like upstream's.
_RULE_KEY_ORDER = (
    "author", "description", "false_positives", "from", "index", "interval", "language",
    "license", "max_signals", "name", "note", "references", "risk_score", "risk_score_mapping",
    "rule_id", "setup", "severity", "severity_mapping", "tags", "timestamp_override",
    "timestamp_override_fallback_disabled", "to", "type", "enabled", "version", "id", "meta",
    "exceptions_list", "alert_suppression", "query", "threat",
)  # fmt: skip


def loads_toml(text: str, path: str | None = None) -> Rule:
    """Parse one detection-rules TOML document into a :class:`Rule`."""
    try:
        doc = tomllib.loads(text)
        # Nothing after this point may recurse over a hostile shape (see rules.limits).
        check_value_depth(doc)
    except tomllib.TOMLDecodeError as exc:
        raise RuleLoadError(f"not valid TOML: {exc}", path=path) from None
    except (RecursionError, DepthError):
        # tomllib recurses per nested inline table or array and gives no position.
        raise RuleLoadError(f"not valid TOML: nested deeper than {MAX_DEPTH} levels",
                            path=path) from None
    return rule_from_toml_document(doc, path)


def rule_from_toml_document(doc: Mapping[str, Any], path: str | None = None) -> Rule:
    """Build a :class:`Rule` from an already-parsed detection-rules document."""
    rule_table = doc.get("rule")
    if not isinstance(rule_table, Mapping):
        raise RuleLoadError("no [rule] table: not a detection-rules rule file", path=path,
                            field="rule")
    meta_table = doc.get("metadata", {})
    if not isinstance(meta_table, Mapping):
        raise RuleLoadError("expected a table", path=path, field="metadata")
    cw_table = doc.get("credwatch", {})
    if not isinstance(cw_table, Mapping):
        raise RuleLoadError("expected a table", path=path, field="credwatch")
    others = {k: v for k, v in doc.items() if k not in ("rule", "metadata", "credwatch")}
    return rule_from_api(
        rule_table,
        path=path,
        prefix="rule.",
        metadata=metadata_from_table(meta_table, path),
        tests=tests_from_table(cw_table, path),
        other_sections=others,
    )


def rule_to_toml_document(rule: Rule) -> dict[str, Any]:
    """The TOML document (as nested dicts) for ``rule``."""
    api = rule_to_api(rule, full=False)
    ordered = {k: api[k] for k in _RULE_KEY_ORDER if k in api}
    ordered.update({k: v for k, v in api.items() if k not in ordered})
    doc: dict[str, Any] = {}
    meta = metadata_to_table(rule.metadata)
    if meta:
        doc["metadata"] = meta
    doc["rule"] = ordered
    doc.update(rule.other_sections)
    tests = tests_to_table(rule.tests)
    if tests:
        doc["credwatch"] = tests
    return doc


def _has_cr(value: Any) -> bool:
    if isinstance(value, str):
        return "\r" in value
    if isinstance(value, Mapping):
        return any(_has_cr(k) or _has_cr(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_cr(v) for v in value)
    return False


def dumps_toml(rule: Rule, header: str | None = None) -> str:
    """Serialise ``rule`` as detection-rules TOML.

    ``header`` is written first as ``#`` comment lines (e.g. attribution).
    Multi-line strings (the query, the guide) are written as TOML multi-line
    strings so the file stays readable and diffable.
    """
    doc = rule_to_toml_document(rule)
    # TOML readers normalise CRLF inside multi-line strings to LF; a value holding a
    # carriage return is only preserved by the escaped single-line form
    body = tomli_w.dumps(doc, multiline_strings=not _has_cr(doc))
    if not header:
        return body
    lines = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return f"{lines}\n{body}"
