"""One-shot scan: records and rules → alert documents.

A :class:`CompiledRule` is a rule plus its compiled matcher and its index
patterns. :class:`Scanner` runs every rule over each record once (several
rules share one pass over the data), applying Kibana's index selection: when
an event's index is known (``_index``, or ``data_stream.*``), the rule only
sees it if one of its index patterns matches; otherwise every event is
considered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from credwatch.alerts.ids import EventIdentity, data_stream_index, event_identity
from credwatch.backends.deriving import alert_fields, deriving
from credwatch.backends.prefilter import (
    AUDIT_VERBATIM_FIELDS,
    ROUTE_TO_FULL,
    derive_literals,
    encodings,
)
from credwatch.backends.pymatch import wildcard_matcher
from credwatch.backends.python import Hit, Matcher, compile_query
from credwatch.engine.workers import FastPath, PrefilterMode
from credwatch.errors import KqlCompileError, KqlSyntaxError, RuleLoadError
from credwatch.rules.model import Rule
from credwatch.sources.diagnostics import Diagnostics
from credwatch.sources.prefiltered import literal_union
from credwatch.sources.record import MatchedRecord, Record

if TYPE_CHECKING:
    from credwatch.alerts.build import EventOrigin

# `.ds-<data stream>-<yyyy.mm.dd>-<generation>` is what Elasticsearch returns in
# `_index` for documents in a data stream; Kibana's patterns name the stream.
_BACKING_INDEX = re.compile(r"^\.ds-(?P<stream>.+)-\d{4}\.\d{2}\.\d{2}-\d{6}$")


def index_names(index: str) -> list[str]:
    """The names an index answers to: itself, and its data stream if it is a backing index."""
    m = _BACKING_INDEX.match(index)
    return [index, m.group("stream")] if m else [index]


_MEMO_NAME = 255  # Elasticsearch's limit on an index name, in bytes
_MEMO_ENTRIES = 1024


class IndexSelector:
    """Kibana's index patterns (``*`` wildcards, ``-`` exclusions, comma lists)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        include: list[Callable[[str], bool]] = []
        exclude: list[Callable[[str], bool]] = []
        for raw in patterns:
            for pat in raw.split(","):
                pat = pat.strip()
                if not pat:
                    continue
                # Cross-cluster prefixes (`remote:logs-*`) address the remote index name.
                pat = pat.split(":", 1)[-1]
                target = exclude if pat.startswith("-") else include
                target.append(wildcard_matcher(pat.lstrip("-").split("*")))
        self.include = include
        self.exclude = exclude
        # Every record asks, and an input holds few distinct indices: answers are kept,
        # for names up to _MEMO_NAME chars, at most _MEMO_ENTRIES of them (then forgotten).
        self._answers: dict[str, bool] = {}

    def selects(self, index: str) -> bool:
        """True if ``index`` (or its data stream) is selected by the patterns."""
        answer = self._answers.get(index)
        if answer is None:
            answer = self._selects(index)
            if len(index) <= _MEMO_NAME:
                if len(self._answers) >= _MEMO_ENTRIES:
                    self._answers.clear()
                self._answers[index] = answer
        return answer

    def _selects(self, index: str) -> bool:
        names = index_names(index)
        if not self.include:
            return True
        if not any(m(n) for m in self.include for n in names):
            return False
        return not any(m(n) for m in self.exclude for n in names)


@dataclass
class CompiledRule:
    """A rule ready to evaluate: matcher and index selector built once."""

    rule: Rule
    matcher: Matcher
    selector: IndexSelector
    matched: int = 0

    @classmethod
    def compile(cls, rule: Rule) -> CompiledRule:
        """Compile ``rule``; a bad query becomes a :class:`RuleLoadError` naming the rule."""
        try:
            matcher = deriving(compile_query(rule.query))  # credwatch.normalized.* when used
        except KqlSyntaxError as exc:
            # The message once, then the caret excerpt (exc.render() would repeat the message).
            raise RuleLoadError.invalid_kql(exc, rule.source or rule.rule_id, "query") from None
        except KqlCompileError as exc:
            raise RuleLoadError(f"query cannot be evaluated: {exc}", rule.source or rule.rule_id,
                                "query") from None
        return cls(rule, matcher, IndexSelector(rule.index))


def record_identity(rec: Record) -> EventIdentity:
    """The event's index/id/version: real ones from Elasticsearch, else derived from content."""
    if rec.id is not None:
        index = rec.index or data_stream_index(rec.event) or ""
        return EventIdentity(index, rec.id, rec.version, derived=False)
    ident = event_identity(rec.event, index=rec.index)
    return ident


def record_index(rec: Record) -> str | None:
    """The index an event belongs to, if the input says."""
    return rec.index or data_stream_index(rec.event)


