"""The KQL abstract syntax tree.

Nodes are frozen, slotted dataclasses, so they hash, compare by value and can
be shared between backends. Value lists such as ``f:(a or b)`` are expanded at
parse time into ``Or(Is(f, a), Is(f, b))``, exactly as Kibana's grammar does;
the printer regroups them, so ``parse(print(ast)) == ast`` holds.

Source positions (``pos``) are carried for linting and explanations but are
excluded from equality, so a re-parsed tree equals the original.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal value or field name.

    ``value`` is a string, or ``True``/``False``/``None`` for the unquoted
    keywords ``true``/``false``/``null``. ``quoted`` records whether the source
    used double quotes (quoted values are phrase/literal in Kibana).
    """

    value: str | bool | None
    quoted: bool = False
    pos: int = dataclasses.field(default=-1, compare=False, hash=False)

    @property
    def text(self) -> str:
        """The value as the string Elasticsearch would receive."""
        if self.value is None:
            return "null"
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return self.value


@dataclass(frozen=True, slots=True)
class Wildcard:
    """An unquoted value containing at least one unescaped ``*``.

    ``parts`` holds the literal text between the stars, so ``a*b*`` is
    ``("a", "b", "")``. A star escaped as ``\\*`` is a plain character inside a
    part. ``?`` is never special in KQL.
    """

    parts: tuple[str, ...]
    pos: int = dataclasses.field(default=-1, compare=False, hash=False)

    @property
    def is_lone(self) -> bool:
        """True for a bare ``*`` (used for exists and match-all)."""
        return all(p == "" for p in self.parts)

    @property
    def text(self) -> str:
        """The pattern with ``*`` for each wildcard (literal stars are not escaped)."""
        return "*".join(self.parts)


Value = Literal | Wildcard


@dataclass(frozen=True, slots=True)
class Is:
    """``field:value``. ``field`` is ``None`` for free text searched over all fields.

    A field that is a :class:`Wildcard` (``process.*:x``) matches every field
    whose name fits the pattern.
    """

    field: Value | None
    value: Value
    pos: int = dataclasses.field(default=-1, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Exists:
    """``field:*``: the field holds at least one non-null value."""

    field: Value
    pos: int = dataclasses.field(default=-1, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class MatchAll:
    """The empty query (and ``*:*``), which matches every document."""

    pos: int = dataclasses.field(default=-1, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Range:
    """``field < <= > >= value``. ``op`` is one of ``lt lte gt gte``."""

    field: Value
    op: str
    value: Value
    pos: int = dataclasses.field(default=-1, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Nested:
    """``field:{query}``: ``query`` must hold for one object under ``field``."""

    field: Value
    query: Node
    pos: int = dataclasses.field(default=-1, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction of two or more sub-queries."""

    children: tuple[Node, ...]
    pos: int = dataclasses.field(default=-1, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Or:
    """Disjunction of two or more sub-queries."""

    children: tuple[Node, ...]
    pos: int = dataclasses.field(default=-1, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class Not:
    """Negation of a sub-query."""

    child: Node
    pos: int = dataclasses.field(default=-1, compare=False, hash=False)


Node = Is | Exists | MatchAll | Range | Nested | And | Or | Not

#: Every node kind, so backends can check they cover the whole language.
NODE_TYPES: tuple[type, ...] = (Is, Exists, MatchAll, Range, Nested, And, Or, Not)


def field_name(value: Value) -> str:
    """Return the textual field name of a field node (wildcards keep their ``*``)."""
    return value.text
