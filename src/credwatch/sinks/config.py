"""The sink configuration file: TOML, private to its owner, secrets from the environment.

Example (``$XDG_CONFIG_HOME/credwatch/config.toml``)::

    [sinks.oncall]
    type = "slack"
    url_env = "SLACK_WEBHOOK_URL"     # a Slack webhook URL is itself a secret

    [sinks.siem]
    type = "syslog"
    address = "tcp://10.0.0.5:601"

Secrets (``token``, ``url`` of Slack, ``api_key``, ``password``) are read from
the environment variable named by ``<key>_env``, or from the file itself. The
file is refused when its group or other users have any access to it, or when
it belongs to another user, since it may hold secrets and decides where alerts
(full command lines) go. Secrets are never taken from the command line.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credwatch.errors import ConfigError

KINDS = ("webhook", "slack", "syslog", "elasticsearch")
#: A config file larger than this is refused (it is a handful of tables).
MAX_CONFIG_BYTES = 1 << 20
MAX_SINKS = 64
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SECRET_KEYS = ("token", "url", "api_key", "password")
_BOUNDS: dict[str, tuple[float, float]] = {
    "batch": (1, 10_000), "timeout": (0.05, 600), "rate": (0, 10_000),
    "throttle": (0, 86_400), "backoff": (0.01, 3_600), "max_backoff": (0.01, 86_400),
    "max_response_bytes": (1024, 64 << 20),
}
_TEXT_KEYS = ("type", "address", "ca_file", "index", "space", "username", "facility",
              "app_name")
_BOOL_KEYS = ("no_redact", "http2", "verify")


@dataclass(slots=True, frozen=True)
class SinkConfig:
    """One declared sink. ``secret_values`` lists every secret, to scrub from messages."""

    name: str
    kind: str
    url: str | None = None
    address: str | None = None
    token: str | None = None
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    verify: bool = True
    http2: bool = False
    timeout: float = 10.0
    batch: int = 1
    rate: float = 0.0
    throttle: float = 0.0
    backoff: float = 1.0
    max_backoff: float = 300.0
    max_response_bytes: int = 1 << 20
    no_redact: bool = False
    index: str | None = None
    space: str = "default"
    facility: str = "auth"
    app_name: str = "credwatch"
    secret_values: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:  # never print secrets, even in a debug traceback
        return f"SinkConfig(name={self.name!r}, kind={self.kind!r})"


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/credwatch/config.toml`` (``~/.config`` when unset)."""
    env = environ if environ is not None else os.environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".config")
    return Path(base) / "credwatch" / "config.toml"


def _read_private(path: Path) -> bytes:
    """Read ``path`` after checking, on the opened file, that only its owner can use it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: the config file is not a regular file")
        if st.st_uid != os.geteuid():
            raise ConfigError(f"{path}: the config file belongs to uid {st.st_uid}, not to you "
                              f"(uid {os.geteuid()}); it may hold secrets, so credwatch reads "
                              f"only its own: run  chown {os.geteuid()} {path}")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise ConfigError(f"{path}: the config file is accessible to other users (mode "
                              f"{mode:04o}); it may hold secrets: run  chmod 600 {path}")
        data = fh.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: the config file is larger than {MAX_CONFIG_BYTES} bytes")
    return data


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> dict[str, SinkConfig]:
    """Parse the config file's ``[sinks.NAME]`` tables into :class:`SinkConfig` by name."""
    path = Path(path)
    env = environ if environ is not None else os.environ
    text = _read_private(path)
    try:
        doc = tomllib.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(doc) - {"sinks"}
    if unknown:
        raise ConfigError(f"{path}: unknown table or key {sorted(unknown)[0]!r} (expected [sinks.NAME])")
    tables = doc.get("sinks", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path} [sinks]: expected tables [sinks.NAME]")
    if len(tables) > MAX_SINKS:
        raise ConfigError(f"{path} [sinks]: at most {MAX_SINKS} sinks")
    return {name: _sink(path, name, table, env) for name, table in tables.items()}


def _where(path: Path, name: str, key: str | None = None) -> str:
    return f"{path} [sinks.{name}{'.' + key if key else ''}]"


