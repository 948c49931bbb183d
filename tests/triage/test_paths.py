"""Credential path classification: every seed-rule path family, and what is not a secret."""

from __future__ import annotations

import pytest

from credwatch.triage.paths import KINDS, classify_one, classify_path, credential_matches

# The 27 path patterns of the seed rule v1 (its process.args clause), instantiated
# where the rule has a wildcard, with the kind each must map to.
SEED_PATHS = [
    ("/var/run/secrets/kubernetes.io/serviceaccount/token", "kubernetes-sa-token"),
    ("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "kubernetes-ca"),
    ("/var/run/secrets/eks.amazonaws.com/serviceaccount/token", "eks-irsa-token"),
    ("/var/run/secrets/azure/tokens/azure-identity-token", "azure-workload-identity-token"),
    ("/var/run/secrets/tokens/azure-identity-token", "azure-workload-identity-token"),
    ("/var/lib/kubelet/kubeconfig", "kubelet-kubeconfig"),
    ("/etc/kubernetes/admin.conf", "kubeadm-admin-kubeconfig"),
    ("/etc/kubernetes/pki/ca.key", "kubernetes-pki-key"),
    ("/etc/kubernetes/pki/apiserver-kubelet-client.key", "kubernetes-pki-key"),
    ("/var/lib/kubelet/pki/kubelet-client-current.pem", "kubelet-client-cert"),
    ("/etc/rancher/k3s/k3s.yaml", "k3s-kubeconfig"),
    ("/etc/shadow", "shadow"),
    ("/home/dev/.ssh/id_rsa", "ssh-private-key"),
    ("/root/.ssh/id_ed25519", "ssh-private-key"),
    ("/home/dev/.ssh/id_ecdsa", "ssh-private-key"),
    ("/root/.aws/credentials", "aws-credentials"),
    ("/home/dev/.aws/cli/cache/5f1e0a.json", "aws-cli-cache"),
    ("/home/dev/.aws/sso/cache/0c9d.json", "aws-sso-cache"),
    ("/home/dev/.azure/accessTokens.json", "azure-cli-tokens"),
    ("/home/dev/.azure/azureProfile.json", "azure-cli-tokens"),
    ("/home/dev/.azure/msal_token_cache.json", "azure-cli-tokens"),
    ("/home/dev/.config/gcloud/application_default_credentials.json", "gcloud-adc"),
    ("/home/dev/.config/gcloud/credentials.db", "gcloud-credentials-db"),
    ("/home/dev/.config/gcloud/access_tokens.db", "gcloud-credentials-db"),
    ("/home/dev/.config/gcloud/legacy_credentials", "gcloud-legacy"),
    ("/root/.kube/config", "kubeconfig"),
    ("/home/dev/.docker/config.json", "docker-config"),
]


def test_table_covers_all_27_seed_patterns_and_every_kind() -> None:
    assert len(SEED_PATHS) == 27
    assert {k for _, k in SEED_PATHS} == set(KINDS)


@pytest.mark.parametrize(("path", "kind"), SEED_PATHS)
def test_seed_path_kind(path: str, kind: str) -> None:
    found = classify_path(path)
    assert [(k.kind, p) for k, p in found] == [(kind, path)]
    meta = KINDS[kind]
    assert meta.label and meta.blast_radius and meta.response and meta.review
    assert 1 <= meta.criticality <= 10


@pytest.mark.parametrize(("arg", "kind", "path"), [
    ("if=/root/.ssh/id_rsa", "ssh-private-key", "/root/.ssh/id_rsa"),
    ("--kubeconfig=/home/u/.kube/config", "kubeconfig", "/home/u/.kube/config"),
    ("cat /etc/shadow", "shadow", "/etc/shadow"),
    ("cat '/root/.aws/credentials' | base64", "aws-credentials", "/root/.aws/credentials"),
    ("/var/run/secrets/kubernetes.io/serviceaccount/..data/token", "kubernetes-sa-token",
     "/var/run/secrets/kubernetes.io/serviceaccount/..data/token"),
    ("/run/secrets/eks.amazonaws.com/serviceaccount/token", "eks-irsa-token",
     "/run/secrets/eks.amazonaws.com/serviceaccount/token"),
    ("/home/u/.config/gcloud/legacy_credentials/me@example.com/adc.json", "gcloud-legacy",
     "/home/u/.config/gcloud/legacy_credentials/me@example.com/adc.json"),
])
def test_embedded_and_variant_forms(arg: str, kind: str, path: str) -> None:
    assert [(k.kind, p) for k, p in classify_path(arg)] == [(kind, path)]


@pytest.mark.parametrize("arg", [
    "/root/.ssh/id_rsa.pub", "/root/.aws/config", "/etc/shadow-", "/etc/shadowsocks.json",
    "/root/.kube/config.bak", "/root/.ssh/known_hosts", "/home/u/.docker/config.json.old",
    "/var/run/secrets/kubernetes.io/serviceaccount/namespace", "id_rsa", "",
])
def test_not_a_credential(arg: str) -> None:
    assert classify_one(arg) is None


def test_several_paths_in_one_argument_in_order() -> None:
    found = classify_path("tar czf - /root/.aws/credentials /root/.kube/config")
    assert [k.kind for k, _ in found] == ["aws-credentials", "kubeconfig"]


def test_matches_prefer_explain_hits_then_args_then_embedded() -> None:
    alert = {"credwatch.explain": [
        {"field": "process.name", "value": "cat", "index": None},
        {"field": "process.args", "value": "/root/.kube/config", "index": 2},
    ]}
    args = ["cat", "/etc/shadow", "/root/.kube/config"]
    found = credential_matches(alert, args, ["sh -c 'cat /root/.docker/config.json'"])
    assert [(m.kind.kind, m.source, m.arg_index) for m in found] == [
        ("kubeconfig", "explain", 2), ("shadow", "arg", 1), ("docker-config", "embedded", None)]


def test_response_steps_are_filled_with_alert_values() -> None:
    m = credential_matches(None, ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"])[0]
    d = m.as_dict({"namespace": "payments", "pod": "api-7d9f", "user": "", "host": "n1"})
    assert "kubectl -n payments delete pod api-7d9f" in d["response"][0]
    assert any("automountServiceAccountToken: false" in r for r in d["review"])
    # An unknown value stays visible as a placeholder rather than vanishing.
    d2 = m.as_dict({})
    assert "kubectl -n <namespace> delete pod <pod>" in d2["response"][0]


@pytest.mark.parametrize(("kind", "needle"), [
    ("aws-credentials", "aws iam update-access-key"),
    ("azure-cli-tokens", "az account clear"),
    ("gcloud-credentials-db", "gcloud auth revoke"),
    ("kubeadm-admin-kubeconfig", "kubeadm certs renew"),
    ("ssh-private-key", "authorized_keys"),
    ("docker-config", "docker logout"),
    ("shadow", "passwd -e"),
    ("kubernetes-sa-token", "delete secret"),
    ("eks-irsa-token", "Revoke active sessions"),
])
def test_concrete_response_commands(kind: str, needle: str) -> None:
    assert any(needle in step for step in KINDS[kind].response)
