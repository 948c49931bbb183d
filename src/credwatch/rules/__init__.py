"""Rules: the Elastic rule model, its file formats, the loader and the built-in rules.

>>> from credwatch.rules import load_rule
>>> load_rule().rule_id  # the default: Elastic's credential-path rule, v1
'5f0fff18-f340-444b-9a98-c49ade766ff4'
"""

# The names are imported on first use (PEP 562): importing one submodule of the
# package must not import the others (start-up of the command line).
from __future__ import annotations

from typing import TYPE_CHECKING

from credwatch.lazyexports import lazy_getattr

if TYPE_CHECKING:
    from credwatch.rules.loader import (
        DEFAULT_RULE_ID,
        LoadResult,
        SkippedFile,
        adhoc_rule,
        builtin_rules,
        default_rule,
        load_file,
        load_folder,
        load_paths,
        load_rule,
        resolve_rules,
    )
    from credwatch.rules.model import Rule

_EXPORTS = {
    "DEFAULT_RULE_ID": "credwatch.rules.loader",
    "LoadResult": "credwatch.rules.loader",
    "SkippedFile": "credwatch.rules.loader",
    "adhoc_rule": "credwatch.rules.loader",
    "builtin_rules": "credwatch.rules.loader",
    "default_rule": "credwatch.rules.loader",
    "load_file": "credwatch.rules.loader",
    "load_folder": "credwatch.rules.loader",
    "load_paths": "credwatch.rules.loader",
    "load_rule": "credwatch.rules.loader",
    "resolve_rules": "credwatch.rules.loader",
    "Rule": "credwatch.rules.model",
}

__all__ = [
    "DEFAULT_RULE_ID",
    "LoadResult",
    "Rule",
    "SkippedFile",
    "adhoc_rule",
    "builtin_rules",
    "default_rule",
    "load_file",
    "load_folder",
    "load_paths",
    "load_rule",
    "resolve_rules",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
