"""Credential path classification: which secret a matched argument names, and what to do.

Every path family of the seed rule maps to one :class:`CredentialKind` carrying
a human label, a criticality (used by the priority score), the blast radius of
a leak and concrete response and review steps. Steps are templates filled with
the alert's own values (``{path}``, ``{user}``, ``{host}``, ``{pod}``,
``{namespace}``), so an analyst can paste them.

Classification searches each argument rather than requiring equality, so
``dd if=/root/.ssh/id_rsa``, ``--kubeconfig=/root/.kube/config`` and
``sh -c "cat /etc/shadow"`` (which the rule itself misses) are still named.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credwatch.normalize.flatten import get_values

# A path ends where a shell word or a `key=value` list would end it; `.pub` etc.
# are excluded explicitly because a public key is not a secret.
_END = r"(?=$|[\s'\";|&<>),:=])"


@dataclass(frozen=True, slots=True)
class CredentialKind:
    """One family of credential material and its response playbook."""

    kind: str
    label: str
    #: 1 (low) .. 10 (cluster or fleet compromise); feeds the priority score.
    criticality: int
    #: Where the material is normally found: ``pod``, ``node`` (Kubernetes node),
    #: ``control-plane``, ``host`` (any Linux host) or ``user`` (a home directory).
    scope: str
    blast_radius: str
    response: tuple[str, ...]
    review: tuple[str, ...]
    patterns: tuple[str, ...]


_SA_REVIEW = (
    "Review the RBAC bindings of the service account: "
    "kubectl auth can-i --list --as=system:serviceaccount:{namespace}:<service-account>",
    "Set automountServiceAccountToken: false on pods and service accounts that do not call the API",
    "Prefer short-lived projected tokens (serviceAccountToken volume with an explicit audience "
    "and expirationSeconds) over legacy Secret-based tokens",
)
_KUBECONFIG_REVIEW = (
    "Review the RBAC bindings of the identity in the kubeconfig "
    "(kubectl auth can-i --list --kubeconfig {path})",
    "Check Kubernetes audit logs for API calls by that identity from unexpected source IPs",
)
_CLOUD_REVIEW = (
    "Check the cloud provider's audit trail (CloudTrail / Azure Activity Log / GCP Cloud Audit "
    "Logs) for calls made with these credentials from unexpected addresses",
)

KINDS: dict[str, CredentialKind] = {k.kind: k for k in (
    CredentialKind(
        "kubernetes-sa-token", "Kubernetes service-account token", 8, "pod",
        "Every API permission granted to the pod's service account, until the token expires "
        "(bound tokens) or the Secret is deleted (legacy tokens).",
        ("Rotate the bound token by deleting the pod so its controller recreates it: "
         "kubectl -n {namespace} delete pod {pod}",
         "For a legacy Secret-based token: kubectl -n {namespace} delete secret <token-secret> "
         "(the token controller issues a new one)",
         "If a token was minted from it, review TokenRequest calls in the Kubernetes audit log"),
        _SA_REVIEW,
        (r"/var/run/secrets/kubernetes\.io/serviceaccount/token" + _END,
         r"/run/secrets/kubernetes\.io/serviceaccount/(?:\.\.data/)?token" + _END)),
    CredentialKind(
        "kubernetes-ca", "Kubernetes cluster CA certificate", 1, "pod",
        "Public CA certificate: not a secret, but reading it next to the token is how clients "
        "are configured to talk to the API server.",
        ("No rotation needed for the CA certificate itself; treat it as a marker that the "
         "service-account token next to it may be used",),
        _SA_REVIEW,
        (r"/run/secrets/kubernetes\.io/serviceaccount/(?:\.\.data/)?ca\.crt" + _END,)),
    CredentialKind(
        "eks-irsa-token", "EKS IRSA web-identity token", 8, "pod",
        "The IAM role bound to the service account (IRSA): AssumeRoleWithWebIdentity yields AWS "
        "credentials with that role's permissions.",
        ("Delete the pod to rotate the projected token: kubectl -n {namespace} delete pod {pod}",
         "Revoke active role sessions: in IAM, 'Revoke active sessions' on the IRSA role "
         "(adds an aws:TokenIssueTime deny policy)"),
        ("Review the IRSA role's trust policy (sub/aud conditions) and permissions",
         *_CLOUD_REVIEW, *_SA_REVIEW[1:]),
        (r"/run/secrets/eks\.amazonaws\.com/serviceaccount/(?:\.\.data/)?token" + _END,)),
    CredentialKind(
        "azure-workload-identity-token", "Azure workload-identity token", 8, "pod",
        "The Entra ID application federated with the service account: the token is exchanged "
        "for Azure access tokens with that identity's role assignments.",
        ("Delete the pod to rotate the projected token: kubectl -n {namespace} delete pod {pod}",
         "Review and if needed remove the federated credential on the managed identity or app "
         "registration (az identity federated-credential list/delete)"),
        ("Review the role assignments of the federated identity (az role assignment list "
         "--assignee <client-id>)", *_CLOUD_REVIEW, *_SA_REVIEW[1:]),
        (r"/run/secrets/(?:azure/)?tokens/azure-identity-token" + _END,)),
    CredentialKind(
        "kubelet-kubeconfig", "kubelet kubeconfig", 8, "node",
        "The node identity (system:node:{host}): read pods, secrets and configmaps bound to the "
        "node, and node/pod status writes (limited by the NodeRestriction admission plugin).",
        ("Rotate the kubelet client certificate: delete /var/lib/kubelet/pki/kubelet-client-*.pem "
         "and restart kubelet so it re-bootstraps, or drain and reprovision the node",
         "Deny the old certificate's CSR and check kubectl get csr for unexpected requests"),
        ("Confirm the NodeRestriction admission plugin and Node authorizer are enabled",
         *_KUBECONFIG_REVIEW[1:]),
        (r"/var/lib/kubelet/kubeconfig" + _END,)),
    CredentialKind(
        "kubeadm-admin-kubeconfig", "kubeadm cluster-admin kubeconfig", 10, "control-plane",
        "Full cluster-admin over the whole cluster (system:masters or kubeadm:cluster-admins).",
        ("Renew the admin client certificate: kubeadm certs renew admin.conf "
         "(certificates in system:masters cannot be revoked; rotate the cluster CA if the key "
         "may be abused before expiry)",
         "Remove any RBAC bindings, tokens or CSRs created since the read"),
        ("Use kubeadm:cluster-admins (Kubernetes >= 1.29) rather than system:masters",
         "Restrict who can read /etc/kubernetes on control-plane nodes", *_KUBECONFIG_REVIEW[1:]),
        (r"/etc/kubernetes/(?:admin|super-admin)\.conf" + _END,)),
    CredentialKind(
        "kubernetes-pki-key", "Kubernetes PKI private key", 10, "control-plane",
        "With the cluster CA key an attacker can mint any client certificate, including "
        "cluster-admin; the apiserver-kubelet-client key gives full access to every kubelet API.",
        ("Rotate the cluster CA and every certificate it signed (kubeadm certs renew all after "
         "replacing the CA; follow the manual CA rotation procedure)",
         "For apiserver-kubelet-client.key: kubeadm certs renew apiserver-kubelet-client and "
         "restart the API server"),
        ("Restrict access to /etc/kubernetes/pki (root only, no hostPath mounts of it)",
         "Check for hostPath volumes that expose /etc/kubernetes to pods"),
        (r"/etc/kubernetes/pki/(?:[\w.-]+/)?[\w.-]+\.key" + _END,)),
    CredentialKind(
        "kubelet-client-cert", "kubelet client certificate and key", 8, "node",
        "The node identity (system:node:{host}) via its client certificate.",
        ("Delete /var/lib/kubelet/pki/kubelet-client-*.pem and restart kubelet to re-bootstrap a "
         "new certificate, or drain and reprovision the node",),
        ("Confirm the NodeRestriction admission plugin and Node authorizer are enabled",),
        (r"/var/lib/kubelet/pki/kubelet-client-[\w.-]*\.pem" + _END,)),
    CredentialKind(
        "k3s-kubeconfig", "k3s admin kubeconfig", 10, "control-plane",
        "Cluster-admin on the k3s cluster.",
        ("Rotate the k3s admin client certificate: k3s certificate rotate --service admin "
         "(then restart k3s), and redistribute /etc/rancher/k3s/k3s.yaml",),
        ("Set --write-kubeconfig-mode 0600 so only root can read k3s.yaml",
         *_KUBECONFIG_REVIEW[1:]),
        (r"/etc/rancher/k3s/k3s\.yaml" + _END,)),
    CredentialKind(
        "shadow", "local password hashes", 6, "host",
        "Offline cracking of every local account's password, reuse on other hosts.",
        ("Expire local passwords so they must be changed: passwd -e <user> for every "
         "interactive account on {host}",
         "Check for the same passwords on other hosts and in configuration management"),
        ("Prefer SSH keys or SSO over local passwords; lock unused accounts (passwd -l)",),
        (r"/etc/g?shadow" + _END,)),
    CredentialKind(
        "ssh-private-key", "SSH private key", 7, "user",
        "Every host that trusts the matching public key (authorized_keys), and Git remotes.",
        ("Generate a new key pair (ssh-keygen -t ed25519) and remove the old public key from "
         "every authorized_keys file and Git host that lists it",
         "Review ~/.ssh/authorized_keys on {host} for keys added after the read"),
        ("Protect private keys with a passphrase or an agent/hardware token",),
        (r"/\.ssh/id_(?:rsa|ed25519|ecdsa|dsa)(?:_sk)?" + _END,)),
    CredentialKind(
        "aws-credentials", "AWS shared credentials file", 9, "user",
        "Every permission of the IAM users or roles whose long-lived access keys are in the file.",
        ("List the keys: aws iam list-access-keys --user-name <user>; deactivate each one: "
         "aws iam update-access-key --access-key-id <AKIA...> --status Inactive, then create "
         "new ones and delete the old",),
        ("Prefer short-lived role credentials (SSO, instance profiles, IRSA) over access keys",
         *_CLOUD_REVIEW),
        (r"/\.aws/credentials" + _END,)),
    CredentialKind(
        "aws-cli-cache", "AWS CLI cached role credentials", 7, "user",
        "Temporary credentials of an assumed role, until they expire (typically 1 hour).",
        ("Delete the cache (rm -r ~/.aws/cli/cache) and revoke active sessions of the cached "
         "role (IAM console: 'Revoke active sessions')",),
        _CLOUD_REVIEW,
        (r"/\.aws/cli/cache/[^/\s]*\.json" + _END,)),
    CredentialKind(
        "aws-sso-cache", "AWS SSO (IAM Identity Center) token cache", 8, "user",
        "The SSO access token: every account and permission set the user can reach, until expiry.",
        ("Sign out and invalidate the token: aws sso logout (as {user}); in IAM Identity Center, "
         "revoke the user's active sessions",),
        _CLOUD_REVIEW,
        (r"/\.aws/sso/cache/[^/\s]*\.json" + _END,)),
    CredentialKind(
        "azure-cli-tokens", "Azure CLI token cache", 8, "user",
        "Refresh and access tokens of the signed-in Azure account: every subscription it can reach.",
        ("Sign out and clear cached tokens: az logout; az account clear (as {user})",
         "Revoke the user's refresh tokens: az rest --method post --url "
         "https://graph.microsoft.com/v1.0/users/<id>/revokeSignInSessions"),
        _CLOUD_REVIEW,
        (r"/\.azure/(?:accessTokens|azureProfile|msal_token_cache|msal_http_cache)\.json" + _END,)),
    CredentialKind(
        "gcloud-adc", "Google application default credentials", 8, "user",
        "The user or service account behind ADC: its IAM roles across projects.",
        ("Revoke: gcloud auth application-default revoke (as {user}); for a service-account key "
         "file, delete the key: gcloud iam service-accounts keys delete <key-id>",),
        _CLOUD_REVIEW,
        (r"/\.config/gcloud/application_default_credentials\.json" + _END,)),
    CredentialKind(
        "gcloud-credentials-db", "gcloud credential store", 8, "user",
        "Refresh tokens and access tokens of every account logged into gcloud.",
        ("Revoke every stored account: gcloud auth revoke --all (as {user})",),
        _CLOUD_REVIEW,
        (r"/\.config/gcloud/(?:credentials|access_tokens)\.db" + _END,)),
    CredentialKind(
        "gcloud-legacy", "gcloud legacy credentials", 7, "user",
        "Legacy per-account credential files (including .boto and adc.json) of gcloud accounts.",
        ("Revoke: gcloud auth revoke --all (as {user}) and delete "
         "~/.config/gcloud/legacy_credentials",),
        _CLOUD_REVIEW,
        (r"/\.config/gcloud/legacy_credentials(?:/[^\s'\"]*)?" + _END,)),
    CredentialKind(
        "kubeconfig", "user kubeconfig", 8, "user",
        "Every cluster and identity in the kubeconfig (client certificates, tokens, exec plugins).",
        ("Rotate what the kubeconfig holds: delete or re-issue its client certificates and "
         "tokens (kubectl delete secret for SA tokens; revoke OIDC refresh tokens at the IdP)",),
        _KUBECONFIG_REVIEW,
        (r"/\.kube/config" + _END,)),
    CredentialKind(
        "docker-config", "Docker registry credentials", 6, "user",
        "Push and pull to every registry in auths (supply-chain risk through image pushes).",
        ("docker logout from each registry listed in auths (as {user}), and rotate the registry "
         "tokens or passwords at the registry",),
        ("Use a credential helper (credsStore) instead of base64 auths in config.json",),
        (r"/\.docker/config\.json" + _END,)),
)}

@functools.cache
def _compiled() -> tuple[tuple[CredentialKind, re.Pattern[str]], ...]:
    """The kinds' patterns, compiled on first use (a scan without alerts never needs them)."""
    return tuple((k, re.compile(p)) for k in KINDS.values() for p in k.patterns)


