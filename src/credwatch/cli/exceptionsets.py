"""Which exception items apply to which rule, for ``scan`` and ``run`` alike.

Lists come from two places. ``--exceptions FILE`` (Kibana's exception-list
export) is attached to every rule of the command, as an analyst tuning a hunt
means it. Lists imported into the alert store (``credwatch exceptions import``)
apply, as in Kibana, only to the rules whose ``exceptions_list`` references
them; an imported list that none of the command's rules references does
nothing, and that is said on stderr (as a warning naming the list and how to
apply it), never left silent. A reference to a list that exists nowhere is
reported too (Kibana applies no items for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from credwatch.alerts.display import terminal_text
from credwatch.cli.env import Env

if TYPE_CHECKING:
    from credwatch.engine.exceptions import ExceptionFilter, ExceptionList
    from credwatch.engine.scan import CompiledRule

#: Kibana's Endpoint exception list, enforced by Elastic Defend rather than by rules.
ENDPOINT_LIST_ID = "endpoint_list"


def exceptions_apply(rules: Sequence[CompiledRule], *, stored: Sequence[ExceptionList] = (),
                     files: Sequence[str] = (), value_lists: Sequence[str] = ()) -> bool:
    """False when :func:`rule_exceptions` would give only empty filters and say nothing.

    That is: no list in the store, no ``--exceptions`` or ``--value-list`` file, and
    no rule referencing a list (the Endpoint list aside). A plain hunt then never
    loads the exception engine.
    """
    return bool(stored or files or value_lists) or any(
        ref.list_id != ENDPOINT_LIST_ID for crule in rules for ref in crule.rule.exceptions_list)


def rule_exceptions(rules: Sequence[CompiledRule], *, stored: Sequence[ExceptionList] = (),
                    files: Sequence[str] = (), value_lists: Sequence[str] = (),
                    env: Env, quiet: bool = False) -> list[ExceptionFilter]:
    """One exception filter per rule (in order); warnings go to ``env.stderr``.

    Unreadable or invalid files raise :class:`~credwatch.errors.ConfigError`
    before anything is evaluated.
    """
    # Only when some list may apply (see exceptions_apply): it costs a scan ~5 ms to load.
    from credwatch.engine.exceptions import ExceptionSet, load_export

    exset = ExceptionSet()
    exset.add(stored)
    for path in value_lists:
        exset.value_lists.add_path(path)
    for path in files:
        exset.add(load_export(path), attach_to_all=True)
    filters: list[ExceptionFilter] = []
    referenced: set[tuple[str, str]] = set()
    for crule in rules:
        # Kibana's rule executor skips the Endpoint list: Elastic Defend applies it on the host.
        refs = [(r.list_id, r.namespace_type) for r in crule.rule.exceptions_list
                if r.list_id != ENDPOINT_LIST_ID]
        referenced.update(refs)
        flt, warnings = exset.for_rule(refs)
        if not quiet:
            for w in warnings:
                env.stderr.write(terminal_text(f"credwatch: warning: rule {crule.rule.name!r}: {w}")
                                 + "\n")
        filters.append(flt)
    for lst in stored:
        if lst.key not in referenced and lst.key not in exset.global_keys:
            env.stderr.write(terminal_text(
                f"credwatch: warning: exception list {lst.list_id!r} ({lst.namespace_type}, "
                f"{len(lst.items)} item(s)) is imported in the store but no rule here references "
                "it, so it is not applied; pass its export with --exceptions to apply it to "
                "every rule") + "\n")
    return filters
