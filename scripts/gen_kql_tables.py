#!/usr/bin/env python3
"""Regenerate src/credwatch/kql/_lalr_tables.py after changing grammar.lark or lark.

``--check`` exits 1 when the shipped tables are stale.
"""

import sys

from credwatch.kql.tables import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
