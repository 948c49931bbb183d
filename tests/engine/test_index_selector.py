"""Kibana's index patterns, answered once per distinct index name."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from credwatch.engine import scan
from credwatch.engine.scan import IndexSelector

PATTERNS = ["logs-endpoint.events.process-*", "auditbeat-*,-auditbeat-old-*", "remote:logs-*"]
NAMES = st.one_of(
    st.sampled_from(["logs-endpoint.events.process-default", "auditbeat-8.1", "auditbeat-old-1",
                     ".ds-logs-system.auth-default-2026.12.01-000001", "logs-x", "other"]),
    st.text(alphabet="abcdefglos.-*:0123456789", max_size=300),
)


@settings(max_examples=300, deadline=None)
@given(names=st.lists(NAMES, max_size=40))
def test_remembered_answers_equal_fresh_ones(names: list[str]) -> None:
    kept = IndexSelector(PATTERNS)
    for name in names + names:  # the second round is answered from memory
        assert kept.selects(name) == IndexSelector(PATTERNS).selects(name), name


def test_memory_of_answers_is_bounded() -> None:
    sel = IndexSelector(PATTERNS)
    for i in range(3 * scan._MEMO_ENTRIES):
        assert sel.selects(f"logs-{i}")
    assert not sel.selects("x" * 10_000)  # answered, never remembered: too long for a name
    assert 0 < len(sel._answers) <= scan._MEMO_ENTRIES
    assert all(len(name) <= scan._MEMO_NAME for name in sel._answers)