def _secret(path: Path, name: str, table: dict[str, Any], key: str,
            env: Mapping[str, str]) -> str | None:
    var = table.pop(f"{key}_env", None)
    value = table.pop(key, None)
    if var is not None and value is not None:
        raise ConfigError(f"{_where(path, name, key)}: give {key} or {key}_env, not both")
    if var is not None:
        if not isinstance(var, str) or not var:
            raise ConfigError(f"{_where(path, name, key + '_env')}: expected a variable name")
        if var not in env:
            raise ConfigError(f"{_where(path, name, key + '_env')}: environment variable "
                              f"{var} is not set")
        return env[var]
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{_where(path, name, key)}: expected a string")
    return value


def _typed(path: Path, name: str, table: dict[str, Any], values: dict[str, Any]) -> None:
    """Move the text, boolean and bounded numeric keys of ``table`` into ``values``, checked."""
    for key in _TEXT_KEYS:
        if key in table:
            v = table.pop(key)
            if not isinstance(v, str) or not v or len(v) > 4096:
                raise ConfigError(f"{_where(path, name, key)}: expected a non-empty string")
            values[key] = v
    for key in _BOOL_KEYS:
        if key in table:
            v = table.pop(key)
            if not isinstance(v, bool):
                raise ConfigError(f"{_where(path, name, key)}: expected true or false")
            values[key] = v
    for key, (lo, hi) in _BOUNDS.items():
        if key in table:
            v = table.pop(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                raise ConfigError(f"{_where(path, name, key)}: expected a number from {lo:g} to {hi:g}")
            values[key] = int(v) if key in ("batch", "max_response_bytes") else float(v)


def _kind_defaults(path: Path, name: str, kind: str, values: dict[str, Any]) -> None:
    if kind == "slack":
        values.setdefault("throttle", 60.0)
        values.setdefault("rate", 1.0)  # Slack accepts about one message a second per webhook
    if kind == "elasticsearch":
        values.setdefault("batch", 500)
        if values.get("throttle"):
            raise ConfigError(f"{_where(path, name, 'throttle')}: an Elasticsearch sink stores "
                              "every alert; it is not throttled")


def _sink(path: Path, name: str, raw: Any, env: Mapping[str, str]) -> SinkConfig:
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{_where(path, name)}: a sink name is 1-64 letters, digits, '_', '.', '-'")
    if not isinstance(raw, dict):
        raise ConfigError(f"{_where(path, name)}: expected a table")
    table = dict(raw)
    values: dict[str, Any] = {"name": name}
    for key in _SECRET_KEYS:
        values[key] = _secret(path, name, table, key, env)
    _typed(path, name, table, values)
    if table:
        raise ConfigError(f"{_where(path, name, sorted(table)[0])}: unknown key")
    kind = values.pop("type", None)
    if kind not in KINDS:
        raise ConfigError(f"{_where(path, name, 'type')}: expected one of {', '.join(KINDS)}")
    _kind_defaults(path, name, kind, values)
    _check_target(path, name, kind, values)
    secrets = tuple(v for k in _SECRET_KEYS if (v := values.get(k)) and (k != "url" or kind == "slack"
                                                                          or _has_userinfo(v)))
    return SinkConfig(kind=kind, secret_values=secrets, **values)


def _has_userinfo(url: str) -> bool:
    return "@" in url.split("://", 1)[-1].split("/", 1)[0]


def _check_target(path: Path, name: str, kind: str, values: dict[str, Any]) -> None:
    if kind == "syslog":
        addr = values.get("address")
        if not addr or not re.fullmatch(r"(udp|tcp)://[^/\s]+:\d{1,5}|unix://\S+", addr):
            raise ConfigError(f"{_where(path, name, 'address')}: expected udp://HOST:PORT, "
                              "tcp://HOST:PORT or unix:///PATH")
        return
    url = values.get("url")
    if not url or not re.match(r"https?://[^/\s]", url):
        raise ConfigError(f"{_where(path, name, 'url')}: expected an http:// or https:// URL")
    if values.get("ca_file") and not os.path.isfile(values["ca_file"]):
        raise ConfigError(f"{_where(path, name, 'ca_file')}: {values['ca_file']}: no such file")
