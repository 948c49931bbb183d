"""Evaluating queries over ``credwatch.normalized.*``: derive before matching, explain with the original argument.

:func:`deriving` wraps a compiled query that mentions a derived field in a
:class:`DerivingMatcher`; scan, run, watch and ``rules test`` use it, so every
rule sees the fields without the event itself being changed (its content
derived identity must not depend on which rules ran). A :class:`Gate` skips
the derivation when no derived comparison can hold (see
:func:`gate_fragments`), and :func:`alert_fields` gives an alert the fields it
was matched on.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ahocorasick

from credwatch.backends.python import Hit, Matcher
from credwatch.kql.ast import Exists, Is, Nested, Node, Range, Wildcard, walk
from credwatch.kql.wildcard import wildcard_matcher
from credwatch.normalize.flatten import get_values
from credwatch.normalize.paths import (
    DERIVED_PREFIX,
    FIELD,
    MAX_ARGS,
    READ_FIELD,
    Origin,
    command_words,
    derived_fields,
    path_origins,
)


def references_derived(fields: Iterable[str]) -> bool:
    """True when one of ``fields`` (names from a query, ``*`` wildcards kept) may be derived."""
    for name in fields:
        if name.startswith(DERIVED_PREFIX) or name == "credwatch.normalized":
            return True
        if "*" in name and wildcard_matcher(name.split("*"))(FIELD):
            return True  # a wildcard field name such as credwatch.* or *paths
    return False


def query_fields(node: Node) -> set[str]:
    """Every field name a query mentions (nested ones with their parent's prefix)."""
    out: set[str] = set()
    for sub in walk(node):
        if isinstance(sub, (Is, Exists, Range, Nested)) and sub.field is not None:
            out.add(sub.field.text)
        if isinstance(sub, Nested):
            out |= {f"{sub.field.text}.{name}" for name in query_fields(sub.query)}
    return out


def uses_derived_fields(node: Node) -> bool:
    """True when a query needs :func:`add_derived_fields` before evaluation."""
    return references_derived(query_fields(node))


@dataclass(frozen=True, slots=True)
class DerivedHit(Hit):
    """A hit on a derived field, with the original argument that named the path."""

    argument: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for alert documents (``argument`` added)."""
        return {**Hit.as_dict(self), "argument": self.argument}


#: Characters of the original command shown in an explanation.
MAX_SHOWN = 256


def _shown_command(event: Mapping[str, Any], origin: Origin) -> str:
    """The command up to the argument that named the path (``sh -c 'cat ../token'``)."""
    args = command_words(event)
    text = shlex.join(args[:origin.index + 1]) if origin.index < len(args) else origin.argument
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 1] + "…"


#: Path components the normaliser writes without reading them from the event's strings.
_SYNTHETIC_COMPONENTS = ("root", "home", "var")
_UNQUOTE = str.maketrans("", "", "'\"\\")


def gate_fragments(node: Node) -> tuple[str, ...] | None:
    """One fixed fragment per comparison on a derived field, or None when a gate is unsound.

    Every component of a derived path is a substring of the event's
    arguments, working directory or command line once shell quotes and
    backslashes are removed, or one of :data:`_SYNTHETIC_COMPONENTS`, or the
    user's name (home directories). A pattern's fixed pieces between ``/``
    and ``*`` each lie inside one component of any path it matches, so an
    event whose strings hold none of the fragments cannot satisfy any of the
    comparisons, and deriving its paths can be skipped.
    """
    out: list[str] = []
    for sub in walk(node):
        if isinstance(sub, Nested) or (isinstance(sub, (Exists, Range))
                                       and references_derived([sub.field.text])):
            return None
        if not isinstance(sub, Is) or sub.field is None or not references_derived([sub.field.text]):
            continue
        if "*" in sub.field.text or sub.value is None:
            return None
        parts = sub.value.parts if isinstance(sub.value, Wildcard) else (sub.value.text,)
        pieces = [piece for part in parts for piece in part.split("/") if piece]
        if not pieces:
            return None
        best = max(pieces, key=len)
        if best != best.translate(_UNQUOTE):
            return None  # the haystack drops quotes and backslashes
        out.append(best)
    return tuple(dict.fromkeys(out))


def derived_literal(node: Is) -> str | None:
    """A fixed piece every path matching ``node`` (a derived comparison) holds, or None.

    The piece also occurs in the event's own strings once shell quotes and
    backslashes are removed (see :func:`gate_fragments`); the literal
    prefilter uses it for NDJSON lines, where every string is written raw
    unless escaped with a backslash.
    """
    fragments = gate_fragments(node)
    if not fragments or any(f in c for f in fragments for c in _SYNTHETIC_COMPONENTS):
        return None
    return fragments[0]


class Gate:
    """Whether an event's strings hold one of a query's derived-path fragments (one regex search)."""

    __slots__ = ("_automaton",)

    def __init__(self, fragments: Sequence[str]) -> None:
        # Aho-Corasick: one linear pass whatever the number of fragments.
        self._automaton = ahocorasick.Automaton()
        for fragment in fragments:
            self._automaton.add_word(fragment, fragment)
        self._automaton.make_automaton()

    @classmethod
    def for_query(cls, node: Node) -> Gate | None:
        """The gate of a query, or None when it cannot be gated (then always derive)."""
        fragments = gate_fragments(node)
        if not fragments or any(f in c for f in fragments for c in _SYNTHETIC_COMPONENTS):
            return None
        return cls(fragments)

    def may_match(self, event: Mapping[str, Any]) -> bool:
        """False only when no derived path of ``event`` can contain any of the fragments."""
        texts = _strings(event, "process", "args")[:MAX_ARGS]
        if not texts:
            texts = _strings(event, "process", "command_line") + _strings(event, "process", "title")
        texts += _strings(event, "process", "working_directory") + _strings(event, "user", "name")
        for _ in self._automaton.iter("\x00".join(texts).translate(_UNQUOTE)):
            return True
        return False


def _strings(event: Mapping[str, Any], top: str, leaf: str) -> list[str]:
    """The string values of ``top.leaf``: a direct lookup for plain nested events, else get_values."""
    obj = event.get(top)
    if isinstance(obj, dict) and f"{top}.{leaf}" not in event:
        value = obj.get(leaf)
        if value is None and not any("." in k for k in obj):
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return [v for v in get_values(event, f"{top}.{leaf}") if isinstance(v, str)]


def _without_own(event: Mapping[str, Any]) -> dict[str, Any]:
    """``event`` without keys under ``credwatch`` (only credwatch derives those)."""
    return {k: v for k, v in event.items() if k.split(".", 1)[0] != "credwatch"}


class DerivingMatcher(Matcher):
    """A :class:`Matcher` for a query over ``credwatch.normalized.*``.

    It derives the fields before evaluating (the event itself is not changed:
    its content-derived identity must not depend on which rules ran), and its
    explanation names, for each derived path that matched, the original
    command that spelled it.
    """

    __slots__ = ("_last",)

    def __init__(self, inner: Matcher) -> None:
        super().__init__(inner.ast, inner.root, inner.query, inner.memo)
        self._last: tuple[Mapping[str, Any] | None, dict[str, Any]] = (None, {})
        test = inner.matches
        gate = Gate.for_query(inner.ast)
        empty: dict[str, list[str]] = {FIELD: [], READ_FIELD: []}

        def matches(event: Mapping[str, Any]) -> bool:
            if gate is not None and isinstance(event, Mapping) and not gate.may_match(event):
                # No derived comparison can hold: evaluate as if no path was named
                # (identical answer, without deriving).
                return test({**_without_own(event), **empty})
            return test(self.with_derived(event))

        self.matches = matches

    def with_derived(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """``event`` plus its derived fields (the last result is kept for the explain call)."""
        last, derived = self._last
        if last is not event:
            # The cache holds a reference to ``event``, so identity comparison is safe.
            # An input's own credwatch.* keys are dropped (as alerts drop them): the
            # derived fields are credwatch's, an event cannot supply them.
            derived = ({**_without_own(event), **derived_fields(event)}
                       if isinstance(event, Mapping) else {})
            self._last = (event, derived)
        return derived

    def explain(self, event: Mapping[str, Any]) -> list[Hit]:
        """The matched clauses; a derived path's hit also shows the argument that named it."""
        hits = super().explain(self.with_derived(event))
        if not any(h.field.startswith(DERIVED_PREFIX) for h in hits):
            return hits
        origins = {o.path: o for o in path_origins(event)}
        out: list[Hit] = []
        for h in hits:
            origin = origins.get(h.value) if isinstance(h.value, str) else None
            if h.field.startswith(DERIVED_PREFIX) and origin is not None:
                h = DerivedHit(h.clause, h.field, h.value, h.index, h.pattern,
                               _shown_command(event, origin))
            out.append(h)
        return out


def deriving(matcher: Matcher) -> Matcher:
    """``matcher`` itself, or a :class:`DerivingMatcher` when its query uses derived fields."""
    return DerivingMatcher(matcher) if uses_derived_fields(matcher.ast) else matcher


def alert_fields(matcher: Matcher, event: Mapping[str, Any]) -> dict[str, Any]:
    """The derived fields an alert carries: those ``matcher`` derived for ``event``, else none."""
    if not isinstance(matcher, DerivingMatcher):
        return {}
    derived = matcher.with_derived(event)
    return {k: derived[k] for k in (FIELD, READ_FIELD) if k in derived}
