"""The seed rule, restated by hand for the benchmark's baselines and ground truth.

This module is deliberately independent of credwatch: the generators use its
constants to plant positives and decoys, and the anchor loops (orjson, msgspec,
auparse) use :func:`matches_fields` as their hand-written predicate.  If credwatch
and this file ever disagree, one of them is wrong, and the harness says so.

The query text itself is kept byte for byte (apart from whitespace) in
:data:`QUERY` so that contenders that accept ``--query`` can be given it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

QUERY = """host.os.type:linux and event.category:process and event.action:(exec or executed) and
(
  process.name:(
    busybox or cat or head or tail or more or less or sed or awk or
    find or grep or ls or whereis or cp or mv or ln or
    curl or wget or scp or rsync or tar or zip or gzip or
    base64 or xxd or od or dd or tee or strings or xargs or jq or yq or
    openssl or ssh or sftp or nc or ncat or netcat or socat or
    python* or perl* or ruby* or node or php* or lua* or .*
  ) or
  process.args:(
    cat or head or tail or more or less or sed or awk or
    find or grep or cp or mv or curl or wget or base64 or
    tar or scp or dd or strings or xargs
  ) or
  process.executable:(/tmp/* or /var/tmp/* or /dev/shm/* or /home/* or /run/user/*)
) and process.args:(
  "/var/run/secrets/kubernetes.io/serviceaccount/token" or
  "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt" or
  "/var/run/secrets/eks.amazonaws.com/serviceaccount/token" or
  "/var/run/secrets/azure/tokens/azure-identity-token" or
  "/var/run/secrets/tokens/azure-identity-token" or
  "/var/lib/kubelet/kubeconfig" or
  "/etc/kubernetes/admin.conf" or
  "/etc/kubernetes/pki/ca.key" or
  "/etc/kubernetes/pki/apiserver-kubelet-client.key" or
  "/var/lib/kubelet/pki/kubelet-client-current.pem" or
  "/etc/rancher/k3s/k3s.yaml" or
  "/etc/shadow" or
  */.ssh/id_rsa or
  */root/.ssh/id_ed25519 or
  */.ssh/id_ecdsa or
  */.aws/credentials or
  */.aws/cli/cache/*.json or
  */.aws/sso/cache/*.json or
  */.azure/accessTokens.json or
  */.azure/azureProfile.json or
  */.azure/msal_token_cache.json or
  */.config/gcloud/application_default_credentials.json or
  */.config/gcloud/credentials.db or
  */.config/gcloud/access_tokens.db or
  */.config/gcloud/legacy_credentials or
  */.kube/config or
  */.docker/config.json
)
"""

#: ``process.name`` values matched exactly.
NAME_EXACT: frozenset[str] = frozenset(
    ["busybox", "cat", "head", "tail", "more", "less", "sed", "awk", "find", "grep", "ls", "whereis", "cp", "mv", "ln", "curl", "wget", "scp", "rsync", "tar", "zip", "gzip", "base64", "xxd", "od", "dd", "tee", "strings", "xargs", "jq", "yq", "openssl", "ssh", "sftp", "nc", "ncat", "netcat", "socat", "node"]
)
#: ``process.name`` prefixes (``python*``, ..., ``.*``).
NAME_PREFIXES: tuple[str, ...] = ("python", "perl", "ruby", "php", "lua", ".")
#: ``process.args`` elements that count as a tool.
ARG_TOOLS: frozenset[str] = frozenset(
    ["cat", "head", "tail", "more", "less", "sed", "awk", "find", "grep", "cp", "mv", "curl", "wget", "base64", "tar", "scp", "dd", "strings", "xargs"]
)
#: ``process.executable`` prefixes (``/tmp/*`` ...).
EXEC_PREFIXES: tuple[str, ...] = ("/tmp/", "/var/tmp/", "/dev/shm/", "/home/", "/run/user/")

#: Quoted (exact) credential paths.
EXACT_PATHS: tuple[str, ...] = (
    "/var/run/secrets/kubernetes.io/serviceaccount/token",
    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
    "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    "/var/run/secrets/azure/tokens/azure-identity-token",
    "/var/run/secrets/tokens/azure-identity-token",
    "/var/lib/kubelet/kubeconfig",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/pki/ca.key",
    "/etc/kubernetes/pki/apiserver-kubelet-client.key",
    "/var/lib/kubelet/pki/kubelet-client-current.pem",
    "/etc/rancher/k3s/k3s.yaml",
    "/etc/shadow",
)
#: ``*suffix`` patterns: any value ending with the suffix.
SUFFIX_PATTERNS: tuple[str, ...] = (
    "/.ssh/id_rsa",
    "/root/.ssh/id_ed25519",
    "/.ssh/id_ecdsa",
    "/.aws/credentials",
    "/.azure/accessTokens.json",
    "/.azure/azureProfile.json",
    "/.azure/msal_token_cache.json",
    "/.config/gcloud/application_default_credentials.json",
    "/.config/gcloud/credentials.db",
    "/.config/gcloud/access_tokens.db",
    "/.config/gcloud/legacy_credentials",
    "/.kube/config",
    "/.docker/config.json",
)
#: ``*middle*.json`` patterns: value contains ``middle`` and ends with ``.json`` after it.
MIDDLE_JSON_PATTERNS: tuple[str, ...] = ("/.aws/cli/cache/", "/.aws/sso/cache/")

#: Every path "slot" of the rule, in rule order (used to spread positives evenly).
PATH_SLOTS: tuple[str, ...] = (
    *EXACT_PATHS,
    *("*" + s for s in SUFFIX_PATTERNS),
    *("*" + m + "*.json" for m in MIDDLE_JSON_PATTERNS),
)

#: Byte fragments at least one of which every matching event's args must contain
#: (before any JSON or hex escaping).  Used for the ``grep -F -f`` anchor.
LITERAL_FRAGMENTS: tuple[str, ...] = (*EXACT_PATHS, *SUFFIX_PATTERNS, *MIDDLE_JSON_PATTERNS)

_EXACT_SET = frozenset(EXACT_PATHS)


def path_slot(value: str) -> str | None:
    """Return the rule's path slot that ``value`` matches, or ``None``."""
    if value in _EXACT_SET:
        return value
    for suffix in SUFFIX_PATTERNS:
        if value.endswith(suffix):
            return "*" + suffix
    for middle in MIDDLE_JSON_PATTERNS:
        # ``*middle*.json``: some occurrence of middle followed (anywhere later,
        # possibly overlapping nothing) by a ``.json`` ending.
        idx = value.find(middle)
        if idx >= 0 and value.endswith(".json") and len(value) - 5 >= idx + len(middle):
            return "*" + middle + "*.json"
    return None


def is_cred_path(value: str) -> bool:
    """Whether ``value`` matches any path slot (the fast form of :func:`path_slot`)."""
    if value in _EXACT_SET or value.endswith(SUFFIX_PATTERNS):
        return True
    return value.endswith(".json") and path_slot(value) is not None


def name_matches(name: str) -> bool:
    """``process.name`` clause of the tool group."""
    return name in NAME_EXACT or name.startswith(NAME_PREFIXES)


def tool_clause(name: str | None, args: Sequence[str], executable: str | None) -> str | None:
    """Which tool clause fires first: ``name``, ``args`` or ``executable`` (or ``None``)."""
    if name is not None and name_matches(name):
        return "name"
    if any(a in ARG_TOOLS for a in args):
        return "args"
    if executable is not None and executable.startswith(EXEC_PREFIXES):
        return "executable"
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _strs(values: Iterable[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def matches_fields(
    os_type: Any, category: Any, action: Any, name: Any, args: Any, executable: Any
) -> bool:
    """Evaluate the seed rule on already-extracted field values (scalars or lists)."""
    if "linux" not in _as_list(os_type):
        return False
    if "process" not in _as_list(category):
        return False
    actions = _as_list(action)
    if "exec" not in actions and "executed" not in actions:
        return False
    arg_list = _strs(_as_list(args))
    if not any(is_cred_path(a) for a in arg_list):
        return False
    names = _strs(_as_list(name))
    if any(name_matches(n) for n in names):
        return True
    if any(a in ARG_TOOLS for a in arg_list):
        return True
    return any(e.startswith(EXEC_PREFIXES) for e in _strs(_as_list(executable)))


def _get(event: Mapping[str, Any], dotted: str) -> Any:
    """Look ``dotted`` up in a nested, flat-dotted or mixed document."""
    if dotted in event:
        return event[dotted]
    parts = dotted.split(".")
    for i in range(1, len(parts)):
        sub = event.get(".".join(parts[:i]))
        if isinstance(sub, Mapping):
            found = _get(sub, ".".join(parts[i:]))
            if found is not None:
                return found
    return None


def _sub(event: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    v = event.get(key)
    return v if isinstance(v, Mapping) else {}


def matches(event: Mapping[str, Any]) -> bool:
    """The seed rule as a hand-written Python predicate over one decoded event."""
    if "process" in event and "process.args" not in event:
        # nested document: plain dict walks (the common case, kept cheap)
        proc = _sub(event, "process")
        ev = _sub(event, "event")
        return matches_fields(
            _sub(_sub(event, "host"), "os").get("type"),
            ev.get("category"),
            ev.get("action"),
            proc.get("name"),
            proc.get("args"),
            proc.get("executable"),
        )
    return matches_fields(
        _get(event, "host.os.type"),
        _get(event, "event.category"),
        _get(event, "event.action"),
        _get(event, "process.name"),
        _get(event, "process.args"),
        _get(event, "process.executable"),
    )
