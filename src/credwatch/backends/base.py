"""The visitor base class every backend derives from.

Dispatch is on the node class name (``visit_is``, ``visit_or`` ...), as
sqlglot dispatches ``<kind>_sql``. A backend that lacks a method for a node
kind raises :class:`~credwatch.errors.UnsupportedError` naming itself and the
node: a rule is never silently half-translated.
"""

from __future__ import annotations

from typing import Any, ClassVar, Generic, TypeVar

from credwatch.errors import UnsupportedError
from credwatch.kql.ast import NODE_TYPES, Node

T = TypeVar("T")


class Visitor(Generic[T]):
    """Dispatch ``visit(node)`` to ``visit_<kind>(node)``."""

    #: Human name of the target, used in error messages.
    name: ClassVar[str] = "backend"

    def visit(self, node: Node, *args: Any) -> T:
        """Translate one node; raise :class:`UnsupportedError` for unknown kinds."""
        kind = type(node).__name__.lower()
        method = getattr(self, f"visit_{kind}", None)
        if method is None:
            raise UnsupportedError(
                f"the {self.name} backend cannot express KQL node '{kind}'"
                + (f" at offset {node.pos}" if getattr(node, "pos", -1) >= 0 else "")
            )
        result: T = method(node, *args)
        return result

    @classmethod
    def missing_methods(cls) -> list[str]:
        """Node kinds this backend has no visitor for (used by coverage tests)."""
        return [t.__name__.lower() for t in NODE_TYPES
                if not hasattr(cls, f"visit_{t.__name__.lower()}")]
