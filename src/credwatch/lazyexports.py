"""Lazy package exports: a package's public names are imported on first use.

``credwatch.alerts``, ``kql``, ``rules`` and ``triage`` re-export names from their
modules for convenience; importing all of those modules eagerly would make every
command pay for every subsystem at start-up (issue #15). Each package hands its
name → module table to :func:`lazy_getattr` and uses the result as its module
``__getattr__`` (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, exports: Mapping[str, str],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` importing ``exports[name]`` on first use and caching the value."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
