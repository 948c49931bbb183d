"""``credwatch compile``: show a rule's query translated for another engine.

Examples::

    credwatch compile --target esdsl                  # the built-in rule as Kibana sends it
    credwatch compile --target duckdb --data events.ndjson
    credwatch compile --target spark --query 'process.name:cat'
    credwatch compile --target prefilter --input-format auditd
    credwatch compile --target kql --rule my-rule.toml
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from credwatch.backends.esdsl import compile_esdsl, to_json
from credwatch.backends.prefilter import AUDIT_VERBATIM_FIELDS, Prefilter, derive_literals
from credwatch.backends.sqlschema import SType
from credwatch.cli.common import add_input_format_arg
from credwatch.cli.env import Env, ExitStatus
from credwatch.errors import ConfigError
from credwatch.kql.ast import Node
from credwatch.kql.parser import parse
from credwatch.kql.passes import fields
from credwatch.kql.printer import to_kql
from credwatch.rules.loader import default_rule, resolve_rules

TARGETS = ("esdsl", "duckdb", "spark", "kql", "prefilter")

#: ECS fields that hold arrays, used for the assumed schema when no --data is given.
_ARRAY_FIELDS = frozenset({"process.args", "event.category", "event.type", "host.ip", "host.mac",
                           "related.ip", "related.user", "tags", "threat.technique.id"})


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``compile`` command."""
    parser = subparsers.add_parser(
        "compile", help="translate a rule's KQL to Elasticsearch DSL, DuckDB SQL, Spark SQL, "
        "canonical KQL or its literal prefilter",
        description="Print a rule's query as another engine runs it: the Elasticsearch query "
        "Kibana sends (esdsl), a DuckDB or Spark SQL filter over NDJSON, the canonical KQL, or "
        "the literal prefilter credwatch scans with.",
        epilog="examples:\n  credwatch compile --target esdsl\n"
        "  credwatch compile --target duckdb --data events.ndjson\n"
        "  credwatch compile --target spark --query 'process.name:cat'\n"
        "  credwatch compile --target prefilter --input-format auditd",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", "-t", choices=TARGETS, default="esdsl", metavar="TARGET",
                        help=f"what to translate to: {', '.join(TARGETS)} (default: esdsl)")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--rule", metavar="ID|PATH",
                     help="a built-in rule_id or name, or a rule file (default: the built-in rule)")
    src.add_argument("--query", metavar="KQL", help="translate this KQL query instead of a rule")
    parser.add_argument("--data", metavar="FILE",
                        help="duckdb/spark: an NDJSON file whose schema the SQL is compiled "
                        "against (default: nested ECS objects for the fields the query uses)")
    add_input_format_arg(parser, default="ndjson",
                         help="prefilter: the raw input the literals are scanned in (auditd for "
                              "audit.log; any other is JSON)")
    parser.add_argument("--compact", action="store_true", help="esdsl: one-line JSON")
    parser.set_defaults(func=run)


def _queries(args: argparse.Namespace) -> list[tuple[str, str]]:
    if args.query is not None:
        return [("--query", args.query)]
    rules = resolve_rules(args.rule) if args.rule else [default_rule()]
    return [(f"{r.name} ({r.rule_id})", r.query) for r in rules]


def assumed_schema(ast: Node) -> dict[str, SType]:
    """Nested ECS STRUCT columns for every field the query names (arrays where ECS has them)."""
    tree: dict[str, Any] = {}
    for name in fields(ast):
        node = tree
        parts = name.split(".")
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                break
            node = nxt
        else:
            node.setdefault(parts[-1], name)

    def build(value: Any) -> SType:
        if isinstance(value, dict):
            return SType("struct", fields=tuple((k, build(v)) for k, v in value.items()))
        leaf = SType("str")
        return SType("list", elem=leaf) if value in _ARRAY_FIELDS else leaf

    return {k: build(v) for k, v in tree.items()}


def _sql(target: str, ast: Node, data: str | None) -> str:
    schema: Mapping[str, SType]
    if target == "duckdb":
        from credwatch.backends import duckdb as db

        if data:
            con = db.connect()
            schema = db.schema_of(con.sql(f"SELECT * FROM {db.read_sql(data)}"))
            return db.show_sql(ast, schema, source=db.read_sql(data))
        return ("-- schema assumed: nested ECS objects; use --data FILE for a real file's schema\n"
                + db.show_sql(ast, assumed_schema(ast)))
    from credwatch.backends import spark as sp

    if data:
        session = sp.local_session()
        schema = sp.schema_of(sp.read_ndjson(session, data))
    else:
        schema = assumed_schema(ast)
    note = "" if data else "-- schema assumed: nested ECS objects; use --data FILE for a real one\n"
    return (note + "-- df = spark.read.json(path, primitivesAsString=True)\n"
            f"-- df.filter(F.expr(...)) with:\n{sp.compile_spark(ast, schema)}")


def _prefilter(ast: Node, fmt: str) -> str:
    fields = AUDIT_VERBATIM_FIELDS if fmt == "audit" else None
    literals = derive_literals(ast, fields=fields)
    if literals is None:
        return "# no prefilter: every event must be evaluated"
    lines = [f"# {len(literals)} literals; an event can match only if its raw bytes hold one"]
    if fmt == "audit":
        pre = Prefilter(literals, "audit")
        routed = sorted(pre.patterns - {x.encode() for x in literals}
                        - {x.encode().hex().upper().encode() for x in literals})
        lines += ["# (also as uppercase hex; lines holding "
                  + ", ".join(repr(p.decode()) for p in routed) + " always go",
                  "# to the full evaluator)"]
    else:
        # What sources/prefiltered finds: slashes in every JSON spelling, and the lines whose
        # escapes could spell one of the literals' other characters, decoded and looked at again.
        lines += ["# (a '/' also as '\\/' or '\\u002f'; a line with a JSON escape that can",
                  "# spell another character of a literal is decoded and checked again)"]
    lines.extend(json.dumps(lit, ensure_ascii=False) for lit in sorted(literals))
    return "\n".join(lines)


def translate(target: str, query: str, data: str | None = None, input_format: str = "ndjson",
              compact: bool = False) -> str:
    """Translate one KQL query for ``target`` (the text ``compile`` prints)."""
    ast = parse(query)
    if target == "esdsl":
        return to_json(compile_esdsl(ast), None if compact else 2)
    if target == "kql":
        return to_kql(ast)
    if target == "prefilter":
        return _prefilter(ast, input_format)
    if target in ("duckdb", "spark"):
        return _sql(target, ast, data)
    raise ConfigError(f"unknown target {target!r} (choose from {', '.join(TARGETS)})")


def run(args: argparse.Namespace, env: Env) -> int:
    """Print the translation of each selected rule's query."""
    queries = _queries(args)
    for i, (title, query) in enumerate(queries):
        raw = "audit" if args.input_format == "auditd" else "ndjson"
        text = translate(args.target, query, args.data, raw, args.compact)
        if len(queries) > 1:
            env.stdout.write(("\n" if i else "") + f"# {title}\n")
        env.stdout.write(text + "\n")
    return ExitStatus.OK
