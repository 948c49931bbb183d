"""Anchor contenders for the benchmark, each run as its own subprocess.

``python bench/anchors.py NAME FILE`` runs one contender over FILE and prints
one JSON object on stdout: at least ``{"count": <matching events or lines>}``.
Each contender imports only what it needs, so ``auparse`` can run under the
system interpreter (``/usr/bin/python3``, where Debian's ``python3-audit``
lives) without orjson or msgspec.

Contenders:

* ``lines``    - a plain ``for line in file`` loop (binary), counting lines.
* ``orjson``   - ``orjson.loads`` on every line plus the hand-written seed-rule predicate.
* ``msgspec``  - msgspec typed structs that decode only the fields the rule reads.
* ``duckdb``   - DuckDB ``read_ndjson`` with the equivalent SQL filter, 2 threads.
* ``auparse``  - libauparse (``python3-audit``) over a raw audit log: decode every
  exec event's arguments, apply the predicate, and digest the decoded arguments
  the same way ``gen_audit`` does, so decoding can be compared with the truth.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any

import seedrule


def run_lines(path: str) -> dict[str, Any]:
    """Count lines with a plain Python loop."""
    n = 0
    with open(path, "rb") as f:
        for _line in f:
            n += 1
    return {"count": n}


def _event_id(doc: dict[str, Any]) -> str | None:
    ev = doc.get("event")
    if isinstance(ev, dict):
        v = ev.get("id")
        return v if isinstance(v, str) else None
    v = doc.get("event.id")
    return v if isinstance(v, str) else None


def run_orjson(path: str) -> dict[str, Any]:
    """Decode every line with orjson and apply the predicate."""
    import orjson

    loads = orjson.loads
    matches = seedrule.matches
    ids: list[str | None] = []
    with open(path, "rb") as f:
        for line in f:
            doc = loads(line)
            if matches(doc):
                ids.append(_event_id(doc))
    return {"count": len(ids), "ids": ids}


def run_msgspec(path: str) -> dict[str, Any]:
    """Decode only the needed fields into msgspec structs and apply the predicate."""
    import msgspec
    from _msgspec_structs import Doc, Flat

    fields = seedrule.matches_fields
    ids: list[str | None] = []
    with open(path, "rb") as f:
        first = f.readline()
        f.seek(0)
        if b'"process.' in first or b'"event.' in first:
            fdec = msgspec.json.Decoder(Flat).decode
            for line in f:
                d = fdec(line)
                if fields(d.os_type, d.category, d.action, d.name, d.args, d.executable):
                    ids.append(d.id)
        else:
            dec = msgspec.json.Decoder(Doc).decode
            for line in f:
                doc = dec(line)
                h, e, p = doc.host, doc.event, doc.process
                if h is None or h.os is None or e is None or p is None:
                    continue
                if fields(h.os.type, e.category, e.action, p.name, p.args, p.executable):
                    ids.append(e.id)
    return {"count": len(ids), "ids": ids}


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def seed_rule_sql(args: str, name: str, exe: str) -> str:
    """The seed rule's tool and path groups as a DuckDB SQL condition."""
    names = ", ".join(_sql_str(n) for n in sorted(seedrule.NAME_EXACT))
    prefixes = " OR ".join(f"starts_with({name}, {_sql_str(p)})" for p in seedrule.NAME_PREFIXES)
    tools = ", ".join(_sql_str(t) for t in sorted(seedrule.ARG_TOOLS))
    execs = " OR ".join(f"starts_with({exe}, {_sql_str(p)})" for p in seedrule.EXEC_PREFIXES)
    exact = ", ".join(_sql_str(p) for p in seedrule.EXACT_PATHS)
    suffixes = " OR ".join(f"suffix(x, {_sql_str(s)})" for s in seedrule.SUFFIX_PATTERNS)
    middles = " OR ".join(f"x LIKE {_sql_str('%' + m + '%.json')}" for m in seedrule.MIDDLE_JSON_PATTERNS)
    return (
        f"({name} IN ({names}) OR {prefixes} OR list_has_any({args}, [{tools}]) OR {execs})"
        f" AND len(list_filter({args}, lambda x: x IN ({exact}) OR {suffixes} OR {middles})) > 0"
    )


