"""The visitor base class every backend derives from.

Dispatch is one ``match`` over the node kinds ending in ``assert_never``, so
adding a kind to :data:`credwatch.kql.ast.Node` fails type checking here until
it is handled. Every ``visit_<kind>`` method is abstract: a backend that lacks
one cannot even be instantiated (and mypy reports it), so a rule is never
silently half-translated. Where a target cannot express a node, its method
raises :class:`~credwatch.errors.UnsupportedError` naming the target.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, TypeVar, assert_never

from credwatch.kql.ast import NODE_TYPES, And, Exists, Is, MatchAll, Nested, Node, Not, Or, Range

T = TypeVar("T")


class Visitor(ABC, Generic[T]):
    """Dispatch ``visit(node)`` to ``visit_<kind>(node)``."""

    #: Human name of the target, used in error messages.
    name: ClassVar[str] = "backend"

    def visit(self, node: Node, *args: Any) -> T:
        """Translate one node with the method for its kind."""
        match node:
            case Is():
                return self.visit_is(node, *args)
            case Exists():
                return self.visit_exists(node, *args)
            case MatchAll():
                return self.visit_matchall(node, *args)
            case Range():
                return self.visit_range(node, *args)
            case Nested():
                return self.visit_nested(node, *args)
            case And():
                return self.visit_and(node, *args)
            case Or():
                return self.visit_or(node, *args)
            case Not():
                return self.visit_not(node, *args)
            case _:
                assert_never(node)

    @abstractmethod
    def visit_is(self, node: Is, *args: Any) -> T:
        """``field:value`` (and free text when the field is None)."""

    @abstractmethod
    def visit_exists(self, node: Exists, *args: Any) -> T:
        """``field:*``."""

    @abstractmethod
    def visit_matchall(self, node: MatchAll, *args: Any) -> T:
        """The empty query and ``*:*``."""

    @abstractmethod
    def visit_range(self, node: Range, *args: Any) -> T:
        """``field < value`` and the other comparisons."""

    @abstractmethod
    def visit_nested(self, node: Nested, *args: Any) -> T:
        """``field:{ query }``."""

    @abstractmethod
    def visit_and(self, node: And, *args: Any) -> T:
        """Conjunction."""

    @abstractmethod
    def visit_or(self, node: Or, *args: Any) -> T:
        """Disjunction."""

    @abstractmethod
    def visit_not(self, node: Not, *args: Any) -> T:
        """Negation."""

    @classmethod
    def missing_methods(cls) -> list[str]:
        """Node kinds this backend has no visitor for (used by coverage tests)."""
        abstract: frozenset[str] = getattr(cls, "__abstractmethods__", frozenset())
        return [t.__name__.lower() for t in NODE_TYPES
                if f"visit_{t.__name__.lower()}" in abstract]
