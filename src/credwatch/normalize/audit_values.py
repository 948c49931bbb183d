"""Decoding of audit field values and reassembly of EXECVE argument lists.

The kernel writes an untrusted string (``comm``, ``exe``, ``cwd``, a PATH
``name``, ``proctitle``, the rule ``key`` and every ``aN`` of EXECVE) in one of
three forms:

* ``"literal"``: printable ASCII without spaces or quotes, written as is;
* ``68656C6C6F``: unquoted upper-case hex of the raw bytes, used whenever the
  value holds a space, a quote, a control character or a byte >= 0x7f;
* ``(null)``: no value.

Only those untrusted-string fields may be hex-decoded: ``pid=123`` is a number,
not the byte ``0x01 0x23``. Lines already interpreted by ``ausearch -i`` carry
decoded text and are never hex-decoded.

Invalid UTF-8
    Decoded bytes are turned into text with ``errors="replace"``: every byte
    sequence that is not valid UTF-8 becomes U+FFFD. This is what Elastic's own
    pipeline produces (go-libaudit keeps raw bytes in Go strings, and Go's JSON
    encoder replaces invalid UTF-8 with U+FFFD), so our ECS matches theirs, and
    the result is always JSON-serialisable. Split arguments are joined as
    *bytes* before decoding, so a multi-byte character cut across two chunks
    survives intact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_HEX_RE = re.compile(rb"\A(?:[0-9A-Fa-f]{2})+\Z")
# Argument indexes and chunk numbers are bounded (Linux passes at most a few hundred
# thousand arguments; 7 digits is ample), so an index of thousands of digits is not one.
_ARG_KEY_RE = re.compile(r"\Aa([0-9]{1,7})(?:(_len)|\[([0-9]{1,7})\])?\Z")
#: Numbers in EXECVE (argc, aN_len) are taken only up to 18 digits (they fit a signed long).
_NUMBER_RE = re.compile(rb"\A[0-9]{1,18}\Z")
#: At most this many indexes are listed in :attr:`ExecArgs.missing` (argc may claim billions).
MAX_MISSING = 65536

#: Elastic's placeholder for arguments that were not logged (Filebeat auditd pipeline).
TRUNCATED_ARGS_TEMPLATE = "[... {n} truncated arguments ...]"


def to_text(raw: bytes) -> str:
    """Decode bytes as UTF-8, replacing invalid sequences with U+FFFD (see module doc)."""
    return raw.decode("utf-8", errors="replace")


def is_hex(raw: bytes) -> bool:
    """True when ``raw`` is a non-empty, even-length run of hex digits."""
    return bool(_HEX_RE.match(raw))


def value_bytes(token: bytes, *, interpreted: bool = False) -> bytes | None:
    """Return the raw bytes an untrusted-string token stands for, or None for ``(null)``.

    ``token`` is the text after ``key=`` exactly as it appears in the log. A
    quoted token whose closing quote is missing (a truncated line) yields what
    is there.
    """
    if token == b"(null)":
        return None
    if interpreted:
        return token
    if token[:1] == b'"':
        return token[1:-1] if len(token) >= 2 and token[-1:] == b'"' else token[1:]
    if is_hex(token):
        return bytes.fromhex(token.decode("ascii"))
    return token


def value_text(token: bytes | None, *, interpreted: bool = False) -> str | None:
    """Decode an untrusted-string token to text (None for missing or ``(null)``)."""
    if token is None:
        return None
    raw = value_bytes(token, interpreted=interpreted)
    return None if raw is None else to_text(raw)


def plain_text(token: bytes | None) -> str | None:
    """A field that is never hex-encoded (numbers, ``success``, ``tty``): strip quotes only."""
    if token is None:
        return None
    if len(token) >= 2 and token[:1] == b'"' and token[-1:] == b'"':
        token = token[1:-1]
    return to_text(token)


def proctitle_text(token: bytes | None, *, interpreted: bool = False) -> str | None:
    """Decode PROCTITLE: NUL separators between arguments become spaces (as aucoalesce does)."""
    if token is None:
        return None
    raw = value_bytes(token, interpreted=interpreted)
    if raw is None:
        return None
    return to_text(raw.rstrip(b"\x00").replace(b"\x00", b" "))


@dataclass(slots=True)
class ExecArgs:
    """The argument list of one exec, reassembled from all its EXECVE records."""

    args: list[str]
    #: ``argc`` as logged, or None when no EXECVE record carrying it was seen.
    argc: int | None
    #: ``process.args_count``: argc when known, otherwise ``len(args)``.
    count: int
    #: Indices below argc that never appeared (lost or never logged records).
    missing: list[int] = field(default_factory=list)
    #: Indices whose split chunks were incomplete (a missing ``aN[k]``).
    incomplete: list[int] = field(default_factory=list)


def assemble_execve(records: Iterable[list[tuple[str, bytes]]], *,
                    interpreted: bool = False) -> ExecArgs | None:
    """Join the ``aN``, ``aN_len`` and ``aN[k]`` fields of an event's EXECVE records.

    ``records`` holds each EXECVE record's fields as ``(key, token)`` pairs in
    log order. Long arguments arrive as ``aN_len=L aN[0]=… aN[1]=…`` and may
    continue in the next record; very long lists continue in records without
    ``argc``. When the lowest argument present is not ``a0`` (the head of the
    list was never logged), Elastic's placeholder ``"[... N truncated
    arguments ...]"`` comes first, N being that lowest index. Gaps further on
    are skipped (and reported in ``missing``). Returns None when no argument
    field and no argc was found at all.
    """
    fields = _ExecveFields.collect(records, interpreted)
    indices = sorted(set(fields.whole) | set(fields.chunks))
    argc = fields.argc
    if not indices and argc is None:
        return None
    args, incomplete = _join_args(fields, indices, interpreted)
    if indices and indices[0] > 0:
        args.insert(0, TRUNCATED_ARGS_TEMPLATE.format(n=indices[0]))
    present = set(indices)
    upper = argc if argc is not None else (indices[-1] + 1 if indices else 0)
    # Bounded by what was logged, not by what argc claims (argc=999999999999 is one token).
    upper = min(upper, (indices[-1] + 1 if indices else 0) + MAX_MISSING)
    missing = [i for i in range(upper) if i not in present][:MAX_MISSING]
    count = argc if argc is not None else len(args)
    return ExecArgs(args=args, argc=argc, count=count, missing=missing, incomplete=incomplete)


@dataclass
class _ExecveFields:
    """The argument fields of an event's EXECVE records, by argument index (first one wins)."""

    argc: int | None = None
    whole: dict[int, bytes | None] = field(default_factory=dict)
    chunks: dict[int, dict[int, bytes]] = field(default_factory=dict)
    lengths: dict[int, int] = field(default_factory=dict)

    @classmethod
    def collect(cls, records: Iterable[list[tuple[str, bytes]]], interpreted: bool) -> _ExecveFields:
        """Sort every ``argc``, ``aN``, ``aN_len`` and ``aN[k]`` token into its slot."""
        out = cls()
        for fields in records:
            for key, token in fields:
                if key == "argc":
                    if out.argc is None and _NUMBER_RE.match(token):
                        out.argc = int(token)
                    continue
                m = _ARG_KEY_RE.match(key)
                if not m:
                    continue
                idx = int(m.group(1))
                if m.group(2):  # aN_len
                    if _NUMBER_RE.match(token):
                        out.lengths[idx] = int(token)
                elif m.group(3) is not None:  # aN[k]
                    part = value_bytes(token, interpreted=interpreted)
                    out.chunks.setdefault(idx, {}).setdefault(int(m.group(3)), part or b"")
                elif idx not in out.whole:
                    out.whole[idx] = value_bytes(token, interpreted=interpreted)
        return out


def _join_args(fields: _ExecveFields, indices: list[int],
               interpreted: bool) -> tuple[list[str], list[int]]:
    """The decoded arguments in index order, and the indexes whose chunks are incomplete."""
    args: list[str] = []
    incomplete: list[int] = []
    for idx in indices:
        if idx in fields.whole:
            raw = fields.whole[idx]
            # "(null)" can only be a NULL argv slot; keep the position as an empty string.
            args.append(to_text(raw) if raw is not None else "")
            continue
        parts = fields.chunks[idx]
        if sorted(parts) != list(range(len(parts))):
            incomplete.append(idx)
        joined = b"".join(parts[k] for k in sorted(parts))
        if idx in fields.lengths and not interpreted:
            # aN_len counts the *encoded* length; a shortfall means chunks were lost.
            expected = fields.lengths[idx]
            if expected not in (len(joined), 2 * len(joined)) and idx not in incomplete:
                incomplete.append(idx)
        args.append(to_text(joined))
    return args, incomplete
