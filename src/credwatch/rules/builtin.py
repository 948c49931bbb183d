"""The rules shipped with credwatch, prepared ahead of time.

The built-in rules are TOML files in ``builtin/``. Parsing them (tomllib), checking
them and parsing their KQL (lark) on every run cost a one-event scan about 40 ms
of start-up (issue #15), so ``scripts/gen_builtin_rules.py`` writes what that
gives, once, as Python source installed with the package: the :class:`Rule`
objects in :mod:`credwatch.rules._builtin` and the queries' syntax trees in
:mod:`credwatch.kql._prepared`. Nothing is unpickled and nothing is read from a
writable or shared place. A test regenerates both and compares them with what
parsing the TOML gives.

The generated rules are used only while every TOML file has the SHA-256 recorded
when they were generated; if one was edited (or added, or removed) since, the
files are parsed and checked as any rule file is (correct, just slower).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os

from credwatch.rules import _builtin as prepared  # generated: see the module docstring
from credwatch.rules.model import Rule

#: The rule used when none is named.
DEFAULT_RULE_ID = "5f0fff18-f340-444b-9a98-c49ade766ff4"

#: The folder of the built-in TOML files (installed with the package).
BUILTIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "builtin")


def builtin_files() -> dict[str, bytes]:
    """The built-in rule files: ``{file name: content}``, in name order."""
    names = sorted(n for n in os.listdir(BUILTIN_DIR) if n.endswith(".toml"))
    out: dict[str, bytes] = {}
    for name in names:
        with open(os.path.join(BUILTIN_DIR, name), "rb") as f:
            out[name] = f.read()
    return out


def file_digests(files: dict[str, bytes]) -> dict[str, str]:
    """SHA-256 of each file's content, the key the generated rules were made for."""
    return {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def parse_builtin(files: dict[str, bytes]) -> tuple[Rule, ...]:
    """Parse and check the built-in files as rule files are (no prepared form)."""
    # Only when the prepared form is stale: tomllib and the checks are not needed otherwise.
    from credwatch.rules.checks import validate
    from credwatch.rules.toml_format import loads_toml

    return tuple(validate(loads_toml(data.decode("utf-8"), os.path.join(BUILTIN_DIR, name)))
                 for name, data in files.items())


@functools.cache
def _builtin_rules() -> tuple[Rule, ...]:
    files = builtin_files()
    if file_digests(files) != prepared.SHA256:
        return parse_builtin(files)
    return tuple(dataclasses.replace(rule, source=os.path.join(BUILTIN_DIR, name))
                 for name, rule in prepared.RULES)


def builtin_rules() -> list[Rule]:
    """The rules shipped with credwatch (the seed rule first)."""
    rules = list(_builtin_rules())
    rules.sort(key=lambda r: r.rule_id != DEFAULT_RULE_ID)
    return rules


def default_rule() -> Rule:
    """The rule used when none is named: Elastic's credential-path rule, v1."""
    return builtin_rules()[0]
