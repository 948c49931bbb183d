"""Bounds on the nesting of rule and exception documents (JSON and TOML).

Rule files and exception exports are often downloaded from elsewhere and read
by a root process, so their shape is not trusted. Python's ``json`` and
``tomllib`` recurse once per nesting level, and so do the passes that later
copy, compare or re-serialise a document; a 100k-deep ``[[[[...`` would end in
a ``RecursionError`` (or worse, a crash in C). Real rule documents nest a
handful of levels, so anything deeper than :data:`MAX_DEPTH` is refused up
front with a position, before any recursive code sees it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_DEPTH", "DepthError", "check_json_depth", "check_value_depth"]

#: Deepest nesting of arrays and objects accepted in a rule or exception document.
MAX_DEPTH = 100

# Only the characters that change the nesting or string state matter.
_JSON_STRUCTURE = re.compile(r'[\[\]{}"\\]')


class DepthError(ValueError):
    """A document nests deeper than allowed; ``offset`` is where (0-based, -1 when unknown)."""

    def __init__(self, limit: int, offset: int = -1) -> None:
        self.limit = limit
        self.offset = offset
        super().__init__(f"nested deeper than {limit} levels")

    def where(self, text: str) -> str:
        """``line L, column C`` of the offending bracket in ``text`` (empty when unknown)."""
        if self.offset < 0:
            return ""
        line = text.count("\n", 0, self.offset) + 1
        column = self.offset - (text.rfind("\n", 0, self.offset) + 1) + 1
        return f"line {line}, column {column}"


def check_json_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`DepthError` if the JSON ``text`` nests deeper than ``limit``.

    One linear scan that skips string contents (and their escapes); it only
    counts, so malformed JSON is left for the real parser to report.
    """
    if text.count("[") + text.count("{") <= limit:
        return  # cannot be deeper than the number of openers
    depth = 0
    in_string = False
    skip = -1  # index of a character escaped by a backslash
    for m in _JSON_STRUCTURE.finditer(text):
        pos = m.start()
        if pos == skip:
            continue
        ch = m.group()
        if in_string:
            if ch == "\\":
                skip = pos + 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                raise DepthError(limit, pos)
        elif ch in "]}":
            depth -= 1


def check_value_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`DepthError` if a parsed document nests deeper than ``limit`` (iteratively)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth + 1 > limit:
            raise DepthError(limit)
        stack.extend((child, depth + 1) for child in children)
