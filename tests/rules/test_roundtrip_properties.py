"""Property: any rule survives TOML and NDJSON writing and reading unchanged."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from credwatch.rules.model import (
    SEVERITIES,
    ExceptionListRef,
    Rule,
    RuleMetadata,
    RuleTest,
    RuleTestSuite,
    SeverityMapping,
    Threat,
    ThreatEntity,
    ThreatTechnique,
)
from credwatch.rules.ndjson_format import dumps_ndjson, loads_ndjson
from credwatch.rules.toml_format import dumps_toml, loads_toml

# text with the characters that break naive TOML/JSON writers: quotes, backslashes,
# triple quotes, control characters, CR/LF, unicode
_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40) | \
    st.sampled_from(['"""', "'''", "a\\b", "x\r\ny", "tab\there", "\x00\x1f", "é✓"])
_KEY = st.from_regex(r"[a-z][a-z0-9_.@]{0,15}", fullmatch=True)
_SCALAR = st.one_of(_TEXT, st.integers(-2**53, 2**53), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False))
_VALUE = st.recursive(_SCALAR, lambda inner: st.lists(inner, max_size=3) |
                      st.dictionaries(_KEY, inner, max_size=3), max_leaves=6)


def _tuple(s: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(s, max_size=3).map(tuple)


_ENTITY = st.builds(ThreatEntity, id=_TEXT, name=_TEXT, reference=_TEXT)
_RULES = st.builds(
    Rule,
    rule_id=_TEXT, name=_TEXT, description=_TEXT, query=_TEXT,
    severity=st.sampled_from(SEVERITIES), risk_score=st.integers(0, 100),
    version=st.integers(1, 10**6), index=_tuple(_TEXT), interval=_TEXT, from_=_TEXT, to=_TEXT,
    max_signals=st.integers(1, 10**6), timestamp_override=st.none() | _TEXT,
    author=_tuple(_TEXT), license=st.none() | _TEXT, tags=_tuple(_TEXT),
    references=_tuple(_TEXT), false_positives=_tuple(_TEXT), note=st.none() | _TEXT,
    setup=st.none() | _TEXT,
    threat=_tuple(st.builds(Threat, framework=_TEXT, tactic=_ENTITY, technique=_tuple(
        st.builds(ThreatTechnique, id=_TEXT, name=_TEXT, reference=_TEXT,
                  subtechnique=_tuple(_ENTITY))))),
    severity_mapping=_tuple(st.builds(SeverityMapping, field=_TEXT, value=_TEXT,
                                      severity=st.sampled_from(SEVERITIES))),
    exceptions_list=_tuple(st.builds(ExceptionListRef, id=_TEXT, list_id=_TEXT)),
    enabled=st.booleans(),
    id=st.none() | _TEXT,
    meta=st.dictionaries(_KEY.filter(lambda k: k != "credwatch"), _VALUE, max_size=3),
    metadata=st.builds(RuleMetadata, maturity=st.none() | _TEXT, integration=_tuple(_TEXT)),
    tests=st.builds(RuleTestSuite, defaults=st.dictionaries(_KEY, _VALUE, max_size=3),
                    tests=_tuple(st.builds(RuleTest, name=_TEXT, expect=st.booleans(),
                                           event=st.dictionaries(_KEY, _VALUE, max_size=3),
                                           clause=st.none() | _TEXT))),
)


def _nonempty(rule: Rule) -> bool:
    # empty strings for these mean "absent" in both formats, so they cannot round-trip
    return all([rule.interval, rule.from_, rule.to]) and all(
        v is None or v != "" for v in (rule.note, rule.setup)) and not any(
        s.framework == "" for s in rule.threat)


@settings(max_examples=150, deadline=None)
@given(_RULES.filter(_nonempty))
def test_toml_round_trip_any_rule(rule: Rule) -> None:
    assert loads_toml(dumps_toml(rule), "p.toml") == rule


@settings(max_examples=150, deadline=None)
@given(_RULES.filter(_nonempty))
def test_ndjson_round_trip_any_rule(rule: Rule) -> None:
    assert loads_ndjson(dumps_ndjson([rule]), "p.ndjson") == [rule]
