"""``--sink``/``--config`` for ``run`` and ``watch``: queue alerts in the outbox and deliver them.

With ``--sink NAME`` (repeatable) every new alert is queued for those sinks in
the transaction that stores it, and a background thread delivers the outbox
while the command runs, with a last drain when it stops. Alerts a receiver
did not take stay in the outbox for the next ``run``/``watch`` or for
``credwatch sinks deliver``; a delivery problem is reported on standard error
and never changes the exit status (no alert is lost by it).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from credwatch.alerts.display import terminal_text
from credwatch.cli.env import Env
from credwatch.errors import ConfigError
from credwatch.sinks.output.base import Sink
from credwatch.sinks.redact import redact_doc

if TYPE_CHECKING:
    from credwatch.alerts.store import AlertStore
    from credwatch.sinks.config import SinkConfig
    from credwatch.sinks.deliver import DeliveryThread

# The sink config (tomllib) and delivery (httpx: ~50 ms) are imported only with --sink
# (start-up of every run and watch).


def add_sink_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--sink NAME`` (repeatable) and ``--config PATH``."""
    group = parser.add_argument_group("sinks (see `credwatch sinks --help`)")
    group.add_argument("--sink", action="append", default=[], metavar="NAME",
                       help="also send alerts to this sink of the config file; repeatable")
    group.add_argument("--config", metavar="PATH",
                       help="sink configuration (TOML); default $XDG_CONFIG_HOME/credwatch/config.toml")
    group.add_argument("--redact", action="store_true",
                       help="also redact secrets in the stored alerts and the --output/--bulk "
                       "documents (notifications are redacted by default)")


def config_path(args: argparse.Namespace, env: Env) -> str:
    """The config file named by ``--config`` or the default one."""
    from credwatch.sinks.config import default_config_path

    return str(args.config or default_config_path(env.environ))


def select(args: argparse.Namespace, env: Env, names: Sequence[str]) -> list[SinkConfig]:
    """The configs of the sinks named (in order, each once); an unknown name is a ConfigError."""
    from credwatch.sinks.config import load_config

    path = config_path(args, env)
    configs = load_config(path, env.environ)
    out: list[SinkConfig] = []
    for name in dict.fromkeys(names):
        if name not in configs:
            known = ", ".join(sorted(configs)) or "none"
            raise ConfigError(f"--sink {name}: no sink of that name in {path} (declared: {known})")
        out.append(configs[name])
    return out


class RedactingSink:
    """An output sink that receives redacted copies of the alerts (``--redact``)."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner

    def write(self, alert: Mapping[str, Any]) -> None:
        """Write the redacted alert."""
        self.inner.write(redact_doc(alert))

    def close(self) -> None:
        """Close the wrapped sink."""
        self.inner.close()


def start_delivery(args: argparse.Namespace, env: Env, store: AlertStore,
                   outputs: list[Sink] | None = None) -> DeliveryThread | None:
    """Apply ``--redact`` to the store and ``outputs`` (in place), route new alerts to the
    ``--sink``s and start delivering; None without sinks."""
    if getattr(args, "redact", False):
        store.transform = redact_doc
        if outputs is not None:
            outputs[:] = [RedactingSink(s) for s in outputs]
    names = getattr(args, "sink", None) or []
    if not names:
        return None
    configs = select(args, env, names)
    store.outbox_sinks = tuple(c.name for c in configs)

    def warn(message: str) -> None:
        env.stderr.write(f"credwatch: warning: {terminal_text(message)} (kept in the outbox)\n")
        env.stderr.flush()

    from credwatch.sinks.deliver import DeliveryThread

    return DeliveryThread(store.path, configs, on_error=warn).start()


def finish_delivery(thread: DeliveryThread | None, env: Env, *, quiet: bool = False) -> None:
    """Stop the delivery thread after a last drain and summarise on standard error."""
    if thread is None:
        return
    report = thread.stop()
    if quiet:
        return
    for config in thread.configs:
        name = config.name
        env.stderr.write(f"credwatch: sink {terminal_text(name)}: {report.delivered.get(name, 0)} "
                         f"delivered, {report.parked.get(name, 0)} parked, "
                         f"{report.retried.get(name, 0)} failed attempt(s)\n")
