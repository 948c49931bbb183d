"""Kibana exception lists: import, evaluate and write them.

Semantics follow Kibana's ``build_exception_filter.ts`` (lists plugin), where
the exception items of a rule become one negated filter of the rule's search:

* an item's ``entries`` are ANDed, the items of all attached lists are ORed, and
  an event that matches any item is excluded (before ``max_signals`` applies,
  because the filter is part of the query);
* ``match`` is a ``match_phrase`` (exact, case-sensitive on keyword fields),
  ``match_any`` ORs several of those, ``wildcard`` is an Elasticsearch
  ``wildcard`` query (``*`` and ``?``, anchored, case-sensitive, ``\\`` escapes),
  ``exists`` is an ``exists`` query, ``list`` is a ``terms`` query over a value
  list (``ip_range`` lists also take ``a-b`` ranges and CIDRs; ``ip`` lists take
  addresses and CIDRs), and ``nested`` evaluates its inner entries against each
  object under the nested path separately;
* operator ``excluded`` negates the entry (so it is true when the field is missing);
* an item with ``os_types`` also needs ``host.os.type`` (or Endpoint's
  ``host.os.name.caseless``) to equal one of them;
* items whose ``expire_time`` is before the rule execution are ignored.

Kibana exports exception lists as NDJSON: list containers (``list_id``,
``type``, ``namespace_type`` …), items (``item_id``, ``list_id``, ``entries``,
``type: simple`` …) and one summary line (``exported_exception_list_count`` …).
:func:`load_export` reads that shape and :func:`write_export` writes it, so a
file credwatch writes imports into Kibana.

Value lists (``list`` entries) are files with one value per line, as Kibana's
value-list import takes them; a list's id is the file name, as in Kibana.

The package is split by job: :mod:`.model` (entries, items, lists),
:mod:`.loading` (exports and value-list files), :mod:`.matching` (compiled
filters) and :mod:`.writing` (exports credwatch writes and the alert store).
"""

from __future__ import annotations

from credwatch.engine.exceptions.loading import ValueLists, load_export, parse_export
from credwatch.engine.exceptions.matching import ExceptionFilter, ExceptionSet
from credwatch.engine.exceptions.model import (
    ENTRY_TYPES,
    LIST_TYPES,
    NESTED_ENTRY_TYPES,
    OPERATORS,
    Entry,
    ExceptionItem,
    ExceptionList,
    ExceptionListError,
)
from credwatch.engine.exceptions.writing import (
    ExceptionStore,
    entries_from_alert,
    list_container,
    new_item,
    write_export,
)

__all__ = [
    "ENTRY_TYPES",
    "LIST_TYPES",
    "NESTED_ENTRY_TYPES",
    "OPERATORS",
    "Entry",
    "ExceptionFilter",
    "ExceptionItem",
    "ExceptionList",
    "ExceptionListError",
    "ExceptionSet",
    "ExceptionStore",
    "ValueLists",
    "entries_from_alert",
    "list_container",
    "load_export",
    "new_item",
    "parse_export",
    "write_export",
]
