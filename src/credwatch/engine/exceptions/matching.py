"""Evaluating exception items against events (Kibana's ``build_exception_filter.ts``).

Each entry is compiled once into a predicate; wildcard entries use the shared
linear-time matcher (:mod:`credwatch.kql.wildcard`), so a long argument
against a many-star pattern costs time linear in the argument.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credwatch.engine.exceptions.loading import ValueLists
from credwatch.engine.exceptions.model import (
    Entry,
    Event,
    ExceptionItem,
    ExceptionList,
    ExceptionListError,
    Predicate,
)
from credwatch.engine.exceptions.model import value_text as _text
from credwatch.kql.wildcard import es_wildcard_matcher
from credwatch.normalize.flatten import get_objects, get_values


def _ip_test(values: Sequence[str], with_ranges: bool, where: str) -> Callable[[Any], bool]:
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    ranges: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address,
                       ipaddress.IPv4Address | ipaddress.IPv6Address]] = []
    for raw in values:
        try:
            if with_ranges and "-" in raw:
                lo, hi = raw.split("-", 1)
                ranges.append((ipaddress.ip_address(lo.strip()), ipaddress.ip_address(hi.strip())))
            else:
                nets.append(ipaddress.ip_network(raw, strict=False))
        except ValueError:
            raise ExceptionListError(f"{where}: value list entry {raw!r} is not an IP, CIDR"
                                     + (" or range" if with_ranges else "")) from None

    def test(v: Any) -> bool:
        try:
            ip = ipaddress.ip_address(str(v))
        except ValueError:
            return False
        if any(ip.version == n.version and ip in n for n in nets):
            return True
        return any(lo.version == ip.version and lo <= ip <= hi for lo, hi in ranges)  # type: ignore[operator]
    return test


# Complexity: one flat branch per Kibana exception entry type and operator (match, match_any,
# wildcard, exists, list, nested x included/excluded), read as one table.
def _compile_entry(entry: Entry, prefix: str, value_lists: ValueLists, where: str) -> Predicate:  # noqa: C901
    path = f"{prefix}{entry.field}"
    positive: Predicate
    if entry.type == "nested":
        inner = [_compile_entry(e, "", value_lists, where) for e in entry.entries]

        def nested(ev: Event) -> bool:
            return any(all(p(obj) for p in inner) for obj in get_objects(ev, path))
        return nested
    if entry.type == "match":
        wanted = str(entry.value)

        def positive(ev: Event) -> bool:
            return any(_text(v) == wanted for v in get_values(ev, path))
    elif entry.type == "match_any":
        wanted_set = frozenset(entry.value or ())

        def positive(ev: Event) -> bool:
            return any(_text(v) in wanted_set for v in get_values(ev, path))
    elif entry.type == "wildcard":
        fits = es_wildcard_matcher(str(entry.value))

        def positive(ev: Event) -> bool:
            return any(fits(_text(v)) for v in get_values(ev, path))
    elif entry.type == "exists":
        def positive(ev: Event) -> bool:
            return bool(get_values(ev, path))
    else:
        values = value_lists.values(str(entry.list_id))
        if values is None:
            raise ExceptionListError(
                f"{where}, field {entry.field!r}: value list {entry.list_id!r} was not found; "
                "give its file with --value-list")
        if entry.list_type in ("ip", "ip_range"):
            ip_test = _ip_test(values, entry.list_type == "ip_range", where)

            def positive(ev: Event) -> bool:
                return any(ip_test(v) for v in get_values(ev, path))
        else:
            members = frozenset(values)

            def positive(ev: Event) -> bool:
                return any(_text(v) in members for v in get_values(ev, path))
    if entry.operator == "excluded":
        return lambda ev: not positive(ev)
    return positive


@dataclass(frozen=True, slots=True)
class _CompiledItem:
    item: ExceptionItem
    tests: tuple[Predicate, ...]

    def matches(self, event: Event) -> bool:
        if self.item.os_types:
            os_vals = {_text(v) for f in ("host.os.type", "host.os.name.caseless")
                       for v in get_values(event, f)}
            if not os_vals.intersection(self.item.os_types):
                return False
        return all(t(event) for t in self.tests)


class ExceptionFilter:
    """The compiled exceptions of one rule: :meth:`excluded_by` finds the matching item."""

    def __init__(self, items: Iterable[ExceptionItem], value_lists: ValueLists | None = None) -> None:
        vl = value_lists or ValueLists()
        compiled: list[_CompiledItem] = []
        self.expired = 0
        for item in items:
            where = f"{item.source or '<exceptions>'}, list {item.list_id!r}, item {item.item_id!r}"
            compiled.append(_CompiledItem(item, tuple(
                _compile_entry(e, "", vl, where) for e in item.entries)))
        self._items = compiled

    def __len__(self) -> int:
        return len(self._items)

    def active(self, now: datetime) -> ExceptionFilter:
        """This filter without the items that expired before ``now`` (Kibana drops them)."""
        clone = ExceptionFilter.__new__(ExceptionFilter)
        clone._items = [c for c in self._items
                        if c.item.expire_time is None or c.item.expire_time >= now]
        clone.expired = len(self._items) - len(clone._items)
        return clone

    def excluded_by(self, event: Event) -> ExceptionItem | None:
        """The first item that excludes ``event``, or None when the event stays."""
        for c in self._items:
            if c.matches(event):
                return c.item
        return None


@dataclass
class ExceptionSet:
    """Exception lists known to a run, and which rules they attach to."""

    lists: dict[tuple[str, str], ExceptionList] = field(default_factory=dict)
    #: Lists attached to every rule (``--exceptions FILE`` on the command line).
    global_keys: list[tuple[str, str]] = field(default_factory=list)
    value_lists: ValueLists = field(default_factory=ValueLists)

    def add(self, lists: Iterable[ExceptionList], *, attach_to_all: bool = False) -> None:
        """Register lists (later ones with the same key replace earlier ones)."""
        for lst in lists:
            self.lists[lst.key] = lst
            if attach_to_all and lst.key not in self.global_keys:
                self.global_keys.append(lst.key)

    def for_rule(self, refs: Iterable[tuple[str, str]]) -> tuple[ExceptionFilter, list[str]]:
        """The filter for a rule referencing ``refs`` plus the global lists, and warnings."""
        keys: list[tuple[str, str]] = []
        warnings: list[str] = []
        for key in [*refs, *self.global_keys]:
            if key in keys:
                continue
            if key not in self.lists:
                warnings.append(f"exception list {key[0]!r} ({key[1]}) referenced by the rule "
                                "was not found; import it or pass it with --exceptions")
                continue
            keys.append(key)
        items = [item for k in keys for item in self.lists[k].items]
        return ExceptionFilter(items, self.value_lists), warnings
