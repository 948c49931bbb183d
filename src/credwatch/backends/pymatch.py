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
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from credwatch.errors import KqlCompileError
from credwatch.kql.fields import KEYWORD_LIKE, NUMERIC_TYPES, TEXT_TYPES

# The one linear-time matcher, shared with exception wildcards; re-exported for importers.
from credwatch.kql.wildcard import wildcard_matcher as wildcard_matcher

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

_DATE_MATH = re.compile(r"^now(?:(?P<sign>[+-])(?P<n>\d+)(?P<unit>[smhdwMy]))?(?:/(?P<round>[smhdwMy]))?$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "y": 31536000}


_ISO = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})(?:[T ](?P<h>\d{2})(?::(?P<mi>\d{2})"
    r"(?::(?P<s>\d{2})(?:[.,](?P<f>\d+))?)?)?)?)?)?(?P<tz>Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_MS = timedelta(milliseconds=1)


def _add_months(t: datetime, months: int) -> datetime:
    y, m = divmod(t.month - 1 + months, 12)
    return t.replace(year=t.year + y, month=m + 1)


def parse_date_bounds(value: Any, now: datetime | None = None) -> tuple[datetime, datetime] | None:
    """Parse a date into the millisecond interval it denotes, as Elasticsearch does.

    ``2024-05-01`` is the whole day: range bounds round down for ``gte``/``lt``
    and up for ``gt``/``lte`` (Elasticsearch's round-up date parser), and an
    exact match means anywhere in that interval. A full timestamp is one
    millisecond (finer fractions are truncated, as a ``date`` field stores ms).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        t = datetime.fromtimestamp(int(value) / 1000.0, tz=UTC)
        return t, t
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit() and len(text) != 4:
        t = datetime.fromtimestamp(int(text) / 1000.0, tz=UTC)
        return t, t
    m = _DATE_MATH.match(text)
    if m:
        base = now or datetime.now(UTC)
        if m.group("n"):
            delta = timedelta(seconds=int(m.group("n")) * _UNITS[m.group("unit")])
            base = base + delta if m.group("sign") == "+" else base - delta
        return base, base
    m = _ISO.match(text)
    if not m:
        return None
    g = m.groupdict()
    tz = g["tz"]
    tzinfo = UTC
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        tzinfo = timezone(sign * timedelta(hours=hours, minutes=minutes))
    frac = g["f"] or ""
    micro = int((frac + "000000")[:6]) // 1000 * 1000  # keep whole milliseconds
    try:
        lo = datetime(int(g["y"]), int(g["mo"] or 1), int(g["d"] or 1), int(g["h"] or 0),
                      int(g["mi"] or 0), int(g["s"] or 0), micro, tzinfo=tzinfo)
    except ValueError:
        return None
    if g["f"] is not None:
        hi = lo
    elif g["s"] is not None:
        hi = lo + timedelta(seconds=1) - _MS
    elif g["mi"] is not None:
        hi = lo + timedelta(minutes=1) - _MS
    elif g["h"] is not None:
        hi = lo + timedelta(hours=1) - _MS
    elif g["d"] is not None:
        hi = lo + timedelta(days=1) - _MS
    elif g["mo"] is not None:
        hi = _add_months(lo, 1) - _MS
    else:
        hi = lo.replace(year=lo.year + 1) - _MS
    return lo.astimezone(UTC), hi.astimezone(UTC)


def parse_date(value: Any, now: datetime | None = None) -> datetime | None:
    """Parse an ISO-8601 string, epoch milliseconds or ``now±N<unit>`` (start of its interval)."""
    bounds = parse_date_bounds(value, now)
    return bounds[0] if bounds else None


def _query_date(field: str, text: str) -> tuple[datetime, datetime]:
    parsed = parse_date_bounds(text)
    if parsed is None:
        raise KqlCompileError(f"field '{field}' is a date field, and '{text}' is not a date")
    return parsed


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
        lo, hi = _query_date(field, text)
        return lambda v: (d := parse_date(v)) is not None and lo <= d <= hi
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
        lo, hi = _query_date(field, value)
        # Elasticsearch rounds a partial date down for gte/lt and up for gt/lte.
        bound = hi if op in ("gt", "lte") else lo
        return lambda v: (d := parse_date(v)) is not None and cmp(d, bound)
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
