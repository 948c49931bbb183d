"""Elasticsearch field types for ECS fields.

Kibana's detection engine loads the index mappings, so each comparison is
typed: keyword fields get case-sensitive ``term``/``wildcard`` queries, longs
compare numerically, ``ip`` fields accept CIDR values, dates compare as
instants. credwatch has no mapping to load, so it carries the ECS types of the
fields process rules use. A field that is not listed is a keyword: Elastic's
index templates map unknown strings to keyword (the ``strings_as_keyword``
dynamic template), which is what the detection engine then queries.
"""

from __future__ import annotations

from collections.abc import Mapping

KEYWORD = "keyword"
NUMERIC_TYPES = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float",
     "unsigned_long"}
)
#: Types that behave like keyword for term/wildcard queries (exact, case-sensitive).
KEYWORD_LIKE = frozenset({"keyword", "constant_keyword", "wildcard", "flattened", "version"})
TEXT_TYPES = frozenset({"text", "match_only_text"})
SUPPORTED_TYPES = NUMERIC_TYPES | KEYWORD_LIKE | TEXT_TYPES | {"ip", "date", "date_nanos",
                                                               "boolean"}

_PROCESS_LONGS = ("pid", "pgid", "args_count", "uptime", "exit_code", "thread.id",
                  "tty.char_device.major", "tty.char_device.minor")
_PROCESS_PREFIXES = ("process", "process.parent", "process.parent.group_leader",
                     "process.group_leader", "process.session_leader", "process.entry_leader",
                     "process.entry_leader.parent", "process.session_leader.parent",
                     "process.entry_leader.parent.session_leader",
                     "process.session_leader.parent.session_leader", "process.previous")


def _ecs() -> dict[str, str]:
    types: dict[str, str] = {
        "@timestamp": "date",
        "event.ingested": "date",
        "event.created": "date",
        "event.start": "date",
        "event.end": "date",
        "event.duration": "long",
        "event.sequence": "long",
        "event.severity": "long",
        "event.risk_score": "float",
        "event.risk_score_norm": "float",
        "message": "match_only_text",
        "error.message": "match_only_text",
        "source.ip": "ip",
        "destination.ip": "ip",
        "client.ip": "ip",
        "server.ip": "ip",
        "host.ip": "ip",
        "source.port": "long",
        "destination.port": "long",
        "client.port": "long",
        "server.port": "long",
        "source.bytes": "long",
        "destination.bytes": "long",
        "network.bytes": "long",
        "host.uptime": "long",
        "host.boot.id": "keyword",
        "host.pid_ns_ino": "keyword",
        "file.size": "long",
        "file.created": "date",
        "file.mtime": "date",
        "file.ctime": "date",
        "file.accessed": "date",
        "data_stream.type": "constant_keyword",
        "data_stream.dataset": "constant_keyword",
        "data_stream.namespace": "constant_keyword",
        "kibana.alert.risk_score": "float",
        "kibana.alert.original_time": "date",
        "kibana.alert.depth": "long",
        "auditd.sequence": "long",
        "auditd.result": "keyword",
        "user.changes.id": "keyword",
        "process.io.total_bytes_captured": "long",
        "process.io.total_bytes_skipped": "long",
    }
    for prefix in _PROCESS_PREFIXES:
        for name in _PROCESS_LONGS:
            types[f"{prefix}.{name}"] = "long"
        types[f"{prefix}.start"] = "date"
        types[f"{prefix}.end"] = "date"
        types[f"{prefix}.interactive"] = "boolean"
        types[f"{prefix}.same_as_process"] = "boolean"
        # ECS maps command_line (and working_directory's .text) as wildcard, which
        # answers term and wildcard queries exactly and case-sensitively.
        types[f"{prefix}.command_line"] = "wildcard"
        types[f"{prefix}.name.text"] = "match_only_text"
        types[f"{prefix}.executable.text"] = "match_only_text"
        types[f"{prefix}.command_line.text"] = "match_only_text"
        types[f"{prefix}.title.text"] = "match_only_text"
        types[f"{prefix}.working_directory.text"] = "match_only_text"
        types[f"{prefix}.real_user.id"] = "keyword"
    return types


#: The built-in type table. Override per query with ``field_types``.
ECS_FIELD_TYPES: Mapping[str, str] = {
    **_ecs(),
    **{f"{name}.text": "match_only_text" for name in (
        "user.name", "user.full_name", "user.effective.name", "host.os.name", "host.os.full",
        "file.path", "file.target_path", "url.full", "url.original", "user_agent.original",
        "process.user.name", "process.parent.user.name", "group.name")},
}

#: Multi-fields are indexed from their parent's value and never appear in _source.
MULTI_FIELD_SUFFIXES = (".text",)


def multi_field_parent(name: str, overrides: Mapping[str, str] | None = None) -> str | None:
    """The source field a multi-field (``process.name.text``) is indexed from, or None."""
    for suffix in MULTI_FIELD_SUFFIXES:
        if name.endswith(suffix) and (name in ECS_FIELD_TYPES or (overrides and name in overrides)):
            return name[: -len(suffix)]
    return None


def multi_fields_of(name: str) -> list[str]:
    """The known multi-fields indexed from ``name`` (e.g. ``process.name`` → ``process.name.text``)."""
    return [name + s for s in MULTI_FIELD_SUFFIXES if name + s in ECS_FIELD_TYPES]


def field_type(name: str, overrides: Mapping[str, str] | None = None) -> str:
    """Return the Elasticsearch type of ``name`` (keyword when unknown)."""
    if overrides and name in overrides:
        return overrides[name]
    return ECS_FIELD_TYPES.get(name, KEYWORD)
