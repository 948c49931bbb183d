"""Evaluating queries over ``credwatch.normalized.*``: derive before matching, explain with the original argument.

:func:`deriving` wraps a compiled query that mentions a derived field in a
:class:`DerivingMatcher`; scan, run, watch and ``rules test`` use it, so every
rule sees the fields without the event itself being changed (its content
derived identity must not depend on which rules ran). :func:`alert_fields`
gives an alert the fields it was matched on. It lives with the evaluator
(normalize, below the backends, only derives the paths).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from credwatch.backends.python import Hit, Matcher
from credwatch.normalize.derived import Gate, uses_derived_fields
from credwatch.normalize.paths import (
    DERIVED_PREFIX,
    FIELD,
    READ_FIELD,
    Origin,
    command_words,
    derived_fields,
    path_origins,
)


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
