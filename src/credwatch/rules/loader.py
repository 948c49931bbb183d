"""Loading rules: by built-in name or rule_id, by file, or a whole folder.

A file is read by its extension: ``.toml`` is detection-rules TOML;
``.ndjson``/``.jsonl`` is a Kibana rule export; ``.json`` is one rule object,
a list of them, or an export. A loaded rule is then checked:

* its type must be ``query`` and its language ``kuery``; anything else is a
  :class:`RuleLoadError` naming the type (or language) and the file;
* ``interval``, ``from`` and ``to`` must parse, and ``from`` must come first;
* the query must parse; a syntax error carries the KQL line, column and caret.

Loading a folder never stops at a bad file and never skips one silently:
every file that gives no rule is listed in :attr:`LoadResult.skipped` with
its reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from credwatch.errors import RuleLoadError
from credwatch.rules.builtin import DEFAULT_RULE_ID, builtin_rules, default_rule
from credwatch.rules.checks import check_query, check_schedule, check_supported, validate
from credwatch.rules.limits import DepthError, check_json_depth
from credwatch.rules.model import Rule
from credwatch.rules.ndjson_format import loads_ndjson, parse_ndjson, rule_from_export_object
from credwatch.rules.toml_format import loads_toml

__all__ = [
    "DEFAULT_RULE_ID", "RULE_EXTENSIONS", "LoadResult", "SkippedFile", "adhoc_rule",
    "builtin_rules", "check_query", "check_schedule", "check_supported", "default_rule",
    "load_file", "load_folder", "load_paths", "load_rule", "read_rules", "resolve_rules",
    "validate",
]

#: File extensions that hold rules.
RULE_EXTENSIONS: tuple[str, ...] = (".toml", ".ndjson", ".jsonl", ".json")


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file (or ``file:line``) that gave no rule, and why."""

    path: str
    reason: str


@dataclass(slots=True)
class LoadResult:
    """Rules loaded from a set of paths, and everything that was skipped."""

    rules: list[Rule] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)


def _load_json_file(text: str, path: str) -> list[Rule]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            check_json_depth(text)
            items = json.loads(text)
        except DepthError as exc:
            raise RuleLoadError(f"{exc.where(text)}: {exc}", path=path) from None
        except ValueError as exc:
            raise RuleLoadError(f"not valid JSON: {exc}", path=path) from None
        rules = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise RuleLoadError(f"item {i} is not a JSON object", path=path)
            rules.append(rule_from_export_object(item, f"{path}[{i}]"))
        return rules
    return loads_ndjson(text, path)


def read_rules(path: str | os.PathLike[str]) -> list[Rule]:
    """Parse every rule in one file, without the support/schedule/query checks."""
    p = Path(path)
    name = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RuleLoadError("not a UTF-8 text file", path=name) from None
    except OSError as exc:
        raise RuleLoadError(f"cannot read: {exc.strerror or exc}", path=name) from None
    suffix = p.suffix.lower()
    if suffix == ".toml":
        return [loads_toml(text, name)]
    if suffix in (".ndjson", ".jsonl"):
        return loads_ndjson(text, name)
    if suffix == ".json":
        return _load_json_file(text, name)
    raise RuleLoadError(f"not a rule file: expected one of {', '.join(RULE_EXTENSIONS)}",
                        path=name)


def load_file(path: str | os.PathLike[str]) -> list[Rule]:
    """Load and validate every rule in one file; the first problem raises."""
    return [validate(rule) for rule in read_rules(path)]


