"""``kibana.alert.reason``, formatted exactly as Kibana's detection engine does.

Kibana builds one sentence for every security rule type from ten ECS fields
(``utils/reason_formatters.ts`` in the security_solution plugin)::

    <event.category> event with process <process.name>, parent process
    <process.parent.name>, file <file.name>, source <ip>:<port>, destination
    <ip>:<port>, by <user.name> on <host.name> created <severity> alert <rule name>.

Behaviour reproduced here, quirks included:

* a part is left out when its field is missing, null, ``""``, ``[]``, ``"-"``
  or ``["-"]``; arrays are joined with ``", "``;
* a field holding a bare number or boolean counts as missing, because Kibana
  tests ``value.length`` (so a numeric ``source.port`` is never shown, while
  ``["22"]`` or ``"22"`` is);
* ``with`` appears only when one of the process, parent, file, source or
  destination parts is present; the category, user and host parts do not
  count;
* a value whose text is ``null`` is dropped too (ICU ``select`` treats it as
  the ``null`` branch), though it still brings in ``with``;
* fields are looked up as lodash ``get`` does on ``_source``: a top-level
  flat-dotted key first, otherwise a walk through nested objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()
#: Paths split once (reasons, severity and risk mappings ask for the same few paths).
_PARTS: dict[str, tuple[str, ...]] = {}


def lodash_get(doc: Mapping[str, Any], path: str) -> Any:
    """Look ``path`` up the way lodash ``get`` does (literal key first, then nested)."""
    if path in doc:
        return doc[path]
    cur: Any = doc
    parts = _PARTS.get(path)
    if parts is None:
        if len(_PARTS) >= 4096:  # paths come from rules: few, but never unbounded
            _PARTS.clear()
        parts = _PARTS[path] = tuple(path.split("."))
    for part in parts:
        if isinstance(cur, (dict, Mapping)) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return _MISSING
    return cur


def _js_string(value: Any) -> str:
    # Array.prototype.join's conversion of each element
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(_js_string(v) for v in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    return str(value)


def template_value(value: Any) -> str | None:
    """Kibana's ``getFieldTemplateValue``: the text of a reason part, or None to omit it."""
    if value is _MISSING or value is None:
        return None
    if isinstance(value, str):
        return None if value in ("", "-") else value
    if isinstance(value, list):
        if not value or (len(value) == 1 and value[0] == "-"):
            return None
        return ", ".join(_js_string(v) for v in value)
    # numbers, booleans and objects have no .length in JavaScript
    return None


def build_reason(source: Mapping[str, Any], rule_name: str, severity: str) -> str:
    """Return the ``kibana.alert.reason`` sentence for an event ``source``."""

    def part(path: str) -> str | None:
        return template_value(lodash_get(source, path))

    category = part("event.category")
    process = part("process.name")
    parent = part("process.parent.name")
    file_name = part("file.name")
    src_ip, src_port = part("source.ip"), part("source.port")
    dst_ip, dst_port = part("destination.ip"), part("destination.port")
    user = part("user.name")
    host = part("host.name")
    interesting = any(v is not None for v in (process, parent, file_name, src_ip, src_port,
                                              dst_ip, dst_port))
    # ICU `select` picks the `null {}` branch for the *text* "null" too, so a value
    # that reads "null" is dropped from the sentence (but still counts for "with")
    category, process, parent, file_name, src_ip, src_port, dst_ip, dst_port, user, host = (
        None if v == "null" else v
        for v in (category, process, parent, file_name, src_ip, src_port, dst_ip, dst_port,
                  user, host))
    out = [f"{category} " if category is not None else "", "event"]
    if interesting:
        out.append(" with")
    if process is not None:
        out.append(f" process {process},")
    if parent is not None:
        out.append(f" parent process {parent},")
    if file_name is not None:
        out.append(f" file {file_name},")
    if src_ip is not None:
        out.append(f" source {src_ip}")
    if src_port is not None:
        out.append(f":{src_port},")
    if dst_ip is not None:
        out.append(f" destination {dst_ip}")
    if dst_port is not None:
        out.append(f":{dst_port},")
    if user is not None:
        out.append(f" by {user}")
    if host is not None:
        out.append(f" on {host}")
    out.append(f" created {severity} alert {rule_name}.")
    return "".join(out)
