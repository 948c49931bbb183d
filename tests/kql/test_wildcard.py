"""The wildcard matcher is anchored, treats only `*` as special, and is linear."""

from __future__ import annotations

import math
import re
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credwatch.backends.pymatch import wildcard_matcher
from credwatch.kql.wildcard import es_wildcard_matcher


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


# ------------------------------------------------ Elasticsearch wildcards (exceptions)

def reference_match(pattern: str, value: str) -> bool:
    """Slow but obviously correct: dynamic programming over (pattern token, value index)."""
    tokens: list[str | None] = []  # None is '*', "\0?" is '?', else one literal character
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i + 1])
            i += 2
            continue
        tokens.append(None if ch == "*" else "\0?" if ch == "?" else ch)
        i += 1
    # ok[j]: the tokens seen so far match value[:j]
    ok = [True] + [False] * len(value)
    for tok in tokens:
        new = [False] * (len(value) + 1)
        for j in range(len(value) + 1):
            if tok is None:
                new[j] = ok[j] or (j > 0 and new[j - 1])
            elif j > 0 and ok[j - 1] and (tok == "\0?" or tok == value[j - 1]):
                new[j] = True
        ok = new
    return ok[len(value)]


_PATTERN_ALPHABET = st.sampled_from(["a", "b", "*", "?", "\\", "\\*", "\\?", "\n", "/"])
_VALUE_ALPHABET = st.sampled_from(["a", "b", "*", "?", "\\", "\n", "/"])


@given(st.lists(_PATTERN_ALPHABET, max_size=10).map("".join),
       st.lists(_VALUE_ALPHABET, max_size=12).map("".join))
def test_es_wildcard_agrees_with_the_reference(pattern: str, value: str) -> None:
    assert es_wildcard_matcher(pattern)(value) is reference_match(pattern, value)


@given(st.lists(st.lists(st.sampled_from("ab?/\n"), max_size=3).map("".join), min_size=1,
                max_size=5),
       st.lists(st.sampled_from("ab?/\n"), max_size=12).map("".join))
def test_kql_wildcard_agrees_with_the_reference(parts: list[str], value: str) -> None:
    # In KQL nothing but '*' is special: escape everything else for the reference.
    pattern = "*".join("".join("\\" + c for c in p) for p in parts)
    assert wildcard_matcher(parts)(value) is reference_match(pattern, value)


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("/usr/bin/kube*", "/usr/bin/kubectl", True),
    ("/usr/bin/kube?tl", "/usr/bin/kubectl", True),
    ("/usr/bin/kube?l", "/usr/bin/kubectl", False),
    ("/usr/bin/kube??l", "/usr/bin/kubectl", True),
    ("?", "", False),
    ("*?", "", False),
    ("*?", "x", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "axb", False),
    ("a\\?b", "axb", False),
    ("a\\", "a\\", True),  # a trailing lone backslash is literal
    ("*a?c*", "xxabcxx", True),
    ("*a?c*", "xxabbcxx", False),
    ("ab*?ba", "aba", False),  # segments may not overlap
    ("*\n*", "x\ny", True),
])
def test_es_wildcard_cases(pattern: str, value: str, expected: bool) -> None:
    assert es_wildcard_matcher(pattern)(value) is expected
    assert reference_match(pattern, value) is expected


def _best_of(runs: int, func: Callable[[], object]) -> float:
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("kind", ["kql", "es", "es-question-marks"])
def test_twenty_star_patterns_scale_linearly(kind: str) -> None:
    """1 MB vs 100 KB against a 20-star pattern that matches all but its last segment.

    Every inner segment is found at once and the last inner one is searched over
    the whole value and missed, so the whole value is scanned; a backtracking
    matcher would try every split instead. Time must grow about 10x, not 10^k x.
    """
    if kind == "kql":
        match = wildcard_matcher(("",) + ("a",) * 19 + ("aab", ""))
    elif kind == "es":
        match = es_wildcard_matcher("*a" * 19 + "*aab*")
    else:
        match = es_wildcard_matcher("*a?a" * 19 + "*a?b*")
    small, large = "a" * 100_000, "a" * 1_000_000
    with time_limit(20):
        assert match(small) is False and match(large) is False
        t_small = _best_of(7, lambda: match(small))
        t_large = _best_of(7, lambda: match(large))
    # Linear is 10x, quadratic 100x; allow noise from a loaded shared machine.
    assert t_large / max(t_small, 1e-6) < 50, (t_small, t_large)
    assert t_large < 0.5, t_large
