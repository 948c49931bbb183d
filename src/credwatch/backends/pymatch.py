"""Typed value tests: how one Elasticsearch field type answers one KQL value.

Each ``*_test`` function is built once per (field type, value) at compile time
and returns a predicate over a single scalar taken from an event. They follow
the query Kibana generates for that type (see ``kbn-es-query`` ``functions/is.ts``
and ``range.ts``): ``term``/``wildcard`` on keywords, a numeric ``term`` on
longs, CIDR on ``ip``, an instant on ``date``, and an analysed ``match`` /
``match_phrase`` / ``query_string`` on text.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from credwatch.errors import KqlCompileError
from credwatch.kql.fields import KEYWORD_LIKE, NUMERIC_TYPES, TEXT_TYPES

# The one linear-time matcher, shared with exception wildcards; re-exported for importers.
from credwatch.kql.wildcard import wildcard_matcher as wildcard_matcher
from credwatch.timemath import DateMath, DateMathError, check_date_math, now_ms, parse_instant

ValueTest = Callable[[Any], bool]


def keyword_text(value: Any) -> str:
    """The string Elasticsearch indexes for ``value`` in a keyword field."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        # JSON 1.0 is indexed from its source text; orjson gives 1.0 -> "1.0".
        return repr(value)
    return str(value)


# --- numbers ---------------------------------------------------------------------------------

def to_number(value: Any) -> float | None:
    """Coerce an event value the way a numeric mapping would index it (None if it cannot)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            num = float(value.strip())
        except ValueError:
            return None
        return num if math.isfinite(num) else None
    return None


INTEGRAL_TYPES = frozenset({"long", "integer", "short", "byte", "unsigned_long"})


def to_integral(value: Any) -> int | None:
    """Coerce an event value as an integral mapping does: exact ints, floats truncated."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            num = to_number(text)
            return int(num) if num is not None else None
    return None


def _numeric(ftype: str) -> Callable[[Any], float | int | None]:
    return to_integral if ftype in INTEGRAL_TYPES else to_number


def _query_number(field: str, ftype: str, text: str) -> float | int:
    num = _numeric(ftype)(text)
    if num is None:
        raise KqlCompileError(
            f"field '{field}' is of type {ftype}, and '{text}' is not a number "
            "(Elasticsearch rejects this query with a number_format_exception)"
        )
    return num


# --- dates -----------------------------------------------------------------------------------
#
# Parsing, date math and rounding live in credwatch.timemath (shared with the SQL
# and ES DSL targets). Bounds that use `now` are resolved when the test runs,
# against timemath.now_ms() (the engine's tick or batch time), cached per `now`.

#: For each comparison: (round the low bound up?, round the high bound up?, test).
#: ES rounds ``gt``/``lte`` bounds up to the unit's last millisecond and
#: ``gte``/``lt`` down; ``f:value`` is ``gte`` value and ``lte`` value.
_DATE_OPS: dict[str, tuple[bool, bool, Callable[[int, int, int], bool]]] = {
    "eq": (False, True, lambda d, lo, hi: lo <= d <= hi),
    "gt": (True, True, lambda d, lo, hi: d > hi),
    "gte": (False, False, lambda d, lo, hi: d >= lo),
    "lt": (False, False, lambda d, lo, hi: d < lo),
    "lte": (True, True, lambda d, lo, hi: d <= hi),
}


def query_date(field: str, text: str) -> DateMath:
    """Parse a query's date value for ``field``; a :class:`KqlCompileError` naming it if bad."""
    try:
        return check_date_math(text)
    except DateMathError as exc:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise KqlCompileError(
            f"field '{field}' is a date field, and {shown!r} is not a valid date: {exc.message} "
            f"(at character {exc.position + 1} of the value)") from None


def _date_test(field: str, text: str, op: str) -> ValueTest:
    expr = query_date(field, text)
    lo_up, hi_up, check = _DATE_OPS[op]
    if not expr.uses_now:
        lo, hi = expr.resolve_ms(0, lo_up), expr.resolve_ms(0, hi_up)
        return lambda v: (d := parse_instant(v)) is not None and check(d, lo, hi)
    # One (now, bounds) tuple, replaced whole, so concurrent readers never see a torn pair.
    cache: list[tuple[int | None, tuple[int, int] | None]] = [(None, None)]

    def bounds() -> tuple[int, int] | None:
        now = now_ms()
        seen, found = cache[0]
        if seen != now:
            try:
                found = (expr.resolve_ms(now, lo_up), expr.resolve_ms(now, hi_up))
            except DateMathError:
                found = None  # Elasticsearch fails such a query: nothing matches
            cache[0] = (now, found)
        return found

    def test(v: Any) -> bool:
        d = parse_instant(v)
        if d is None:
            return False
        b = bounds()
        return b is not None and check(d, b[0], b[1])

    return test


# --- ip --------------------------------------------------------------------------------------

IpNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def _as_v6(addr: IpAddr) -> ipaddress.IPv6Address:
    # Elasticsearch stores every ip as 16 bytes, IPv4 as IPv4-mapped IPv6, so
    # 10.0.0.5 and ::ffff:10.0.0.5 are the same point and `::/0` contains both.
    if isinstance(addr, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + addr.packed)
    return addr


