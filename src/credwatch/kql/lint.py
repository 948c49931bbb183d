"""A linter for KQL queries: things that parse but probably do not mean what was meant.

Severity ``error`` means the query matches something different from what its
author plainly intended (the merged-pattern bug upstream shipped in v2 of the
seed rule); ``warning`` is likely wrong; ``hint`` is worth a look.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from lark import Lark, Token, Tree

from credwatch.errors import KqlSyntaxError, caret_excerpt
from credwatch.kql.ast import Is, Literal, Node, Or, Wildcard
from credwatch.kql.fields import KEYWORD_LIKE, field_type
from credwatch.kql.parser import parse
from credwatch.kql.passes import walk
from credwatch.kql.printer import print_value

ERROR = "error"
WARNING = "warning"
HINT = "hint"

#: ECS fields whose allowed values are all lower-case.
_LOWERCASE_FIELDS = frozenset({"event.category", "event.type", "event.kind", "event.outcome",
                               "host.os.type", "event.action", "data_stream.type"})
_KEYWORD_TOKEN = re.compile(r"(?i:or|and|not)")


@dataclass(frozen=True, slots=True)
class Finding:
    """One linter finding with a 1-based position in the query."""

    code: str
    severity: str
    message: str
    line: int
    column: int
    offset: int
    excerpt: str

    def render(self, source: str = "query") -> str:
        """``source:line:col: severity[code] message`` plus the caret excerpt."""
        return (f"{source}:{self.line}:{self.column}: {self.severity}[{self.code}] "
                f"{self.message}\n{self.excerpt}")


@lru_cache(maxsize=1)
def _token_parser() -> Lark:
    grammar = resources.files("credwatch.kql").joinpath("grammar.lark").read_text("utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", keep_all_tokens=True)


def _tokens(tree: Tree[Token] | Token) -> list[Token]:
    """The tokens of a parse tree in source order (iterative)."""
    out: list[Token] = []
    stack: list[Tree[Token] | Token] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Token):
            out.append(node)
        else:
            stack.extend(reversed(node.children))
    return out


class _Collector:
    def __init__(self, query: str) -> None:
        self.query = query
        self.findings: list[Finding] = []

    def add(self, code: str, severity: str, message: str, offset: int) -> None:
        line = self.query.count("\n", 0, offset) + 1
        column = offset - (self.query.rfind("\n", 0, offset) + 1) + 1
        self.findings.append(Finding(code, severity, message, line, column, offset,
                                     caret_excerpt(self.query, line, column)))


def _unescaped_star_positions(raw: str) -> list[int]:
    out = []
    i = 0
    while i < len(raw):
        if raw[i] == "\\":
            i += 2
            continue
        if raw[i] == "*":
            out.append(i)
        i += 1
    return out


def _check_token(tok: Token, col: _Collector) -> None:
    raw = str(tok)
    start = tok.start_pos or 0
    if tok.type == "UNQUOTED":
        body = raw.strip()
        lead = len(raw) - len(raw.lstrip())
        stars = _unescaped_star_positions(body)
        if "\n" in body or "\r" in body:
            first = body.splitlines()[0].strip()
            col.add("KQL001", ERROR,
                    f"unquoted value '{first}…' continues onto the next line, so Kibana reads "
                    "both lines as ONE value (and, with '*', one pattern that never matches "
                    "either path). This is usually a missing 'or'.",
                    start + lead)
        elif stars and any(
            (p > 0 and body[p - 1].isspace()) or (p + 1 < len(body) and body[p + 1].isspace())
            for p in stars
        ):
            col.add("KQL002", ERROR,
                    f"whitespace next to '*' inside the unquoted value '{body}': Kibana keeps "
                    "inner whitespace, so this is one pattern, not two. Is an 'or' missing?",
                    start + lead)
        if "?" in body:
            col.add("KQL003", WARNING,
                    f"'?' is not a wildcard in KQL; '{body}' matches a literal '?'. "
                    "Use '*' or remove it.", start + lead + body.index("?"))
    elif tok.type in ("_OR", "_AND", "_NOT"):
        m = _KEYWORD_TOKEN.search(raw)
        if m:
            word = m.group(0)
            if word != word.lower() and word != word.upper():
                col.add("KQL004", WARNING,
                        f"keyword '{word}' is in mixed case; Kibana accepts it, but write "
                        f"'{word.lower()}' so that readers (and other tools) agree.",
                        start + m.start())


# Complexity: one pass over the tree with one independent check per node kind; each check is a
# few lines and splitting them would walk the tree once per check.
def _check_ast(ast: Node, col: _Collector) -> None:  # noqa: C901
    by_field: dict[str, dict[str, list[Is]]] = {}
    for node in walk(ast):
        if isinstance(node, Or):
            seen: dict[tuple[str, str, bool, bool], Is] = {}
            for child in node.children:
                if not isinstance(child, Is) or child.field is None:
                    continue
                key = (child.field.text, child.value.text, isinstance(child.value, Wildcard),
                       isinstance(child.value, Literal) and child.value.quoted)
                if key in seen:
                    col.add("KQL005", WARNING,
                            f"duplicate value {print_value(child.value)} for "
                            f"{child.field.text} in one list", max(child.pos, 0))
                else:
                    seen[key] = child
        if isinstance(node, Is) and node.field is not None and isinstance(node.field, Literal):
            name = node.field.text
            if isinstance(node.value, Literal) and node.value.value is None:
                col.add("KQL006", WARNING,
                        f"'{name}:null' never matches: null is not a searchable value. "
                        "Use 'not " + name + ":*' for a missing field, or quote \"null\".",
                        max(node.pos, 0))
            if field_type(name) in KEYWORD_LIKE:
                by_field.setdefault(name, {}).setdefault(node.value.text.lower(), []).append(node)
    for name, groups in by_field.items():
        for variants in groups.values():
            texts = {n.value.text for n in variants}
            if len(texts) > 1:
                for node in variants:
                    if node.value.text != node.value.text.lower():
                        col.add("KQL007", HINT,
                                f"{name} is a keyword field and matching is case-sensitive: "
                                f"{print_value(node.value)} and its lower-case twin are "
                                "different values; this one may never match.",
                                max(node.pos, 0))
        if name in _LOWERCASE_FIELDS:
            for variants in groups.values():
                for node in variants:
                    if node.value.text != node.value.text.lower() and len(
                        {n.value.text for n in variants}) == 1:
                        col.add("KQL007", HINT,
                                f"{name} values are lower-case in ECS; "
                                f"{print_value(node.value)} never matches (case-sensitive).",
                                max(node.pos, 0))


#: An unquoted value ending (or starting) with a boolean keyword: Kibana reads the keyword as
#: part of the value (``process.name:cat and`` is the one value "cat and").
_DANGLING = re.compile(r"(?i:^(and|or|not)\s|\s(and|or|not)$)")
#: A dotted lower-case name whose first part is an ECS field set: ``process.executable``.
_FIELD_LIKE = re.compile(r"[a-z_@][a-z0-9_]*(?:\.[a-z0-9_]+)+")
_ECS_SETS = frozenset({
    "agent", "client", "cloud", "container", "data_stream", "destination", "dns", "ecs", "event",
    "file", "group", "host", "http", "kibana", "log", "network", "orchestrator", "process",
    "related", "rule", "server", "service", "source", "threat", "url", "user", "user_agent"})


def _check_values(ast: Node, col: _Collector) -> None:
    """Values Kibana accepts that are almost certainly mistakes (KQL008, KQL009)."""
    for node in walk(ast):
        if not isinstance(node, Is) or not isinstance(node.value, Literal):
            continue
        value = node.value
        if value.quoted or not isinstance(value.value, str):
            continue
        text = value.value
        at = max(value.pos, node.pos, 0)
        m = _DANGLING.search(text)
        if m:
            word = (m.group(1) or m.group(2)).lower()
            col.add("KQL008", WARNING,
                    f"dangling '{word}': Kibana reads it as part of the value, so this matches "
                    f"the one value '{text}'. Finish the expression, or quote the value if "
                    "that is what you mean.", at)
        elif (_FIELD_LIKE.fullmatch(text) and text.split(".", 1)[0] in _ECS_SETS
              and node.field is not None):
            col.add("KQL009", WARNING,
                    f"the value '{text}' looks like a field name: KQL compares a field with "
                    "literal text, never with another field. Quote it if the text is meant.", at)


def lint(query: str) -> list[Finding]:
    """Lint ``query``. A query that does not parse yields one KQL000 error finding."""
    col = _Collector(query)
    try:
        ast = parse(query)
    except KqlSyntaxError as exc:
        col.add("KQL000", ERROR, exc.message, exc.offset)
        return col.findings
    tree = _token_parser().parse(query)
    for tok in _tokens(tree):
        _check_token(tok, col)
    _check_ast(ast, col)
    _check_values(ast, col)
    return sorted(col.findings, key=lambda f: (f.offset, f.code))


def has_errors(findings: list[Finding]) -> bool:
    """True if any finding is an error (something that changes what matches)."""
    return any(f.severity == ERROR for f in findings)
