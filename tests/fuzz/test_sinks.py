"""Fuzz targets for the sinks: config files, redaction and the syslog/Slack formatters."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from credwatch.errors import ConfigError
from credwatch.sinks.config import load_config
from credwatch.sinks.outbox import Item
from credwatch.sinks.redact import redact_doc, redact_text
from credwatch.sinks.slack import slack_payload
from credwatch.sinks.syslog import MAX_DATAGRAM, format_message
from credwatch.sinks.throttle import Message
from tests.fuzz import corpus, fuzz
from tests.sinks.helpers import sink

_PIECES = st.sampled_from(["[sinks.a]\n", 'type = "webhook"\n', 'url = "https://x"\n',
                           "batch = 1e400\n", 'token_env = "T"\n', "timeout = -1\n", "[[sinks]]\n",
                           'address = "udp://[::1]:514"\n', 'type = "syslog"\n', "= =\n",
                           '[sinks."\\u0000"]\n', "throttle = true\n", "\x00", "\ud7ff"])


def _config(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.toml"
        path.write_bytes(data)
        os.chmod(path, 0o600)
        with contextlib.suppress(ConfigError):
            load_config(path, {"T": "secret"})


@fuzz
@given(st.lists(_PIECES, max_size=12).map("".join), st.binary(max_size=64))
def test_config_files_raise_only_config_errors(text: str, noise: bytes) -> None:
    _config(text.encode("utf-8", "surrogatepass") + noise)


def test_config_corpus() -> None:
    for data in corpus("sinks_config"):
        _config(data)


_SECRETISH = st.sampled_from(["Bearer ", "--token ", "-p", "AKIA", "://u:", "@", "eyJ", ".",
                              "-----BEGIN PRIVATE KEY-----", "-----END ", "Authorization: ",
                              "PASSWORD=", "xoxb-", "ghp_", "\n", " ", "A" * 40, "'", '"'])


@fuzz
@given(st.lists(st.one_of(_SECRETISH, st.text(max_size=20)), max_size=40).map("".join))
def test_redaction_never_raises_and_is_stable(text: str) -> None:
    once = redact_text(text)
    assert isinstance(once, str)
    assert redact_text(once) == once  # idempotent: a mark is never taken for a secret


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                     lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
                     max_leaves=30)


@fuzz
@given(st.dictionaries(st.sampled_from(["process", "host", "kibana.alert.reason", "@timestamp",
                                        "kibana.alert.severity", "user", "x"]), _JSON, max_size=7),
       st.integers(min_value=1, max_value=10**6))
def test_formatters_take_any_document(doc: dict[str, Any], count: int) -> None:
    msg = Message([Item(1, "u", doc, 0)], doc, count)
    redact_doc(doc)
    data = format_message(sink("s", "syslog", address="udp://127.0.0.1:9"), msg, "h", MAX_DATAGRAM)
    assert len(data) <= MAX_DATAGRAM and data.startswith(b"<")
    text = slack_payload(sink("s", "slack", url="https://x"), msg)["text"]
    assert "<" not in text and ">" not in text
