"""Shared plumbing for running the KQL conformance table against the SQL targets.

Each backend must give the expected answer for every case and every event
shape (as written, flat-dotted, nested), or raise ``UnsupportedError`` for a
case listed in its ``UNSUPPORTED`` table with the reason.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from credwatch.timemath import ms_to_datetime, parse_instant
from tests.kql.conformance import Case, event_forms, load_cases

#: The table of cases that use `now`, rounding and months, with its fixed clock.
TIME_TABLE = Path(__file__).resolve().parent.parent / "fixtures" / "time" / "conformance_now.toml"

FORMS = ("as-written", "flat", "nested")

#: Cases the SQL targets reject with UnsupportedError: they compare IPv6 values,
#: and the generated SQL only does IPv4 arithmetic.
IPV6_CASES = frozenset({
    "ip-v6-canonical", "ip-v6-case", "ip-v6-cidr-in", "ip-v6-cidr-out", "ip-v6-escaped-colons",
    "ip-v4-mapped-v6", "ip-host-ip-array-v6-cidr", "ip-v6-all-contains-v4",
    "rng-ip-v4-above-v6-loopback", "rng-ip-v6-range",
})


@dataclass(frozen=True)
class Run:
    """One (case, event shape) pair to evaluate."""

    case: Case
    form: str
    event: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.case.id}[{self.form}]"


def all_runs() -> list[Run]:
    """Every case in every event shape."""
    return [Run(case, form, event) for case in load_cases()
            for form, event in event_forms(case.event).items()]


def _kinds(value: Any, path: str, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        out[path] = "object"
        for k, v in value.items():
            _kinds(v, f"{path}.{k}", out)
    elif isinstance(value, list):
        out[path] = "array"
        for v in value:
            _kinds(v, f"{path}[]", out)
    elif value is not None:
        out.setdefault(path, "scalar")


def _compatible(a: dict[str, str], b: dict[str, str]) -> bool:
    return all(a.get(k, v) == v for k, v in b.items())


def packs(runs: list[Run]) -> list[list[Run]]:
    """Group runs into tables whose events never give one field two shapes.

    (Spark widens a field that is a scalar in one row and an object or array
    in another into a raw JSON string.) Packing also makes each case run in a
    table where other rows hold other columns, which NULL handling must survive.
    """
    packs: list[tuple[dict[str, str], list[Run]]] = []
    for run in runs:
        kinds: dict[str, str] = {}
        _kinds(run.event, "", kinds)
        for sig, members in packs:
            if _compatible(sig, kinds):
                sig.update(kinds)
                members.append(run)
                break
        else:
            packs.append((kinds, [run]))
    return [members for _, members in packs]


def time_table() -> tuple[datetime, list[Case]]:
    """The fixed clock and the cases of the `now` conformance table."""
    with TIME_TABLE.open("rb") as fh:
        data = tomllib.load(fh)
    ms = parse_instant(data["now"])
    now = ms_to_datetime(ms) if ms is not None else None
    assert now is not None, f"{TIME_TABLE.name}: now must be an ISO-8601 instant"
    cases = [Case(id=raw["id"], query=raw["query"], event=json.loads(raw["event"]),
                  expected=raw["expected"], why=raw["why"], source=TIME_TABLE.name)
             for raw in data["case"]]
    assert len({c.id for c in cases}) == len(cases), "duplicate case id"
    return now, cases


TIME_NOW, TIME_CASES = time_table()


def time_runs() -> list[Run]:
    """Every `now` case in every event shape (evaluate them with ``now=TIME_NOW``)."""
    return [Run(case, form, event) for case in TIME_CASES
            for form, event in event_forms(case.event).items()]
