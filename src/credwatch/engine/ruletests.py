"""Running a rule's embedded test events (``credwatch rules test``).

Each test event (see :class:`~credwatch.rules.model.RuleTest`) is evaluated
with the in-process evaluator. A test passes when the rule matches exactly
when ``expect`` says so and, if the test names a ``clause``, the evaluator's
explanation shows that clause (or a clause on that field) as having matched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from credwatch.alerts.build import explain_text, hit_to_dict
from credwatch.backends.deriving import deriving
from credwatch.backends.python import compile_query
from credwatch.rules.model import Rule, RuleTest


@dataclass(slots=True)
class TestResult:
    """The outcome of one test event."""

    test: RuleTest
    passed: bool
    matched: bool
    problem: str = ""
    hits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def explanation(self) -> list[str]:
        """One line per matching clause and value."""
        return [explain_text(h) for h in self.hits]

    @property
    def key_clauses(self) -> list[str]:
        """The distinct clauses that fired, in order."""
        seen: dict[str, None] = {}
        for h in self.hits:
            seen.setdefault(str(h["clause"]), None)
        return list(seen)


@dataclass(slots=True)
class TestReport:
    """All test outcomes of one rule."""

    rule: Rule
    results: list[TestResult]

    @property
    def passed(self) -> int:
        """Number of passing tests."""
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        """Number of failing tests."""
        return sum(1 for r in self.results if not r.passed)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rule_id": self.rule.rule_id, "name": self.rule.name, "source": self.rule.source,
            "passed": self.passed, "failed": self.failed,
            "tests": [{"name": r.test.name, "expect": r.test.expect, "matched": r.matched,
                       "passed": r.passed, "problem": r.problem or None,
                       "clause": r.test.clause, "fired": r.hits} for r in self.results],
        }


def run_rule_tests(rule: Rule) -> TestReport:
    """Evaluate every embedded test of ``rule``."""
    matcher = deriving(compile_query(rule.query))  # credwatch.normalized.*, as scan does
    results = []
    for test in rule.tests.tests:
        event = rule.tests.event_for(test)
        matched = matcher.matches(event)
        hits = [hit_to_dict(h) for h in matcher.explain(event)] if matched else []
        problem = ""
        if matched and not test.expect:
            problem = "expected NO match, but the rule matched"
        elif not matched and test.expect:
            problem = "expected a match, but the rule did not match"
        elif matched and test.clause and not any(
                test.clause in (h["clause"], h["field"]) for h in hits):
            fired = ", ".join(dict.fromkeys(str(h["clause"]) for h in hits))
            problem = f"matched, but clause {test.clause} did not fire (fired: {fired})"
        results.append(TestResult(test, not problem, matched, problem, hits))
    return TestReport(rule, results)
