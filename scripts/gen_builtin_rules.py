#!/usr/bin/env python3
"""Regenerate credwatch/rules/_builtin.py and credwatch/kql/_prepared.py after editing a
built-in rule (credwatch/rules/builtin/*.toml).

``--check`` exits 1 when the shipped modules are stale.
"""

import sys

from credwatch.rules.prepared import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
