"""KQL: parser, AST, printer and linter.

>>> from credwatch.kql import parse, to_kql
>>> to_kql(parse("process.name:(cat or head)"))
'process.name:(cat or head)'
"""

from credwatch.kql.ast import Node
from credwatch.kql.parser import parse
from credwatch.kql.printer import to_kql

__all__ = ["Node", "parse", "to_kql"]
