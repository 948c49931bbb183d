"""Rules: the Elastic rule model, its file formats, the loader and the built-in rules.

>>> from credwatch.rules import load_rule
>>> load_rule().rule_id  # the default: Elastic's credential-path rule, v1
'5f0fff18-f340-444b-9a98-c49ade766ff4'
"""

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
