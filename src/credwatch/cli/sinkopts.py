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
from collections.abc import Sequence

from credwatch.alerts.display import terminal_text
from credwatch.alerts.store import AlertStore
from credwatch.cli.env import Env
from credwatch.errors import ConfigError
from credwatch.sinks.config import SinkConfig, default_config_path, load_config
from credwatch.sinks.deliver import DeliveryThread


def add_sink_args(parser: argparse.ArgumentParser) -> None:
    """Add ``--sink NAME`` (repeatable) and ``--config PATH``."""
    group = parser.add_argument_group("sinks (see `credwatch sinks --help`)")
    group.add_argument("--sink", action="append", default=[], metavar="NAME",
                       help="also send alerts to this sink of the config file; repeatable")
    group.add_argument("--config", metavar="PATH",
                       help="sink configuration (TOML); default $XDG_CONFIG_HOME/credwatch/config.toml")


def config_path(args: argparse.Namespace, env: Env) -> str:
    """The config file named by ``--config`` or the default one."""
    return str(args.config or default_config_path(env.environ))


def select(args: argparse.Namespace, env: Env, names: Sequence[str]) -> list[SinkConfig]:
    """The configs of the sinks named (in order, each once); an unknown name is a ConfigError."""
    path = config_path(args, env)
    configs = load_config(path, env.environ)
    out: list[SinkConfig] = []
    for name in dict.fromkeys(names):
        if name not in configs:
            known = ", ".join(sorted(configs)) or "none"
            raise ConfigError(f"--sink {name}: no sink of that name in {path} (declared: {known})")
        out.append(configs[name])
    return out


def start_delivery(args: argparse.Namespace, env: Env, store: AlertStore) -> DeliveryThread | None:
    """Route new alerts of ``store`` to ``--sink``s and start delivering; None without sinks."""
    names = getattr(args, "sink", None) or []
    if not names:
        return None
    configs = select(args, env, names)
    store.outbox_sinks = tuple(c.name for c in configs)

    def warn(message: str) -> None:
        env.stderr.write(f"credwatch: warning: {terminal_text(message)} (kept in the outbox)\n")
        env.stderr.flush()

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
