"""A sound literal prefilter derived from a rule's AST.

:func:`derive_literals` walks the AST and returns a set of strings such that
every event the rule can match contains at least one of them *as a value
substring*, or ``None`` when no such set exists ("cannot prefilter"):

* ``f:value`` on a keyword-like field → ``{value}`` (a number-looking value
  gives ``None``: ``5`` may be written ``5.0`` or ``5e0``; an empty value
  gives ``None``; ``null`` never matches and gives the empty set);
* ``f:a*b*c`` → the longest run between stars, if it is at least
  :data:`MIN_FRAGMENT` characters, else ``None``;
* ``and`` → the most selective child set (longest shortest literal, then
  fewest literals); ``or`` → the union (``None`` if any child is ``None``);
* ``not``, ``exists``, ranges, free text, wildcard field names, and typed
  (number, ip, date, boolean, text) fields → ``None``;
* ``f:{q}`` → the set of ``q``;
* ``credwatch.normalized.*:v`` (derived after reading) → one fixed piece of
  ``v`` plus :data:`QUOTE_ROUTES`, NDJSON only (audit: ``None``); an ``and``
  prefers such a set (see :func:`credwatch.normalize.derived.derived_literal`).

:class:`Prefilter` turns the set into byte patterns for one input *format*
(the readers in ``sources`` scan for them with their own engines).

The soundness contract, per format:

``ndjson``
    A JSON string holds the literal's UTF-8 bytes unless the serializer
    escaped a character (``\\/``, ``\\uXXXX``, ``\\"``, ``\\\\``, control
    characters; JSON lets a writer escape *any* character). Escapes always
    contain a backslash and a JSON text has no backslash outside strings, so
    **every line containing a ``\\`` byte is a candidate** (routed to the full
    evaluator). Without a backslash, string contents are their raw UTF-8.

``audit``
    ``aN=`` values are either quoted raw text or uppercase hex of the whole
    argument (the kernel hex-encodes a value containing a space, a quote, a
    control or a non-ASCII byte), so each literal is also emitted as
    uppercase hex. A long argument is split into ``aN[k]=`` hex chunks and a
    literal can straddle a chunk boundary, so **every record containing
    ``_len=`` is a candidate**. Only fields copied verbatim from a record
    (:data:`AUDIT_VERBATIM_FIELDS`) contribute literals; derived fields such as
    ``event.action`` or ``host.os.type`` never appear in the raw bytes. An
    event is a candidate when *any* of its records is.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar
from typing import Literal as TypingLiteral

from credwatch.backends.base import Visitor
from credwatch.backends.pymatch import to_number
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
    Wildcard,
)
from credwatch.kql.fields import KEYWORD_LIKE, field_type
from credwatch.kql.parser import parse
from credwatch.normalize.derived import derived_literal

Literals = frozenset[str] | None
Format = TypingLiteral["ndjson", "audit"]

#: Shortest wildcard fragment worth scanning for (shorter ones give ``None``).
MIN_FRAGMENT = 3

#: ECS fields whose values the audit normalizer copies verbatim from one record.
AUDIT_VERBATIM_FIELDS: frozenset[str] = frozenset({
    "process.args", "process.executable", "process.name", "process.working_directory",
    "file.path", "process.command_line",
})

#: Fields credwatch derives before evaluation (credwatch.normalize.paths): never in raw input.
DERIVED_PREFIX = "credwatch.normalized."
#: Literals that route NDJSON lines holding shell quoting inside a string to the full
#: evaluator: a single quote, and a double quote or backslash as JSON writes them (``\"``,
#: ``\\``, ``\u0022``, ``\u005c``). Quotes spliced into a word (``cred''entials``) hide
#: a derived path's fragment from the raw line. :data:`QUOTE_ROUTE` marks such a set.
QUOTE_ROUTE = "'"
QUOTE_ROUTES = frozenset({QUOTE_ROUTE, '\\"', "\\\\", "\\u0022", "\\u005c", "\\u005C"})

#: Extra patterns that make a raw line a candidate regardless of the literals.
ROUTE_TO_FULL: Mapping[str, tuple[bytes, ...]] = {"ndjson": (b"\\",), "audit": (b"_len=",)}


class LiteralDeriver(Visitor[Literals]):
    """Compute the literal set of each node (see the module docstring)."""

    name: ClassVar[str] = "prefilter"

    def __init__(self, field_types: Mapping[str, str] | None = None,
                 fields: Collection[str] | None = None, prefix: str = "") -> None:
        self.field_types = dict(field_types or {})
        self.fields = fields
        self.prefix = prefix

    def _usable_field(self, node: Is) -> str | None:
        field = node.field
        if not isinstance(field, Literal) or not isinstance(field.value, str):
            return None  # free text or a wildcard field name: any field, any type
        name = self.prefix + field.value
        if self.fields is not None and name not in self.fields:
            return None
        if field_type(name, self.field_types) not in KEYWORD_LIKE:
            return None
        return name

    def visit_is(self, node: Is) -> Literals:
        name = self._usable_field(node)
        if name is None:
            return None
        if name.startswith(DERIVED_PREFIX):
            # Derived after reading (credwatch.normalize): a fixed piece of the path is in
            # the event's strings once shell quotes and backslashes are removed, so lines
            # holding those in a string (QUOTE_ROUTES) go to the full evaluator.
            # Audit lines never get here: derived fields are not verbatim fields.
            literal = derived_literal(node)
            return None if literal is None else frozenset({literal}) | QUOTE_ROUTES
        value = node.value
        if isinstance(value, Wildcard):
            best = max(value.parts, key=len)
            return frozenset({best}) if len(best) >= MIN_FRAGMENT else None
        if value.value is None:
            return frozenset()  # `f:null` never matches (see pymatch.equals_test)
        text = value.text
        if not text or to_number(text) is not None:
            return None
        return frozenset({text})

    def visit_exists(self, node: Exists) -> Literals:
        return None

    def visit_matchall(self, node: MatchAll) -> Literals:
        return None

    def visit_range(self, node: Range) -> Literals:
        return None

    def visit_not(self, node: Not) -> Literals:
        return None

    def visit_nested(self, node: Nested) -> Literals:
        if not isinstance(node.field, Literal):
            return None
        inner = LiteralDeriver(self.field_types, self.fields, f"{self.prefix}{node.field.text}.")
        return inner.visit(node.query)

    def visit_or(self, node: Or) -> Literals:
        out: set[str] = set()
        for child in node.children:
            sub = self.visit(child)
            if sub is None:
                return None
            out |= sub
        return frozenset(out)

    def visit_and(self, node: And) -> Literals:
        sets = [s for s in (self.visit(c) for c in node.children) if s is not None]
        # Any child's set is sound; a derived comparison's (the file a rule is about) is
        # preferred over generic co-conditions such as event.category:process.
        derived = [s for s in sets if QUOTE_ROUTE in s]
        return max(derived or sets, key=selectivity) if sets else None


def selectivity(literals: frozenset[str]) -> tuple[float, int]:
    """Sort key: larger is more selective (longest shortest literal, then fewest)."""
    if not literals:
        return (math.inf, 0)
    return (min(len(s.encode()) for s in literals), -len(literals))


def derive_literals(query: str | Node, field_types: Mapping[str, str] | None = None,
                    fields: Collection[str] | None = None) -> Literals:
    """The literal set of ``query`` (``None``: every event must be evaluated)."""
    ast = parse(query) if isinstance(query, str) else query
    return LiteralDeriver(field_types, fields).visit(ast)


def encodings(literal: str, fmt: Format) -> set[bytes]:
    """The byte forms ``literal`` can take in a raw line of format ``fmt``."""
    raw = literal.encode("utf-8")
    return {raw, raw.hex().upper().encode("ascii")} if fmt == "audit" else {raw}


@dataclass(frozen=True)
class ScanStats:
    """Counts from a bulk scan (for benchmarks and ``--stats``)."""

    lines: int
    candidates: int


class Prefilter:
    """The byte patterns of one rule for one input format (``compile --target prefilter``).

    ``literals is None`` means the rule cannot be prefiltered: every line is a
    candidate. An empty literal set means no event can match. The readers scan
    with their own engines (``sources.prefiltered``); :meth:`may_match` is the
    plain reference they are tested against.
    """

    def __init__(self, literals: Literals, fmt: Format = "ndjson") -> None:
        self.literals = literals
        self.format: Format = fmt
        self.patterns: frozenset[bytes] = frozenset()
        if literals is None:
            return
        pats: set[bytes] = set(ROUTE_TO_FULL[fmt])
        for lit in literals:
            pats |= encodings(lit, fmt)
        self.patterns = frozenset(pats)

    @classmethod
    def for_query(cls, query: str | Node, fmt: Format = "ndjson",
                  field_types: Mapping[str, str] | None = None) -> Prefilter:
        """Derive the prefilter of ``query`` for ``fmt``."""
        fields = AUDIT_VERBATIM_FIELDS if fmt == "audit" else None
        return cls(derive_literals(query, field_types, fields), fmt)

    @property
    def active(self) -> bool:
        """True when the prefilter can reject anything at all."""
        return self.literals is not None

    def may_match(self, line: bytes) -> bool:
        """False only when no event in ``line`` can match the rule."""
        if self.literals is None:
            return True
        # One substring search per pattern: linear in the line for a given rule.
        return any(p in line for p in self.patterns)


def count_candidates(prefilter: Prefilter, lines: Iterable[bytes]) -> ScanStats:
    """Count how many of ``lines`` pass ``prefilter.may_match``."""
    total = passed = 0
    for line in lines:
        total += 1
        passed += prefilter.may_match(line)
    return ScanStats(total, passed)
