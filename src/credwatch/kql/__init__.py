"""KQL: parser, AST, printer and linter.

>>> from credwatch.kql import parse, to_kql
>>> to_kql(parse("process.name:(cat or head)"))
'process.name:(cat or head)'
"""

# The names are imported on first use (PEP 562): importing one submodule of the
# package must not import the others (start-up of the command line).
from __future__ import annotations

from typing import TYPE_CHECKING

from credwatch.lazyexports import lazy_getattr

if TYPE_CHECKING:
    from credwatch.kql.ast import Node
    from credwatch.kql.parser import parse
    from credwatch.kql.printer import to_kql

_EXPORTS = {
    "Node": "credwatch.kql.ast",
    "parse": "credwatch.kql.parser",
    "to_kql": "credwatch.kql.printer",
}

__all__ = [
    "Node",
    "parse",
    "to_kql",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