def run_duckdb(path: str, threads: int = 2) -> dict[str, Any]:
    """DuckDB ``read_ndjson`` with explicit columns and the equivalent SQL filter."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={threads}")
    with open(path, "rb") as f:
        flat = b'"process.' in f.readline()
    if flat:
        cols = ("{'host.os.type': 'VARCHAR', 'event.category': 'VARCHAR[]', 'event.action': 'VARCHAR', "
                "'event.id': 'VARCHAR', 'process.name': 'VARCHAR', 'process.executable': 'VARCHAR', "
                "'process.args': 'VARCHAR[]'}")
        cond = (
            '"host.os.type" = \'linux\' AND list_contains("event.category", \'process\') '
            "AND \"event.action\" IN ('exec', 'executed') AND "
            + seed_rule_sql('"process.args"', '"process.name"', '"process.executable"')
        )
        idcol = '"event.id"'
    else:
        cols = ("{'host': 'STRUCT(os STRUCT(type VARCHAR))', "
                "'event': 'STRUCT(category VARCHAR[], action VARCHAR, id VARCHAR)', "
                "'process': 'STRUCT(name VARCHAR, executable VARCHAR, args VARCHAR[])'}")
        cond = (
            "host.os.type = 'linux' AND list_contains(event.category, 'process') "
            "AND event.action IN ('exec', 'executed') AND "
            + seed_rule_sql("process.args", "process.name", "process.executable")
        )
        idcol = "event.id"
    sql = (f"SELECT {idcol} FROM read_ndjson({_sql_str(path)}, columns={cols}, "
           f"maximum_object_size=67108864) WHERE {cond}")
    ids = [r[0] for r in con.execute(sql).fetchall()]
    return {"count": len(ids), "ids": ids}


def run_auparse(path: str) -> dict[str, Any]:
    """libauparse over a raw audit log: decode exec events, predicate, args digest."""
    import auparse  # Debian python3-audit; system interpreter

    au = auparse.AuParser(auparse.AUSOURCE_FILE, path)
    decoded: list[tuple[int, bytes]] = []
    matched: list[int] = []
    events = 0
    while au.parse_next_event():
        events += 1
        serial = au.get_timestamp().serial
        comm = exe = None
        is_exec = False
        args: dict[int, bytes] = {}
        chunks: dict[int, list[tuple[int, bytes]]] = {}
        au.first_record()
        while True:
            rtype = au.get_type_name()
            if rtype == "SYSCALL":
                if au.find_field("syscall") and au.get_field_str() == "59":
                    is_exec = True
                if au.find_field("comm"):
                    comm = au.interpret_field()
                if au.find_field("exe"):
                    exe = au.interpret_field()
            elif rtype == "EXECVE":
                au.first_field()
                while True:
                    fname = au.get_field_name()
                    if fname and fname[0] == "a" and fname != "argc" and not fname.endswith("_len"):
                        if "[" in fname:
                            num, part = fname[1:-1].split("[")
                            raw = au.get_field_str()
                            val = raw[1:-1].encode() if raw.startswith('"') else bytes.fromhex(raw)
                            chunks.setdefault(int(num), []).append((int(part), val))
                        else:
                            args[int(fname[1:])] = au.interpret_field().encode("utf-8", "surrogateescape")
                    if not au.next_field():
                        break
            if not au.next_record():
                break
        if not is_exec:
            continue
        for num, parts in chunks.items():
            args[num] = b"".join(v for _, v in sorted(parts))
        argv = [args[i] for i in sorted(args)]
        decoded.append((serial, b"\x00".join(argv)))
        strs = [a.decode("utf-8", "replace") for a in argv]
        if seedrule.matches_fields("linux", "process", "executed", comm, strs, exe):
            matched.append(serial)
    digest = hashlib.sha256()
    for serial, joined in sorted(decoded):
        digest.update(f"{serial}".encode() + b"\x00" + joined + b"\x01")
    matched.sort()
    return {"count": len(matched), "ids": matched, "events": events, "exec_events": len(decoded), "args_digest": digest.hexdigest()}


CONTENDERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "lines": run_lines,
    "orjson": run_orjson,
    "msgspec": run_msgspec,
    "duckdb": run_duckdb,
    "auparse": run_auparse,
}


def main(argv: list[str]) -> int:
    """``anchors.py NAME FILE``: run one contender and print its JSON result."""
    if len(argv) != 2 or argv[0] not in CONTENDERS:
        sys.stderr.write(f"usage: anchors.py {{{','.join(CONTENDERS)}}} FILE\n")
        return 2
    result = CONTENDERS[argv[0]](argv[1])
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
