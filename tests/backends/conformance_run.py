"""Shared plumbing for running the KQL conformance table against the SQL targets.

Each backend must give the expected answer for every case and every event
shape (as written, flat-dotted, nested), or raise ``UnsupportedError`` for a
case listed in its ``UNSUPPORTED`` table with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.kql.conformance import Case, event_forms, load_cases

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
