"""Every backend handles every AST node kind, or says loudly that it cannot.

A backend class must define ``visit_<kind>`` for each kind in ``NODE_TYPES``;
where a target cannot express a node, the method raises UnsupportedError. A
visitor without a method falls back to ``Visitor.visit``, which raises
UnsupportedError naming the backend and the node: never a silent skip.
"""

from __future__ import annotations

from typing import Any

import pytest

from credwatch.backends.base import Visitor
from credwatch.backends.duckdb import DuckDbBackend
from credwatch.backends.esdsl import EsDslBackend
from credwatch.backends.prefilter import LiteralDeriver
from credwatch.backends.python import PythonEvaluator
from credwatch.backends.spark import SparkBackend
from credwatch.backends.sqlschema import SType
from credwatch.errors import UnsupportedError
from credwatch.kql import parse
from credwatch.kql.ast import NODE_TYPES, Is

SCHEMA = {"a": SType("str"), "items": SType("list", elem=SType("struct", fields=(
    ("name", SType("str")),)))}

BACKENDS: dict[str, Any] = {
    "python": lambda: PythonEvaluator(),
    "prefilter": lambda: LiteralDeriver(),
    "esdsl": lambda: EsDslBackend(),
    "duckdb": lambda: DuckDbBackend(SCHEMA),
    "spark": lambda: SparkBackend(SCHEMA),
}

#: One query per node kind, so each visit method actually runs.
SAMPLES = {
    "is": "a:x", "exists": "a:*", "matchall": "*:*", "range": "a > x",
    "nested": "items:{ name:a }", "and": "a:x and a:y", "or": "a:x or a:y", "not": "not a:x",
}


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_has_a_method_for_every_node_kind(name: str) -> None:
    backend = BACKENDS[name]()
    assert type(backend).missing_methods() == []


@pytest.mark.parametrize("name", sorted(BACKENDS))
@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_kind_translates(name: str, kind: str) -> None:
    ast = parse(SAMPLES[kind])
    assert type(ast).__name__.lower() == kind
    BACKENDS[name]().visit(ast)  # must not raise


def test_samples_cover_every_kind() -> None:
    assert set(SAMPLES) == {t.__name__.lower() for t in NODE_TYPES}


def test_a_missing_method_fails_loudly() -> None:
    """A backend without a method for some kind cannot be built at all (mypy says so too)."""

    class Partial(Visitor[str]):
        name = "partial"

        def visit_is(self, node: Is, *args: Any) -> str:
            return "is"

    assert "matchall" in Partial.missing_methods() and "is" not in Partial.missing_methods()
    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]


@pytest.mark.parametrize("name", ["esdsl", "duckdb", "spark", "python"])
def test_wildcard_nested_path_is_unsupported(name: str) -> None:
    with pytest.raises(UnsupportedError):
        BACKENDS[name]().visit(parse("it*:{ name:a }"))
