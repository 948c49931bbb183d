"""The wildcard matcher is anchored, treats only `*` as special, and is linear."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from credwatch.backends.pymatch import wildcard_matcher


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def boom(signum: int, frame: object) -> None:
        raise TimeoutError("wildcard matching backtracked")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize(
    ("parts", "value", "expected"),
    [
        (("", "/.aws/credentials"), "/root/.aws/credentials", True),
        (("", "/.aws/credentials"), "/root/.aws/credentials.bak", False),
        (("/tmp/", ""), "/tmp/x/y/z", True),
        (("/tmp/", ""), "/tmpx", False),
        (("a", "b", "c"), "abc", True),
        (("a", "b", "c"), "ac", False),
        (("a", "a"), "a", False),
        (("ab", "ba"), "aba", False),
        (("", "x", ""), "line1\nx\nline3", True),
        (("", "?"), "a?", True),
        (("", "?"), "ab", False),
        (("", ""), "", True),
    ],
)
def test_semantics(parts: tuple[str, ...], value: str, expected: bool) -> None:
    assert wildcard_matcher(parts)(value) is expected


def test_one_megabyte_value_with_twenty_stars_is_linear() -> None:
    parts = ("",) + ("a",) * 19 + ("b",)
    value = "a" * 1_000_000  # no "b": a backtracking matcher explores ~n^19 splits
    naive = re.compile(".*".join(map(re.escape, parts)), re.DOTALL)
    with time_limit(5):
        assert wildcard_matcher(parts)(value) is False
    # The naive regex really is catastrophic on a far smaller input, proving the test bites.
    with pytest.raises(TimeoutError), time_limit(2):
        naive.fullmatch("a" * 2_000)