def _load_file_lenient(path: Path, result: LoadResult) -> None:
    """Load one file of a folder, recording (not raising) what cannot be loaded."""
    name = str(path)
    if path.suffix.lower() in (".ndjson", ".jsonl"):
        try:
            text = path.read_text(encoding="utf-8")
            objs, _ = parse_ndjson(text, name)
        except (RuleLoadError, OSError, UnicodeDecodeError) as exc:
            result.skipped.append(SkippedFile(name, _reason(exc)))
            return
        if not objs:
            result.skipped.append(SkippedFile(name, "no rules in file"))
        for lineno, obj in objs:
            where = f"{name}:{lineno}"
            try:
                result.rules.append(validate(replace(rule_from_export_object(obj, where),
                                                     source=where)))
            except RuleLoadError as exc:
                result.skipped.append(SkippedFile(where, _reason(exc)))
        return
    try:
        rules = load_file(path)
    except RuleLoadError as exc:
        result.skipped.append(SkippedFile(name, _reason(exc)))
        return
    if not rules:
        result.skipped.append(SkippedFile(name, "no rules in file"))
    result.rules.extend(rules)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RuleLoadError):
        where = f"[{exc.field}] " if exc.field else ""
        text = f"{where}{exc.message}"
        return f"{text}\n{exc.detail}" if exc.detail else text
    return str(exc)


def load_folder(folder: str | os.PathLike[str]) -> LoadResult:
    """Load every rule under ``folder`` (recursively, in name order).

    Files that are not rule files, cannot be parsed, or hold an unsupported
    rule are listed in ``skipped`` with their reason.
    """
    result = LoadResult()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix.lower() not in RULE_EXTENSIONS:
            result.skipped.append(SkippedFile(
                str(path), f"not a rule file (extension {path.suffix or 'none'!r}; expected "
                f"{', '.join(RULE_EXTENSIONS)})"))
            continue
        _load_file_lenient(path, result)
    _check_duplicates(result)
    return result


def _check_duplicates(result: LoadResult) -> None:
    seen: dict[str, Rule] = {}
    kept: list[Rule] = []
    for rule in result.rules:
        first = seen.get(rule.rule_id)
        if first is not None:
            result.skipped.append(SkippedFile(
                rule.source or rule.rule_id,
                f"duplicate rule_id {rule.rule_id} (already loaded from {first.source})"))
            continue
        seen[rule.rule_id] = rule
        kept.append(rule)
    result.rules = kept


def load_paths(paths: Iterable[str | os.PathLike[str]]) -> LoadResult:
    """Load files and folders. A named file that fails raises; folders collect skips."""
    result = LoadResult()
    for path in paths:
        if Path(path).is_dir():
            sub = load_folder(path)
            result.rules.extend(sub.rules)
            result.skipped.extend(sub.skipped)
        else:
            result.rules.extend(load_file(path))
    _check_duplicates(result)
    return result


def resolve_rules(ref: str) -> list[Rule]:
    """Rules for a reference: a built-in rule_id or name, or a file or folder path.

    A folder must yield at least one rule; its skipped files are ignored here
    (use :func:`load_folder` to report them).
    """
    for rule in builtin_rules():
        if ref in (rule.rule_id, rule.id) or ref.casefold() == rule.name.casefold():
            return [rule]
    path = Path(ref)
    if path.is_dir():
        result = load_folder(path)
        if not result.rules:
            raise RuleLoadError("no loadable rules in folder", path=ref)
        return result.rules
    if path.is_file():
        return load_file(path)
    raise RuleLoadError(
        "no such rule: not a built-in rule_id or name, and no such file or folder "
        "(try `credwatch rules list`)", path=ref)


def adhoc_rule(query: str, *, name: str | None = None, index: Sequence[str] = (),
               severity: str = "low", risk_score: int = 21) -> Rule:
    """A rule for an ad-hoc KQL hunt (``--query``), validated like a rule file.

    Its rule_id is derived from the query text, so re-running the same hunt
    gives the same alert ids (and a store does not duplicate them).
    """
    digest = hashlib.sha256(query.encode("utf-8")).hexdigest()
    rule_id = str(uuid.UUID(digest[:32], version=5))
    return validate(Rule(
        rule_id=rule_id, name=name or "Ad-hoc KQL query", description=f"Ad-hoc query: {query}",
        query=query, severity=severity, risk_score=risk_score, index=tuple(index),
        author=("credwatch",), source="<query>"))


def load_rule(ref: str | None = None) -> Rule:
    """One rule by built-in rule_id or name, or from a file; the default rule for None."""
    if ref is None:
        return default_rule()
    rules = resolve_rules(ref)
    if len(rules) != 1:
        raise RuleLoadError(f"holds {len(rules)} rules; name one rule", path=ref)
    return rules[0]
