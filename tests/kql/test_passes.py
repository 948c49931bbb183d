"""The shared AST passes: iterative walk, field collection, value-list grouping."""

from __future__ import annotations

from credwatch.kql import parse
from credwatch.kql.ast import Is, Literal, Node, Not
from credwatch.kql.passes import ValueGroup, fields, group_values, value_list_field, walk
from credwatch.kql.passes import walk as walk_iter


def test_walk_is_iterative_and_in_source_order() -> None:
    deep: Node = Is(Literal("a"), Literal("b"))
    for _ in range(20_000):  # far past the recursion limit; only hand-built trees get here
        deep = Not(deep)
    assert len(list(walk(deep))) == 20_001
    ast = parse("a:1 and (b:2 or not c:3)")
    names = [n.field.text for n in walk_iter(ast) if isinstance(n, Is) and n.field]
    assert names == ["a", "b", "c"]


def test_fields_join_nested_paths_and_skip_wildcard_names() -> None:
    ast = parse("process.name:cat and items:{ name:a and sub:{ x > 1 } } or p.*:x or free "
                "or user.id:*")
    assert fields(ast) == ["process.name", "items.name", "items.sub.x", "user.id"]


def test_value_list_field() -> None:
    assert value_list_field(parse("f:(a or b and not c)")) == Literal("f")
    assert value_list_field(parse("f:a or g:b")) is None
    assert value_list_field(parse("f:a or f > 1")) is None


def test_group_values_keeps_each_group_where_its_first_member_stood() -> None:
    ast = parse("process.name:cat or process.name:head* or process.pid:1 or process.args:x "
                "or process.name:null or process.name:tail")
    items = group_values(ast.children, lambda name: name != "process.pid")  # type: ignore[union-attr]
    assert isinstance(items[0], ValueGroup)
    assert items[0].field == "process.name"
    assert items[0].literals == ["cat", "tail"] and items[0].patterns == [("head", "")]
    assert [type(i).__name__ for i in items] == ["ValueGroup", "Is", "Is", "Is"]
    assert items[3] == parse("process.name:null")
