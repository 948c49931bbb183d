"""Which queries use ``credwatch.normalized.*``, and when deriving them cannot matter.

The evaluation side (deriving before matching, explaining with the original
argument) is :mod:`credwatch.backends.deriving`; this module is the part the
prefilter and the evaluator both need: the fields a query names, a query's
literal for a derived comparison (:func:`derived_literal`) and the
:class:`Gate` that skips the derivation when no derived comparison can hold
(see :func:`gate_fragments`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import ahocorasick

from credwatch.kql.ast import Exists, Is, Nested, Node, Range, Wildcard
from credwatch.kql.passes import walk
from credwatch.kql.wildcard import wildcard_matcher
from credwatch.normalize.flatten import get_values
from credwatch.normalize.paths import (
    DERIVED_PREFIX,
    FIELD,
    MAX_ARGS,
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
