"""Passes over the KQL tree that several targets share.

* :func:`walk`: every node, iteratively (no recursion, whatever the depth);
* :func:`fields`: the concrete field names a query reads, nested paths joined;
* :func:`value_list_field`: the one field of a value-list-shaped subtree
  (``f:(a or b and not c)``), which the printer prints as a list;
* :func:`group_values`: ``f:a or f:b or f:c*`` on keyword fields gathered per
  field, so an evaluator reads the field once (the Python evaluator and the
  SQL backends used to each have their own grouper).

Each visitor matches on the node kinds and ends in ``assert_never``, so a new
node kind fails type checking here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import assert_never

from credwatch.kql.ast import (
    And,
    Exists,
    Is,
    Literal,
    MatchAll,
    Nested,
    Node,
    Not,
    Or,
    Range,
    Value,
    Wildcard,
)

__all__ = ["ValueGroup", "children", "fields", "group_values", "value_list_field", "walk"]


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-queries of ``node``."""
    match node:
        case And() | Or():
            return node.children
        case Not():
            return (node.child,)
        case Nested():
            return (node.query,)
        case Is() | Exists() | MatchAll() | Range():
            return ()
        case _:
            assert_never(node)


def walk(node: Node) -> Iterator[Node]:
    """``node`` and all its descendants, depth first, in source order (iterative)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))


def fields(node: Node, prefix: str = "") -> list[str]:
    """Concrete field names the query compares, in order, with nested paths joined.

    Wildcard field names and free text name no concrete field and are left out.
    """
    out: list[str] = []
    stack: list[tuple[Node, str]] = [(node, prefix)]
    while stack:
        current, pre = stack.pop()
        match current:
            case Nested():
                if isinstance(current.field, Literal):
                    stack.append((current.query, f"{pre}{current.field.text}."))
            case Is() | Exists() | Range():
                if isinstance(current.field, Literal):
                    out.append(pre + current.field.text)
            case And() | Or() | Not() | MatchAll():
                stack.extend((c, pre) for c in reversed(children(current)))
            case _:
                assert_never(current)
    return out


def value_list_field(node: Node) -> Value | None:
    """The single field of a value-list-shaped subtree, or None if it is not one."""
    found: set[Value | None] = set()
    for current in walk(node):
        match current:
            case Is() | Exists():
                found.add(current.field)
            case Not() | And() | Or():
                continue
            case MatchAll() | Range() | Nested():
                return None
            case _:
                assert_never(current)
        if len(found) > 1:
            return None
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True, slots=True)
class ValueGroup:
    """``field:v1 or field:v2 or ...`` on one keyword field (two or more comparisons)."""

    field: str
    nodes: tuple[Is, ...]

    @property
    def literals(self) -> list[str]:
        """The exact values, in order."""
        return [n.value.text for n in self.nodes if isinstance(n.value, Literal)]

    @property
    def patterns(self) -> list[tuple[str, ...]]:
        """The wildcard patterns (as their parts), in order."""
        return [n.value.parts for n in self.nodes if isinstance(n.value, Wildcard)]


def _keyword_field(node: Node, is_keyword: Callable[[str], bool]) -> str | None:
    if not isinstance(node, Is) or not isinstance(node.field, Literal):
        return None
    name = node.field.value
    if not isinstance(name, str):
        return None
    if isinstance(node.value, Literal) and node.value.value is None:
        return None  # `f:null` never matches; keep it out of the set
    return name if is_keyword(name) else None


def group_values(nodes: Sequence[Node], is_keyword: Callable[[str], bool]
                 ) -> list[Node | ValueGroup]:
    """Gather the children of an ``or`` that compare one keyword field.

    Each group stands where its first member stood; a field compared once stays
    a plain node. ``is_keyword(name)`` tells whether a field is keyword-like.
    """
    members: dict[str, list[Is]] = {}
    order: list[Node | str] = []
    for node in nodes:
        key = _keyword_field(node, is_keyword)
        if key is None:
            order.append(node)
            continue
        assert isinstance(node, Is)
        if key not in members:
            members[key] = []
            order.append(key)
        members[key].append(node)
    out: list[Node | ValueGroup] = []
    for item in order:
        if isinstance(item, str):
            group = members[item]
            out.append(group[0] if len(group) == 1 else ValueGroup(item, tuple(group)))
        else:
            out.append(item)
    return out
