"""Redaction on a table of real-world secret shapes (every value here is fake)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from credwatch.sinks.redact import redact_doc, redact_text

GH = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZmFrZSJ9."
       "ZmFrZXNpZ25hdHVyZWZha2VzaWduYXR1cmU")
PEM = ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAfakefakefakefake\nZmFrZQ==\n"
       "-----END RSA PRIVATE KEY-----")

# (command line, secret that must disappear, text that must remain)
TABLE = [
    ("curl -H 'Authorization: Bearer sk-fake-0123456789abcdef' https://api.example",
     "sk-fake-0123456789abcdef", "Authorization: "),
    ("kubectl --token=eyJfakefakefakefake123 get secrets", "eyJfakefakefakefake123", "--token="),
    ("kubectl --token eyJfakefakefakefake123 get pods", "eyJfakefakefakefake123", "--token "),
    (f"kubectl --token {JWT} get pods", JWT, "kubectl --token "),
    (f"echo {JWT}", JWT, "echo [REDACTED:jwt]"),
    ("aws s3 ls AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws-access-key]"),
    ("env AWS_ACCESS_KEY_ID=ASIAIOSFODNN7EXAMPLE aws sts get-caller-identity",
     "ASIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY_ID="),
    ("env AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY aws s3 ls",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY="),
    ('aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key"),
    ("git clone https://deploy:s3cr3t-Passw0rd@git.example.com/repo.git", "s3cr3t-Passw0rd",
     "https://deploy:[REDACTED:password]@git.example.com/repo.git"),
    ("psql postgres://app:hunter2hunter2@db:5432/prod", "hunter2hunter2", "postgres://app:"),
    ("mysql -u root -pS3cretPass db", "S3cretPass", "-u root -p"),
    ("mysql -u root -p S3cretPass db", "S3cretPass", "-u root -p "),
    ("vault login --password=correct-horse-battery", "correct-horse-battery", "--password="),
    ("app --client-secret abc123def456 --verbose", "abc123def456", "--verbose"),
    ("app --api-key k3y-0123456789 run", "k3y-0123456789", "--api-key "),
    ("app --private-key=pk-0123456789 run", "pk-0123456789", "--private-key="),
    ("app --access-token at-0123456789 run", "at-0123456789", "--access-token "),
    (f"git push https://{GH}@github.com/o/r", GH, "github.com/o/r"),
    ("gh auth --with-token github_pat_11AAAAAAA0fakefakefakefake_fakefakefake",
     "github_pat_11AAAAAAA0fakefakefakefake_fakefakefake", "gh auth"),
    ("curl -d token=xoxb-123456789012-1234567890123-fakeFAKEfake slack.com/api",
     "xoxb-123456789012-1234567890123-fakeFAKEfake", "slack.com/api"),
    ("curl https://hooks.slack.com/services/T0FAKE000/B0FAKE000/fakefakefakefakefake",
     "T0FAKE000/B0FAKE000/fakefakefakefakefake", "hooks.slack.com/services/"),
    ("curl https://maps.googleapis.com/x?key=AIzaSyFAKEfakeFAKEfakeFAKEfakeFAKEfake12",
     "AIzaSyFAKEfakeFAKEfakeFAKEfakeFAKEfake12", "maps.googleapis.com"),
    ("curl -H 'Authorization: Bearer ya29.a0AfakeFAKEfakeFAKEfake_token-1234'",
     "ya29.a0AfakeFAKEfakeFAKEfake_token-1234", "curl -H"),
    ("gcloud x ya29.a0AfakeFAKEfakeFAKEfake_token-1234", "ya29.a0AfakeFAKEfakeFAKEfake_token-1234",
     "[REDACTED:gcp-token]"),
    ("DB_PASSWORD=hunter2 ./migrate", "hunter2", "DB_PASSWORD="),
    ("curl -u admin:Sup3rS3cret! https://x.example", "Sup3rS3cret!", "-u admin:"),
    ("curl --user=deploy:Sup3rS3cret! https://x.example", "Sup3rS3cret!", "--user=deploy:"),
    ("GITHUB_TOKEN=abc123 make release", "abc123", "GITHUB_TOKEN="),
    (f"echo '{PEM}' > /tmp/k", "MIIEowIBAAKCAQEAfakefakefakefake", "> /tmp/k"),
    ("curl -H 'proxy-authorization: Basic ZmFrZTpmYWtl' http://x", "ZmFrZTpmYWtl", "proxy-authorization"),
]


@pytest.mark.parametrize(("text", "secret", "kept"), TABLE)
def test_secret_shapes_are_redacted(text: str, secret: str, kept: str) -> None:
    out = redact_text(text)
    assert secret not in out, out
    assert kept in out, out
    assert "[REDACTED:" in out


@pytest.mark.parametrize("text", [
    "cat /root/.kube/config",
    "mkdir -p /root/.aws",
    "ssh -p 2222 node-1",
    "cat ~/.config/gcloud/credentials.db",
    "curl https://example.com/path@version",
    "kubectl get secrets --all-namespaces",
])
def test_ordinary_command_lines_are_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_argument_vectors_hide_the_value_after_a_secret_flag() -> None:
    doc: dict[str, Any] = {"process": {"args": ["curl", "-u", "admin:S3cret", "mysql", "-p", "S3cret", "--token", "t0k3n", "-H",
                                "Authorization:", "Bearer", "abcdefgh1234", "mkdir", "-p", "/root/.kube"],
                       "command_line": "mysql -pS3cret"}, "n": 3, "nested": [[{"a": "ghp_x"}]]}
    out = redact_doc(doc)
    assert out["process"]["args"] == ["curl", "-u", "admin:[REDACTED:password]", "mysql", "-p",
                                      "[REDACTED:secret]", "--token",
                                      "[REDACTED:secret]", "-H", "Authorization:", "Bearer",
                                      "[REDACTED:secret]", "mkdir", "-p", "/root/.kube"]
    assert out["process"]["command_line"] == "mysql -p[REDACTED:password]"
    assert out["n"] == 3 and doc["process"]["args"][2] == "admin:S3cret"  # the input is not changed


@pytest.mark.parametrize("piece", ["a://b:", "--token ", "AKIA", "x" * 50 + "=", "eyJ.", "-----BEGIN PRIVATE KEY-----",
                                   "Authorization: ", "TOKEN", "a:b@", "-p"])
def test_long_hostile_text_is_linear(piece: str) -> None:
    text = piece * (100_000 // len(piece))
    start = time.perf_counter()
    redact_text(text)
    small = time.perf_counter() - start
    start = time.perf_counter()
    redact_text(text * 4)
    big = time.perf_counter() - start
    assert big < max(small * 12, 0.5), (small, big)  # linear: 4x the text, not 16x the time
