"""Elasticsearch-style field access over nested, flat-dotted or mixed documents.

Elasticsearch treats ``{"process": {"args": [..]}}`` and ``{"process.args": [..]}``
as the same field, and arrays of objects contribute every element's values.
These helpers reproduce that without copying the event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Scalar = str | int | float | bool


def _objects(obj: Any, parts: Sequence[str], i: int, out: list[Any]) -> None:
    """Collect the objects stored under ``parts[i:]`` (values go through :func:`_values`)."""
    if isinstance(obj, list):
        for item in obj:
            _objects(item, parts, i, out)
        return
    if i == len(parts):
        if isinstance(obj, dict):
            out.append(obj)
        return
    if not isinstance(obj, dict):
        return
    # An object may also be spelled with dotted keys ({"items.name": "a"}),
    # which Elasticsearch expands into {"items": {"name": "a"}} at index time.
    prefix = ".".join(parts[i:]) + "."
    synthetic = {k[len(prefix):]: v for k, v in obj.items() if k.startswith(prefix)}
    if synthetic:
        out.append(synthetic)
    # Try every split of the remaining path: "a.b.c" may be stored as
    # {"a": {"b.c": ..}}, {"a.b": {"c": ..}}, {"a.b.c": ..} or a mixture.
    key = parts[i]
    for j in range(i + 1, len(parts) + 1):
        if j > i + 1:
            key = key + "." + parts[j - 1]
        if key in obj:
            _objects(obj[key], parts, j, out)


_MISSING = object()
#: ``parts -> for each depth i, the dotted keys ".".join(parts[i:j]) with j``, for j > i + 1.
_DOTTED: dict[tuple[str, ...], list[list[tuple[str, int]]]] = {}


def _dotted(parts: tuple[str, ...]) -> list[list[tuple[str, int]]]:
    found = _DOTTED.get(parts)
    if found is None:
        found = [[(".".join(parts[i:j]), j) for j in range(i + 2, len(parts) + 1)]
                 for i in range(len(parts))]
        if len(_DOTTED) < 4096:
            _DOTTED[parts] = found
    return found


def _values(obj: Any, parts: tuple[str, ...], i: int, out: list[Any],
            dotted: list[list[tuple[str, int]]]) -> None:
    # The same splits as `_objects`, in the same order, but collecting scalar leaves
    # and iterative down the common path (plain nested objects, no dotted keys):
    # this is the evaluator's and the triage's hot loop, so it allocates nothing there.
    n = len(parts)
    while True:
        if isinstance(obj, list):
            for item in obj:
                _values(item, parts, i, out, dotted)
            return
        if i == n:
            if obj is not None and not isinstance(obj, dict):
                out.append(obj)
            return
        if not isinstance(obj, dict):
            return
        alternatives: list[tuple[Any, int]] | None = None
        for key, j in dotted[i]:
            if key in obj:
                if alternatives is None:
                    alternatives = []
                alternatives.append((obj[key], j))
        nxt = obj.get(parts[i], _MISSING)
        if alternatives is None:
            if nxt is _MISSING:
                return
            obj = nxt
            i += 1
            continue
        if nxt is not _MISSING:
            _values(nxt, parts, i + 1, out, dotted)
        for sub, j in alternatives:
            _values(sub, parts, j, out, dotted)
        return


#: ``path -> (parts, dotted keys)`` for field names given as strings.
_PLANS: dict[str, tuple[tuple[str, ...], list[list[tuple[str, int]]]]] = {}


def get_values(event: Mapping[str, Any], path: str | Sequence[str]) -> list[Any]:
    """Return every non-null scalar value of field ``path`` (``[]`` when missing)."""
    if isinstance(path, str):
        plan = _PLANS.get(path)
        if plan is None:
            parts = tuple(path.split("."))
            plan = (parts, _dotted(parts))
            if len(_PLANS) < 4096:
                _PLANS[path] = plan
    else:
        parts = tuple(path)
        plan = (parts, _dotted(parts))
    out: list[Any] = []
    _values(event, plan[0], 0, out, plan[1])
    return out


def get_objects(event: Mapping[str, Any], path: str | Sequence[str]) -> list[dict[str, Any]]:
    """Return the objects stored under ``path`` (arrays of objects are expanded)."""
    parts = path.split(".") if isinstance(path, str) else path
    out: list[Any] = []
    _objects(event, parts, 0, out)
    return out


def iter_leaves(event: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted field name, scalar value)`` for every non-null leaf."""
    for key, value in event.items():
        name = f"{prefix}.{key}" if prefix else key
        yield from _leaves(name, value)


def _leaves(name: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        yield from iter_leaves(value, name)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(name, item)
    elif value is not None:
        yield name, value


def flatten(event: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Flatten to ``{dotted field: [values]}``; nested and dotted keys merge."""
    out: dict[str, list[Any]] = {}
    for name, value in iter_leaves(event):
        out.setdefault(name, []).append(value)
    return out


def unflatten(event: Mapping[str, Any]) -> dict[str, Any]:
    """Expand dotted keys into nested objects (the inverse of flat-dotted export)."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        val = unflatten(value) if isinstance(value, dict) else value
        if isinstance(val, list):
            val = [unflatten(v) if isinstance(v, dict) else v for v in val]
        parts = key.split(".")
        cur = out
        for part in parts[:-1]:
            nxt = cur.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                cur[part] = nxt
            cur = nxt
        last = parts[-1]
        if isinstance(cur.get(last), dict) and isinstance(val, dict):
            cur[last].update(val)
        else:
            cur[last] = val
    return out
