"""credwatch's own error types.

Every error a user can trigger is one of these, so the CLI can print a clear
message (with a location where one exists) instead of a traceback.
"""

from __future__ import annotations


class CredwatchError(Exception):
    """Base class for every error credwatch reports to a user."""

    exit_code: int = 2

    def render(self) -> str:
        """Return the human-readable, multi-line form of this error."""
        return str(self)


def caret_excerpt(text: str, line: int, column: int) -> str:
    """Return the 1-based ``line`` of ``text`` with a caret under ``column``."""
    lines = text.splitlines() or [""]
    idx = min(max(line, 1), len(lines)) - 1
    src = lines[idx].replace("\t", " ")
    return f"{src}\n{' ' * max(column - 1, 0)}^"


class KqlSyntaxError(CredwatchError):
    """A KQL query that does not parse. Carries line, column and a caret excerpt."""

    def __init__(self, message: str, query: str, line: int, column: int, offset: int) -> None:
        self.message = message
        self.query = query
        self.line = line
        self.column = column
        self.offset = offset
        super().__init__(f"KQL syntax error at line {line}, column {column}: {message}")

    @property
    def excerpt(self) -> str:
        """The offending query line with a caret under the error position."""
        return caret_excerpt(self.query, self.line, self.column)

    def render(self) -> str:
        return f"{self}\n{self.excerpt}"


class KqlCompileError(CredwatchError):
    """A query that parses but cannot be compiled for a target (type clash, unsupported node)."""


class UnsupportedError(KqlCompileError):
    """A backend was asked to express a node kind or feature it does not support."""


class RuleLoadError(CredwatchError):
    """A rule file that cannot be loaded. Names the file and, where known, the field."""

    def __init__(self, message: str, path: str | None = None, field: str | None = None,
                 detail: str | None = None) -> None:
        self.message = message
        self.path = path
        self.field = field
        self.detail = detail
        where = path or "<rule>"
        if field:
            where += f" [{field}]"
        super().__init__(f"{where}: {message}")

    @classmethod
    def invalid_kql(cls, exc: KqlSyntaxError, path: str | None, field: str) -> RuleLoadError:
        """A rule whose query does not parse: the message once, then the caret excerpt."""
        return cls(f"invalid KQL at query line {exc.line}, column {exc.column}: {exc.message}",
                   path, field, exc.excerpt)

    def render(self) -> str:
        return f"{self}\n{self.detail}" if self.detail else str(self)


class SourceError(CredwatchError):
    """Bad input data. Names the file and line."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        loc = path or "<input>"
        if line is not None:
            loc += f":{line}"
        super().__init__(f"{loc}: {message}")


class ConfigError(CredwatchError):
    """Bad command-line arguments or configuration."""
