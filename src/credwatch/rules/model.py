"""The typed rule model: every field of an Elastic (Kibana) custom query rule.

Field names follow Kibana's detection-engine API (snake_case, as in a rule
export), except ``from``, which is a Python keyword and is spelled ``from_``.
Collections are tuples and the classes are frozen, so a loaded rule cannot be
changed behind the engine's back and two loads of one file compare equal.

Fields credwatch does not interpret (``actions``, ``related_integrations``,
``created_at`` …) are kept verbatim in :attr:`Rule.extra`, so that reading and
writing a rule never loses anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Severities Kibana accepts, lowest first.
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")

#: The only rule type credwatch evaluates.
SUPPORTED_TYPES: frozenset[str] = frozenset({"query"})

#: Rule types Kibana has that credwatch recognises but cannot run.
KNOWN_UNSUPPORTED_TYPES: frozenset[str] = frozenset(
    {"eql", "esql", "threshold", "new_terms", "machine_learning", "threat_match", "saved_query"}
)

#: The only query language credwatch evaluates (KQL).
SUPPORTED_LANGUAGES: frozenset[str] = frozenset({"kuery"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreatEntity:
    """One ATT&CK tactic, technique or subtechnique: id, name and reference URL."""

    id: str
    name: str
    reference: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreatTechnique:
    """An ATT&CK technique with its subtechniques."""

    id: str
    name: str
    reference: str
    subtechnique: tuple[ThreatEntity, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Threat:
    """One ``threat`` entry: a framework, a tactic and its techniques."""

    framework: str = "MITRE ATT&CK"
    tactic: ThreatEntity
    technique: tuple[ThreatTechnique, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SeverityMapping:
    """A ``severity_mapping`` item: when ``field`` equals ``value``, use ``severity``."""

    field: str
    operator: str = "equals"
    value: str
    severity: str
    risk_score: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskScoreMapping:
    """A ``risk_score_mapping`` item: take the risk score from ``field`` (0..100)."""

    field: str
    operator: str = "equals"
    value: str = ""
    risk_score: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExceptionListRef:
    """A reference to an exception list attached to a rule (``exceptions_list`` item)."""

    id: str
    list_id: str
    type: str = "detection"
    namespace_type: str = "single"


@dataclass(frozen=True, slots=True, kw_only=True)
class SuppressionDuration:
    """The time window of alert suppression, e.g. ``5m`` as value=5 unit="m"."""

    value: int
    unit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertSuppression:
    """Kibana's ``alert_suppression``: group by up to 3 fields, per run or for a duration."""

    group_by: tuple[str, ...]
    duration: SuppressionDuration | None = None
    missing_fields_strategy: str = "suppress"


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleMetadata:
    """The detection-rules ``[metadata]`` block (not part of Kibana's rule)."""

    creation_date: str | None = None
    updated_date: str | None = None
    maturity: str | None = None
    integration: tuple[str, ...] = ()
    min_stack_version: str | None = None
    min_stack_comments: str | None = None
    deprecation_date: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """True when no metadata field is set."""
        return self == RuleMetadata()


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleTest:
    """One embedded test event of a rule (credwatch's own, Panther/Zircolite style).

    ``expect`` says whether the rule must match. ``clause``, when given, names
    a field (``process.name``) or a KQL snippet (``process.args:cat``) that the
    evaluator's explanation must report as having matched. ``unset`` removes
    keys of the suite's default event before ``event`` is laid over it.
    """

    name: str
    expect: bool
    event: Mapping[str, Any]
    clause: str | None = None
    description: str | None = None
    unset: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleTestSuite:
    """The rule's embedded tests plus the default event each test starts from."""

    defaults: Mapping[str, Any] = field(default_factory=dict)
    tests: tuple[RuleTest, ...] = ()

    def event_for(self, test: RuleTest) -> dict[str, Any]:
        """The effective event of ``test``: defaults, minus ``unset`` keys, plus its event."""
        merged: dict[str, Any] = {k: v for k, v in self.defaults.items() if k not in test.unset}
        merged.update(test.event)
        return merged


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """An Elastic custom query rule, with every field Kibana's API defines for it."""

    rule_id: str
    name: str
    description: str
    query: str
    severity: str
    risk_score: int
    version: int = 1
    type: str = "query"
    language: str = "kuery"
    index: tuple[str, ...] = ()
    interval: str = "5m"
    from_: str = "now-6m"
    to: str = "now"
    max_signals: int = 100
    timestamp_override: str | None = None
    timestamp_override_fallback_disabled: bool | None = None
    author: tuple[str, ...] = ()
    license: str | None = None
    tags: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    false_positives: tuple[str, ...] = ()
    note: str | None = None
    setup: str | None = None
    threat: tuple[Threat, ...] = ()
    severity_mapping: tuple[SeverityMapping, ...] = ()
    risk_score_mapping: tuple[RiskScoreMapping, ...] = ()
    exceptions_list: tuple[ExceptionListRef, ...] = ()
    alert_suppression: AlertSuppression | None = None
    enabled: bool = True
    #: Kibana's saved-object id (present in rule exports); see :attr:`uuid`.
    id: str | None = None
    #: Kibana's free-form ``meta`` object (credwatch's own keys are removed on load).
    meta: Mapping[str, Any] = field(default_factory=dict)
    metadata: RuleMetadata = field(default_factory=RuleMetadata)
    tests: RuleTestSuite = field(default_factory=RuleTestSuite)
    #: Every other Kibana rule field, kept verbatim for lossless round-trips.
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: Other top-level tables of a detection-rules file (e.g. ``[transform]``), verbatim.
    other_sections: Mapping[str, Any] = field(default_factory=dict)
    #: Where the rule was loaded from (``path`` or ``path:line``); not part of equality.
    source: str | None = field(default=None, compare=False)

    @property
    def uuid(self) -> str:
        """The identity used as ``kibana.alert.rule.uuid`` and in alert ids.

        Kibana uses the rule's saved-object id (random per installation). A
        rule exported from Kibana carries it as ``id`` and credwatch uses it, so
        alert ids for Elasticsearch events equal Kibana's. A rule without one
        (a detection-rules TOML file) uses its stable ``rule_id`` instead.
        """
        return self.id or self.rule_id

    @property
    def time_fields(self) -> tuple[str, str | None]:
        """The (primary, secondary) time fields of the rule's search window.

        As Kibana's ``buildTimeRangeFilter``: the primary field is
        ``timestamp_override`` or ``@timestamp``; ``@timestamp`` is the fallback
        (used only when the primary is missing) unless the override is
        ``@timestamp`` itself or ``timestamp_override_fallback_disabled`` is set.
        """
        primary = self.timestamp_override or "@timestamp"
        if primary == "@timestamp" or self.timestamp_override_fallback_disabled:
            return primary, None
        return primary, "@timestamp"
