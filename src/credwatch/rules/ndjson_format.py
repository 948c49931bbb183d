"""Kibana's rule export: NDJSON, one rule object per line.

An export from Kibana (Rules → Export, or ``_export``) holds one rule per line
in the API's snake_case form, followed by a summary line such as
``{"exported_count":1,"exported_rules_count":1,"missing_rules":[],...}``; that
line, and exception-list lines an export may also carry, are recognised and
skipped. Blank lines are ignored.

credwatch keeps a rule's detection-rules ``[metadata]``, its other top-level
TOML tables (``sections``) and its embedded tests in
Kibana's free-form ``meta`` object under ``meta.credwatch``, which Kibana
stores and exports unchanged, so writing then reading gives an equal rule.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from credwatch.errors import RuleLoadError
from credwatch.rules.convert import (
    metadata_from_table,
    metadata_to_table,
    rule_from_api,
    rule_to_api,
    tests_from_table,
    tests_to_table,
)
from credwatch.rules.limits import DepthError, check_json_depth
from credwatch.rules.model import Rule

_META_KEY = "credwatch"


@dataclass(frozen=True, slots=True)
class NdjsonLine:
    """One non-rule line of an export that was skipped, and why."""

    line: int
    reason: str


def is_export_summary(obj: Mapping[str, Any]) -> bool:
    """True for the trailing summary line of a Kibana rule export."""
    return "exported_count" in obj and "rule_id" not in obj


def _is_exception_line(obj: Mapping[str, Any]) -> bool:
    # exports "with exceptions" interleave exception lists and items
    return "list_id" in obj and "rule_id" not in obj


def parse_ndjson(text: str, path: str | None = None) -> tuple[list[tuple[int, dict[str, Any]]],
                                                               list[NdjsonLine]]:
    """Split an export into ``(line number, rule object)`` pairs and skipped lines."""
    rules: list[tuple[int, dict[str, Any]]] = []
    skipped: list[NdjsonLine] = []
    # split on "\n" only: str.splitlines() would also split inside JSON strings that
    # hold U+0085, U+2028 and the like, which JSON leaves unescaped
    for lineno, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            check_json_depth(raw)
            obj = json.loads(raw)
        except DepthError as exc:
            raise RuleLoadError(f"line {lineno}, column {exc.offset + 1}: {exc}",
                                path=path) from None
        except ValueError as exc:
            raise RuleLoadError(f"line {lineno} is not valid JSON: {exc}", path=path) from None
        if not isinstance(obj, dict):
            raise RuleLoadError(f"line {lineno} is not a JSON object", path=path)
        if is_export_summary(obj):
            skipped.append(NdjsonLine(lineno, "export summary line"))
        elif _is_exception_line(obj):
            skipped.append(NdjsonLine(lineno, "exception list line (not a rule)"))
        else:
            rules.append((lineno, obj))
    return rules, skipped


def rule_from_export_object(obj: Mapping[str, Any], path: str | None = None) -> Rule:
    """Build a :class:`Rule` from one rule object of a Kibana export."""
    meta = obj.get("meta")
    cw: Mapping[str, Any] = {}
    if isinstance(meta, Mapping) and isinstance(meta.get(_META_KEY), Mapping):
        cw = meta[_META_KEY]
        rest = {k: v for k, v in meta.items() if k != _META_KEY}
        obj = {**obj, "meta": rest} if rest else {k: v for k, v in obj.items() if k != "meta"}
    md = cw.get("metadata", {})
    if not isinstance(md, Mapping):
        raise RuleLoadError("expected a table", path=path, field="meta.credwatch.metadata")
    sections = cw.get("sections", {})
    if not isinstance(sections, Mapping):
        raise RuleLoadError("expected a table", path=path, field="meta.credwatch.sections")
    return rule_from_api(obj, path=path, metadata=metadata_from_table(md, path),
                         tests=tests_from_table(cw, path, prefix="meta.credwatch."),
                         other_sections=sections)


def loads_ndjson(text: str, path: str | None = None) -> list[Rule]:
    """Parse a Kibana rule export into rules (summary and exception lines skipped)."""
    rules, _ = parse_ndjson(text, path)
    out = []
    for lineno, obj in rules:
        where = f"{path}:{lineno}" if path else f"<ndjson>:{lineno}"
        out.append(replace(rule_from_export_object(obj, where), source=where))
    return out


def rule_to_export_object(rule: Rule) -> dict[str, Any]:
    """The export object for ``rule``, with credwatch's extras under ``meta.credwatch``."""
    obj = rule_to_api(rule, full=True)
    cw: dict[str, Any] = tests_to_table(rule.tests)
    md = metadata_to_table(rule.metadata)
    if md:
        cw["metadata"] = md
    if rule.other_sections:
        cw["sections"] = dict(rule.other_sections)
    if cw:
        obj["meta"] = {**dict(rule.meta), _META_KEY: cw}
    return obj


def dumps_ndjson(rules: Iterable[Rule], *, summary: bool = True) -> str:
    """Serialise rules as a Kibana export, with the summary line when ``summary``."""
    lines = []
    count = 0
    for rule in rules:
        lines.append(json.dumps(rule_to_export_object(rule), ensure_ascii=False,
                                separators=(",", ":")))
        count += 1
    if summary:
        lines.append(json.dumps({
            "exported_count": count, "exported_rules_count": count, "missing_rules": [],
            "missing_rules_count": 0, "exported_exception_list_count": 0,
            "exported_exception_list_item_count": 0, "missing_exception_list_item_count": 0,
            "missing_exception_list_items": [], "missing_exception_lists": [],
            "missing_exception_lists_count": 0,
        }, separators=(",", ":")))
    return "".join(line + "\n" for line in lines)
