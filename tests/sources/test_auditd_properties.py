"""Properties of the audit reader: any interleaving, any noise, any bytes."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from credwatch.normalize.audit_values import to_text, value_bytes
from credwatch.normalize.auditd import iter_ecs
from credwatch.sources.auditd import Diagnostics, iter_audit_events, parse_line
from tests.sources._auditd import SAMPLE, lines_of

_STAMP = re.compile(rb"audit\(([^)]*)\)")
_LINES = lines_of(SAMPLE)
_EVENTS: dict[bytes, list[bytes]] = {}
for _ln in _LINES:
    _EVENTS.setdefault(_STAMP.search(_ln).group(1), []).append(_ln)  # type: ignore[union-attr]
_REFERENCE = list(iter_ecs(iter_audit_events(_LINES)))


def _by_seq(docs: list[dict[str, object]]) -> dict[object, object]:
    return {d["auditd"]["sequence"]: d for d in docs}  # type: ignore[index]


# Each example reassembles and maps a whole capture: cap the count even under CI.
@settings(max_examples=300, deadline=None)
@given(st.randoms(use_true_random=False))
def test_any_interleaving_of_events_gives_the_same_documents(rnd: object) -> None:
    import random
    assert isinstance(rnd, random.Random)
    queues = [list(v) for v in _EVENTS.values()]
    merged: list[bytes] = []
    while queues:
        q = rnd.choice(queues)
        merged.append(q.pop(0))
        if not q:
            queues.remove(q)
    assert _by_seq(list(iter_ecs(iter_audit_events(merged)))) == _by_seq(_REFERENCE)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(_LINES)), st.binary(max_size=200)), max_size=20))
def test_noise_lines_never_raise_and_never_cost_a_valid_event(noise: list[tuple[int, bytes]]) -> None:
    lines = list(_LINES)
    for pos, junk in sorted(noise, reverse=True):
        # A noise line must not accidentally be a record of a real event.
        junk = junk.replace(b"\n", b" ").replace(b"\r", b" ").replace(b"audit(", b"audit[")
        lines.insert(pos, junk + b"\n")
    diag = Diagnostics()
    docs = list(iter_ecs(iter_audit_events(lines, diagnostics=diag)))
    assert _by_seq(docs) == _by_seq(_REFERENCE)
    assert diag.lines == len(lines)


@given(st.binary(max_size=300))
def test_parse_line_is_total(line: bytes) -> None:
    parse_line(line)


@given(st.binary(min_size=1, max_size=200))
def test_hex_values_round_trip(raw: bytes) -> None:
    token = raw.hex().upper().encode()
    assert value_bytes(token) == raw
    assert to_text(raw) == raw.decode("utf-8", errors="replace")


@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                      exclude_characters='"'), min_size=1, max_size=50))
def test_quoted_values_are_literal(text: str) -> None:
    assert value_bytes(b'"' + text.encode() + b'"') == text.encode()