@dataclass(frozen=True, slots=True)
class CredentialMatch:
    """One credential path found in an argument."""

    path: str
    kind: CredentialKind
    #: ``explain`` (a rule clause matched this argument), ``arg`` (the whole argument is the
    #: path) or ``embedded`` (the path is inside a larger argument, e.g. ``sh -c``).
    source: str
    arg_index: int | None = None

    def as_dict(self, values: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The JSON form, with response templates filled from ``values``."""
        vals = {"path": self.path, **(values or {})}
        return {
            "path": self.path,
            "kind": self.kind.kind,
            "label": self.kind.label,
            "criticality": self.kind.criticality,
            "scope": self.kind.scope,
            "source": self.source,
            "arg_index": self.arg_index,
            "blast_radius": fill(self.kind.blast_radius, vals),
            "response": [fill(s, vals) for s in self.kind.response],
            "review": [fill(s, vals) for s in self.kind.review],
        }


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "<" + key + ">"


def fill(template: str, values: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders; unknown or empty ones stay visible as ``<name>``."""
    return template.format_map(_Defaulting({k: v for k, v in values.items() if v}))


#: Texts up to this length are classified once and remembered (arguments repeat a lot
#: in a hunt); longer ones are classified each time, so the cache stays small.
_CACHED_TEXT = 1024


def classify_path(text: str) -> list[tuple[CredentialKind, str]]:
    """Every credential kind named in ``text``, with the path as written (left to right)."""
    if len(text) <= _CACHED_TEXT:
        return list(_classify_cached(text))
    return _classify(text)


@functools.lru_cache(maxsize=16384)
def _classify_cached(text: str) -> tuple[tuple[CredentialKind, str], ...]:
    return tuple(_classify(text))


def _classify(text: str) -> list[tuple[CredentialKind, str]]:
    found: list[tuple[int, CredentialKind, str]] = []
    for kind, rx in _compiled():
        for m in rx.finditer(text):
            start = m.start()
            # Extend left to the start of the path word (`/root/.aws/...`, `if=/home/x/...`).
            while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "'\"=:;|&<>(":
                start -= 1
            found.append((m.start(), kind, text[start:m.end()]))
    found.sort(key=lambda t: t[0])
    out: list[tuple[CredentialKind, str]] = []
    seen: set[str] = set()
    for _, kind, path in found:
        if path not in seen:
            seen.add(path)
            out.append((kind, path))
    return out


def classify_one(path: str) -> CredentialKind | None:
    """The kind of a single path, or None when it names no known credential."""
    hits = classify_path(path)
    return hits[0][0] if hits else None


def _explain_entries(alert: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = alert.get("credwatch.explain")
    if raw is None:
        raw = get_values(alert, "credwatch.explain") or None
        objs = alert.get("credwatch")
        if isinstance(objs, Mapping) and isinstance(objs.get("explain"), list):
            raw = objs["explain"]
    return [e for e in raw if isinstance(e, Mapping)] if isinstance(raw, list) else []


def credential_matches(alert: Mapping[str, Any] | None, args: Sequence[Any],
                       extra_texts: Iterable[str] = ()) -> list[CredentialMatch]:
    """Credential paths behind an alert: explained hits first, then every argument.

    ``extra_texts`` (e.g. ``process.title``) are searched last, so a path only
    visible in a shell's ``-c`` string is still reported as ``embedded``.
    """
    out: list[CredentialMatch] = []
    seen: set[str] = set()

    def add(kind: CredentialKind, path: str, source: str, index: int | None) -> None:
        if path not in seen:
            seen.add(path)
            out.append(CredentialMatch(path, kind, source, index))

    for entry in _explain_entries(alert or {}):
        if entry.get("field") != "process.args" or not isinstance(entry.get("value"), str):
            continue
        idx = entry.get("index")
        for kind, path in classify_path(entry["value"]):
            add(kind, path, "explain", idx if isinstance(idx, int) else None)
    for i, arg in enumerate(args):
        if not isinstance(arg, str):
            continue
        for kind, path in classify_path(arg):
            add(kind, path, "arg" if path == arg else "embedded", i)
    for text in extra_texts:
        for kind, path in classify_path(text):
            add(kind, path, "embedded", None)
    return out