def rules_for(rules: Sequence[CompiledRule], rec: Record, all_indices: bool = False) -> list[CompiledRule]:
    """The rules that see ``rec``: Kibana's index selection, the one place scan, run and watch apply it.

    When the event's index is known (``_index``, or ``data_stream.*``), a rule sees it only
    if one of its index patterns selects it; otherwise (or with ``all_indices``) every rule does.
    """
    index = None if all_indices else record_index(rec)
    if index is None:
        return list(rules)
    return [crule for crule in rules if crule.selector.selects(index)]


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """One rule that matched a record, and why: what evaluation hands to the alert builder.

    Picklable, so a fast-path worker evaluates and the parent builds the alert.
    """

    #: The rule's position in :attr:`Scanner.rules`.
    rule: int
    #: The clauses that matched (``credwatch.explain``).
    hits: tuple[Hit, ...]


@dataclass
class Scanner:
    """Evaluate compiled rules over records and build alert documents."""

    rules: list[CompiledRule]
    all_indices: bool = False
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    #: Add the investigation guide's triage (``credwatch.triage.*``) to every alert.
    triage: bool = True

    def would_alert(self, rec: Record) -> bool:
        """True when some rule selects ``rec``'s index and matches it (no alert is built)."""
        return any(crule.matcher.matches(rec.event) for crule in rules_for(self.rules, rec, self.all_indices))

    def fast_path(self, mode: PrefilterMode = "auto", workers: int | None = None) -> FastPath | None:
        """How to read large inputs for these rules (``None`` when there are no rules).

        Literals are derived from each rule's AST
        (:func:`~credwatch.backends.prefilter.derive_literals`). A rule with a
        negation or a typed clause at the top, for instance, has none; then,
        as with ``mode="never"``, every line is decoded, by parallel workers
        for large NDJSON files (``literals`` is ``None``).
        """
        if not self.rules:
            return None
        literals: frozenset[str] | None = None
        audit: frozenset[bytes] | None = None
        if mode != "never":
            literals = literal_union([derive_literals(c.matcher.ast) for c in self.rules])
            audit_literals = literal_union([derive_literals(c.matcher.ast, fields=AUDIT_VERBATIM_FIELDS)
                                            for c in self.rules])
            if audit_literals is not None:
                audit = frozenset({enc for lit in audit_literals for enc in encodings(lit, "audit")}
                                  | set(ROUTE_TO_FULL["audit"]))
        return FastPath(literals, self.would_alert, mode, workers, audit, self.evaluate)

    def evaluate(self, rec: Record) -> list[RuleMatch]:
        """Which rules match ``rec``, and why (no alert is built: see :meth:`alerts`)."""
        out: list[RuleMatch] = []
        selected = {id(crule) for crule in rules_for(self.rules, rec, self.all_indices)}
        for i, crule in enumerate(self.rules):
            if id(crule) in selected and crule.matcher.matches(rec.event):
                out.append(RuleMatch(i, tuple(crule.matcher.explain(rec.event))))
        return out

    def alerts(self, rec: Record, matches: Sequence[RuleMatch]) -> list[dict[str, object]]:
        """The alert builder: one alert per match, with triage; the one place alerts are made."""
        out: list[dict[str, object]] = []
        if not matches:
            return out
        build_alert, origin, enrich_alert = _alert_makers()
        for match in matches:
            crule = self.rules[match.rule]
            crule.matched += 1
            alert = build_alert(
                rec.event, crule.rule, now=self.clock(), identity=record_identity(rec),
                hits=match.hits, origin=origin(rec.source, rec.line),
            )
            alert.update(alert_fields(crule.matcher, rec.event))
            if self.triage:
                enrich_alert(alert, rec.event)
            out.append(alert)
        return out

    def alerts_for(self, rec: Record) -> list[dict[str, object]]:
        """Alerts produced by every rule for one record (evaluated here unless a worker did)."""
        if isinstance(rec, MatchedRecord):
            matches = [m for m in rec.matches if isinstance(m, RuleMatch)]
        else:
            matches = self.evaluate(rec)
        return self.alerts(rec, matches)

    def scan(self, records: Iterable[Record]) -> Iterator[dict[str, object]]:
        """Yield alerts for ``records`` in input order; counts go to ``diagnostics``."""
        diag = self.diagnostics
        for rec in records:
            diag.events += 1
            alerts = self.alerts_for(rec)
            if alerts:
                diag.matched += 1
                yield from alerts


_Makers = tuple[Callable[..., dict[str, Any]], "type[EventOrigin]", Callable[..., object]]
_ALERT_MAKERS: _Makers | None = None


def _alert_makers() -> _Makers:
    """The alert builder and the triage, imported at the first match.

    A scan that matches nothing (most runs of a narrow rule) never needs them,
    and they are ~10 ms of start-up (issue #15); after the first match this is
    one global read per record.
    """
    global _ALERT_MAKERS
    if _ALERT_MAKERS is None:
        from credwatch.alerts.build import EventOrigin, build_alert
        from credwatch.triage.enrich import enrich_alert

        _ALERT_MAKERS = (build_alert, EventOrigin, enrich_alert)
    return _ALERT_MAKERS


def compile_rules(rules: Iterable[Rule]) -> list[CompiledRule]:
    """Compile every rule (the first bad one raises with its location)."""
    return [CompiledRule.compile(r) for r in rules]
