"""The TOML sink configuration: private files only, secrets from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from credwatch.errors import ConfigError
from credwatch.sinks.config import default_config_path, load_config

SLACK = "https://hooks.slack.com/services/T0FAKE000/B0FAKE000/fakefakefakefakefakefake"

EXAMPLE = """
[sinks.oncall]
type = "slack"
url_env = "SLACK_URL"

[sinks.hook]
type = "webhook"
url = "https://hooks.example.test/credwatch"
token_env = "HOOK_TOKEN"
batch = 100
timeout = 5

[sinks.siem]
type = "syslog"
address = "tcp://127.0.0.1:601"
facility = "authpriv"

[sinks.es]
type = "elasticsearch"
url = "https://es.example.test:9200"
username = "credwatch"
password = "in-file-password-0001"
space = "prod"
"""


def _write(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_the_example_loads_with_secrets_from_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, EXAMPLE)
    cfg = load_config(path, {"SLACK_URL": SLACK, "HOOK_TOKEN": "tok-0123456789"})
    assert sorted(cfg) == ["es", "hook", "oncall", "siem"]
    assert cfg["oncall"].url == SLACK and cfg["oncall"].throttle == 60 and cfg["oncall"].rate == 1
    assert cfg["hook"].token == "tok-0123456789" and cfg["hook"].batch == 100
    assert cfg["es"].batch == 500 and cfg["es"].password == "in-file-password-0001"
    assert cfg["siem"].address == "tcp://127.0.0.1:601"
    assert set(cfg["oncall"].secret_values) == {SLACK}
    assert SLACK not in repr(cfg["oncall"]) and "tok-" not in repr(cfg["hook"])


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660, 0o644])
def test_a_file_others_can_access_is_refused_with_the_chmod_to_run(tmp_path: Path, mode: int) -> None:
    path = _write(tmp_path, EXAMPLE, mode)
    with pytest.raises(ConfigError) as exc:
        load_config(path, {"SLACK_URL": SLACK, "HOOK_TOKEN": "t"})
    msg = str(exc.value)
    assert str(path) in msg and f"chmod 600 {path}" in msg and f"{mode:04o}" in msg
    assert "in-file-password-0001" not in msg


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file away")
def test_a_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, EXAMPLE)
    os.chown(path, 65534, 65534)
    with pytest.raises(ConfigError, match="belongs to uid 65534"):
        load_config(path, {})


def test_a_symlink_is_not_followed(tmp_path: Path) -> None:
    real = _write(tmp_path, EXAMPLE)
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(link, {})


@pytest.mark.parametrize(("text", "where"), [
    ('[sinks.a]\ntype = "webhook"\nurl = "https://x"\nbogus = 1\n', "[sinks.a.bogus]: unknown key"),
    ('[sinks.a]\ntype = "pager"\n', "[sinks.a.type]"),
    ('[sinks.a]\ntype = "webhook"\nurl = "ftp://x"\n', "[sinks.a.url]"),
    ('[sinks.a]\ntype = "webhook"\nurl = "https://x"\nbatch = 0\n', "[sinks.a.batch]"),
    ('[sinks.a]\ntype = "webhook"\nurl = "https://x"\ntimeout = 1e9\n', "[sinks.a.timeout]"),
    ('[sinks.a]\ntype = "syslog"\naddress = "10.0.0.1"\n', "[sinks.a.address]"),
    ('[sinks.a]\ntype = "elasticsearch"\nurl = "https://x"\nthrottle = 5\n', "not throttled"),
    ('[sinks.a]\ntype = "webhook"\nurl = "https://x"\ntoken_env = "NOPE"\n', "NOPE is not set"),
    ('[sinks.a]\ntype = "webhook"\nurl = "https://x"\ntoken = "a"\ntoken_env = "B"\n', "not both"),
    ('[sinks."a b"]\ntype = "webhook"\n', "sink name"),
    ("[other]\n", "unknown table"),
    ("sinks = [", "not valid TOML"),
])
def test_mistakes_name_the_file_and_key(tmp_path: Path, text: str, where: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path, {})
    assert str(path) in str(exc.value) and where in str(exc.value)


def test_a_malformed_slack_url_is_not_echoed(tmp_path: Path) -> None:
    path = _write(tmp_path, '[sinks.s]\ntype = "slack"\nurl_env = "U"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path, {"U": "hooks.slack.com/services/SECRETPART"})
    assert "SECRETPART" not in str(exc.value)


def test_default_path_follows_xdg() -> None:
    assert default_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/credwatch/config.toml")
    assert default_config_path({"HOME": "/h"}) == Path("/h/.config/credwatch/config.toml")
