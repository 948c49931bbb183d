"""Parse one raw ``audit.log`` line into an :class:`~credwatch.normalize.audit_event.AuditRecord`.

Line forms understood: ENRICHED (with or without the ``0x1d`` separator), RAW,
``node=`` prefixes and free-form prefixes (syslog), the kernel/dmesg form with numeric
types, and ``ausearch -i`` output (already-decoded values, local timestamps). Nothing here
raises on bad data: a line that is not a record gives the reason as a short key.
Stamps and serials are bounded (year 9999, 64-bit serials) before any conversion.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from credwatch.normalize.audit_event import AuditRecord

_HEADER_RE = re.compile(
    rb"(?:\A|\s)(?:node=(?P<node>\S+) )?type=(?P<type>[A-Za-z0-9_\[\]]+) "
    rb"(?:msg=)?audit\((?P<stamp>[^)]*)\)\s*:\s?"
)
# Seconds up to year 9999 (12 digits), a serial that fits 64 bits (20 digits): anything
# longer is not a real stamp, and converting thousands of digits would raise or take time.
_RAW_STAMP_RE = re.compile(r"\A([0-9]{1,12})\.([0-9]{1,9}):([0-9]{1,20})\Z")
_SERIAL_RE = re.compile(r"\A[0-9]{1,20}\Z")
_KEY_RE = re.compile(rb"\A[A-Za-z0-9_\-\[\]]+\Z")
_INTERP_KEY_RE = re.compile(rb"\A([a-z0-9_\-]+(?:\[\d+\])?)=")
_ENRICH_KEY_RE = re.compile(rb"\A[A-Z][A-Z0-9_\-]*\Z")

#: Numeric record types of the kernel/dmesg form, for the records an exec produces.
NUMERIC_TYPES = {
    "1300": "SYSCALL", "1302": "PATH", "1305": "CONFIG_CHANGE", "1306": "SOCKADDR",
    "1307": "CWD", "1309": "EXECVE", "1320": "EOE", "1321": "BPRM_FCAPS",
    "1327": "PROCTITLE", "1006": "LOGIN",
}


def _split_enrichment(rest: bytes) -> tuple[bytes, bytes]:
    sep = rest.find(b"\x1d")
    if sep >= 0:
        return rest[:sep], rest[sep + 1:]
    return rest, b""


def _tokenize(body: bytes) -> tuple[list[tuple[str, bytes]], bool, int]:
    """Split ``k=v k="v" msg='k=v …'`` into pairs.

    Returns the pairs, whether the body ended inside a quote, and the offset of
    the first upper-case key (ENRICHED fields glued on without ``0x1d``) or -1.
    """
    out: list[tuple[str, bytes]] = []
    truncated = False
    glued_at = -1
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in b" \t":
            i += 1
        if i >= n:
            break
        start = i
        eq = body.find(b"=", i)
        sp = body.find(b" ", i)
        if eq < 0 or (0 <= sp < eq):
            # A bare word ("avc:  denied  { read } for"): not a field.
            i = n if sp < 0 else sp + 1
            continue
        key = body[i:eq]
        if not _KEY_RE.match(key):
            i = n if sp < 0 else sp + 1
            continue
        if _ENRICH_KEY_RE.match(key):
            glued_at = start
            break
        j = eq + 1
        opener = body[j:j + 1]
        closer = {b'"': b'"', b"'": b"'", b"{": b"}"}.get(opener)
        if closer is not None:
            end = body.find(closer, j + 1)
            if end < 0:
                value, i, truncated = body[j:], n, True
            else:
                value, i = body[j:end + 1], end + 1
        else:
            end = body.find(b" ", j)
            value, i = (body[j:], n) if end < 0 else (body[j:end], end)
        skey = key.decode("ascii")
        if skey == "msg" and opener == b"'":
            inner, inner_trunc, _ = _tokenize(value[1:-1] if value.endswith(b"'") else value[1:])
            out.extend(inner)
            truncated = truncated or inner_trunc
            continue
        out.append((skey, value))
    return out, truncated, glued_at


def _tokenize_interpreted(body: bytes) -> list[tuple[str, bytes]]:
    """``ausearch -i`` values are unquoted and may hold spaces: a word without
    ``key=`` continues the previous value. An argument that itself contains
    `` x=y`` after a space is ambiguous in this format and splits."""
    out: list[tuple[str, bytes]] = []
    for word in body.rstrip(b" ").split(b" "):
        m = _INTERP_KEY_RE.match(word)
        if m:
            out.append((m.group(1).decode("ascii"), word[m.end():]))
        elif out:
            key, value = out[-1]
            out[-1] = (key, value + b" " + word)
    return out


def _parse_enriched(tail: bytes) -> dict[str, str]:
    # ENRICHED fields have upper-case keys only; values are quoted, braced or bare.
    res: dict[str, str] = {}
    for m in re.finditer(rb'([A-Z][A-Z0-9_\-]*)=("[^"]*"|\{[^}]*\}|\S+)', tail):
        v = m.group(2)
        if v[:1] == b'"':
            v = v[1:-1]
        res[m.group(1).decode("ascii")] = v.decode("utf-8", errors="replace")
    return res


def _parse_stamp(stamp: str, tz: tzinfo) -> tuple[str, int, datetime] | None:
    m = _RAW_STAMP_RE.match(stamp)
    if m:
        sec, frac, serial = m.groups()
        try:
            when = datetime.fromtimestamp(int(sec), UTC) + timedelta(milliseconds=int(frac[:3].ljust(3, "0")))
        except (OverflowError, ValueError, OSError):
            return None  # past year 9999: reported as a bad header
        return f"{sec}.{frac}", int(serial), when
    head, sep, serial_s = stamp.rpartition(":")
    if not sep or not _SERIAL_RE.match(serial_s) or len(head) > 40:
        return None
    for fmt in ("%m/%d/%y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S.%f", "%m/%d/%y %H:%M:%S", "%m/%d/%Y %H:%M:%S"):
        try:
            naive = datetime.strptime(head, fmt)
        except ValueError:
            continue
        return head, int(serial_s), naive.replace(tzinfo=tz).astimezone(UTC)
    return None


def parse_line(line: bytes, *, path: str = "<input>", lineno: int = 0,
               interpreted_tz: tzinfo = UTC) -> AuditRecord | str:
    """Parse one log line into an :class:`AuditRecord`, or return the reason it is not one.

    The reason is a short key (``"garbage"``, ``"bad-header"``, ``"blank"``,
    ``"separator"``) for :class:`Diagnostics`. ``interpreted_tz`` is the zone
    of ``ausearch -i`` local timestamps.
    """
    line = line.rstrip(b"\r\n")
    if not line.strip():
        return "blank"
    if line.startswith(b"----"):
        return "separator"
    m = _HEADER_RE.search(line)
    if not m:
        return "garbage"
    stamp_s = m.group("stamp").decode("ascii", errors="replace")
    interpreted = "/" in stamp_s
    parsed = _parse_stamp(stamp_s, interpreted_tz)
    if parsed is None:
        return "bad-header"
    stamp, serial, when = parsed
    rtype = m.group("type").decode("ascii")
    rtype = NUMERIC_TYPES.get(rtype, rtype)
    rest = line[m.end():]
    raw_body, enrich_tail = _split_enrichment(rest)
    truncated = False
    if interpreted:
        fields = _tokenize_interpreted(raw_body)
        enriched: dict[str, str] = {}
    else:
        fields, truncated, glued_at = _tokenize(raw_body)
        enriched = _parse_enriched(enrich_tail) if enrich_tail else {}
        if glued_at >= 0:
            enriched.update(_parse_enriched(raw_body[glued_at:]))
            raw_body = raw_body[:glued_at].rstrip(b" ")
    node = m.group("node")
    header = line[m.start("type") - len(b"type="):m.end()]
    text = (header + raw_body).decode("utf-8", errors="replace")
    return AuditRecord(
        type=rtype, node=node.decode("utf-8", errors="replace") if node else None,
        stamp=stamp, serial=serial, time=when, fields=fields, enriched=enriched,
        text=text, path=path, lineno=lineno, interpreted=interpreted, truncated=truncated,
    )


def looks_like_audit(first_bytes: bytes) -> bool:
    """Cheap auto-detection: does this start like an audit log (raw, ENRICHED or ``ausearch -i``)?

    Looks at the first few non-blank lines; gzip content must be decompressed first
    (see :func:`sniff_path`).
    """
    seen = 0
    for line in first_bytes.splitlines()[:20]:
        if not line.strip() or line.startswith(b"----"):
            continue
        if _HEADER_RE.search(line):
            return True
        seen += 1
        if seen >= 3:
            break
    return False