def to_ip(value: Any) -> ipaddress.IPv6Address | None:
    """Parse an event value as an IP address in 16-byte form (None when it is not one)."""
    if not isinstance(value, str):
        return None
    try:
        return _as_v6(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _v6_network(text: str) -> ipaddress.IPv6Network:
    net: IpNet = ipaddress.ip_network(text, strict=False)
    if isinstance(net, ipaddress.IPv4Network):
        base = _as_v6(net.network_address)
        return ipaddress.IPv6Network((base, 96 + net.prefixlen), strict=False)
    return net


def _ip_test(field: str, text: str) -> ValueTest:
    try:
        if "/" in text:
            net = _v6_network(text)
            return lambda v: (ip := to_ip(v)) is not None and ip in net
        addr = _as_v6(ipaddress.ip_address(text))
    except ValueError:
        raise KqlCompileError(f"field '{field}' is an ip field, and '{text}' is not an IP or CIDR") from None
    return lambda v: to_ip(v) == addr


# --- text ------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\w+", re.UNICODE)


def analyze(text: str) -> list[str]:
    """Approximate Elasticsearch's standard analyzer: word tokens, lower-cased."""
    return _TOKEN.findall(text.lower())


def _text_test(value_text: str, quoted: bool) -> ValueTest:
    tokens = analyze(value_text)
    if not tokens:
        return lambda v: False
    if quoted:
        n = len(tokens)

        def phrase(v: Any) -> bool:
            doc = analyze(keyword_text(v))
            return any(doc[i : i + n] == tokens for i in range(len(doc) - n + 1))

        return phrase
    wanted = set(tokens)
    # match with the default OR operator: any one query token is enough.
    return lambda v: not wanted.isdisjoint(analyze(keyword_text(v)))


def _text_wildcard_test(parts: Sequence[str]) -> ValueTest:
    matcher = wildcard_matcher([p.lower() for p in parts])
    return lambda v: any(matcher(tok) for tok in analyze(keyword_text(v)))


# --- entry points ----------------------------------------------------------------------------

def _bool_of(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value in ("false", ""):
        # Elasticsearch indexes "" in a boolean field as false.
        return False
    return None


def equals_test(field: str, ftype: str, value: str | bool | None, quoted: bool) -> ValueTest:
    """Predicate for ``field:value`` on one event scalar, typed by ``ftype``."""
    if value is None:
        # Kibana sends `term: {value: null}`, which Elasticsearch rejects; the
        # reference Python evaluator treats it as never equal. Never match.
        return lambda v: False
    text = "true" if value is True else "false" if value is False else value
    if ftype in KEYWORD_LIKE:
        return lambda v: v == text if isinstance(v, str) else keyword_text(v) == text
    if ftype in NUMERIC_TYPES:
        if ftype in INTEGRAL_TYPES:
            exact = to_number(text)
            if exact is not None and not exact.is_integer():
                # Elasticsearch's LONG term query matches nothing for 5.5.
                return lambda v: False
        num = _query_number(field, ftype, text)
        conv = _numeric(ftype)
        return lambda v: conv(v) == num
    if ftype == "boolean":
        want = _bool_of(text)
        if want is None:
            raise KqlCompileError(f"field '{field}' is boolean, and '{text}' is not true/false")
        return lambda v: _bool_of(v) is want
    if ftype == "ip":
        return _ip_test(field, text)
    if ftype in ("date", "date_nanos"):
        return _date_test(field, text, "eq")
    if ftype in TEXT_TYPES:
        return _text_test(text, quoted)
    raise KqlCompileError(f"field '{field}' has unsupported type '{ftype}'")


def wildcard_test(field: str, ftype: str, parts: Sequence[str]) -> ValueTest:
    """Predicate for ``field:pat*tern`` on one event scalar."""
    if ftype in KEYWORD_LIKE:
        matcher = wildcard_matcher(parts)
        return lambda v: matcher(v if isinstance(v, str) else keyword_text(v))
    if ftype in TEXT_TYPES:
        return _text_wildcard_test(parts)
    raise KqlCompileError(
        f"field '{field}' is of type {ftype}; Elasticsearch only runs wildcard queries "
        "on keyword and text fields"
    )


def range_test(field: str, ftype: str, op: str, value: str | bool | None) -> ValueTest:
    """Predicate for ``field <op> value`` on one event scalar."""
    if value is None or isinstance(value, bool):
        raise KqlCompileError(f"range on '{field}' needs a number, date or string, not {value!r}")
    cmp: Callable[[Any, Any], bool] = {
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
    }[op]
    if ftype in NUMERIC_TYPES:
        num = _query_number(field, ftype, value)
        conv = _numeric(ftype)
        if ftype in INTEGRAL_TYPES and (f := to_number(value)) is not None and not f.is_integer():
            # A fractional bound on a long field: compare the whole value against it exactly.
            num = f
        return lambda v: (n := conv(v)) is not None and cmp(n, num)
    if ftype in ("date", "date_nanos"):
        return _date_test(field, value, op)
    if ftype == "ip":
        try:
            ip_bound = _as_v6(ipaddress.ip_address(value))
        except ValueError:
            raise KqlCompileError(f"field '{field}' is an ip field, and '{value}' is not an IP") from None
        return lambda v: (ip := to_ip(v)) is not None and cmp(ip, ip_bound)
    if ftype in KEYWORD_LIKE:
        return lambda v: cmp(keyword_text(v), value)
    if ftype in TEXT_TYPES:
        low = value.lower()
        return lambda v: any(cmp(t, low) for t in analyze(keyword_text(v)))
    raise KqlCompileError(f"field '{field}' has unsupported type '{ftype}' for a range")
