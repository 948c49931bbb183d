"""Redaction of secrets in notifications (command lines often carry them).

Each pattern is a regular expression without nested or overlapping repetition
(every repeated class is bounded or followed by a character it cannot match),
so matching stays linear in the text; private key blocks are found with
``str.find``. A secret is replaced by ``[REDACTED:<kind>]``; the text around
it (the flag, the header name, the user in a URL) is kept, since that is what
tells a responder what leaked.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

MARK = "[REDACTED:{}]"
#: Nesting deeper than this in a document is not walked (documents are bounded upstream).
MAX_DEPTH = 64

_FLAGS = ("password", "passwd", "pass", "token", "secret", "api-key", "apikey", "access-token",
          "auth-token", "client-secret", "private-key", "bearer-token", "secret-key")
_FLAG_ALT = "|".join(re.escape(f) for f in _FLAGS)
#: ``--password VALUE`` and ``--password=VALUE``; ``-p VALUE`` and ``-pVALUE`` (mysql).
_LONG_FLAG = re.compile(rf"(?i)(?<![\w-])(--?(?:{_FLAG_ALT}))(=|[ \t]+)([^\s'\"]+)")
_SHORT_P = re.compile(r"(?<![\w-])(-p)([ \t]+|(?=[^\s-]))([^\s'\"]+)")

_Sub = tuple[str, re.Pattern[str], Callable[[re.Match[str]], str]]


def _keep(groups: int, kind: str) -> Callable[[re.Match[str]], str]:
    """Keep the first ``groups`` groups, replace the rest of the match."""
    return lambda m: "".join(m.group(i) or "" for i in range(1, groups + 1)) + MARK.format(kind)


def _whole(kind: str) -> Callable[[re.Match[str]], str]:
    return lambda m: MARK.format(kind)


def _short_p(m: re.Match[str]) -> str:
    value = m.group(3)
    # `mkdir -p /root/.kube`, `ssh -p 22`: -p is not a password there; a path is kept.
    if value[:1] in "/~." or (m.group(2).strip() == "" and m.group(2) and value.isdigit()):
        return m.group(0)
    return m.group(1) + m.group(2) + MARK.format("password")


_SUBS: list[_Sub] = [
    ("authorization", re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*)"
                                 r"(?:(?:bearer|basic|token|apikey|digest)[ \t]+)?[^\s'\"]+"),
     _keep(1, "authorization")),
    ("bearer", re.compile(r"(?i)\b(bearer[ \t]+)[A-Za-z0-9._~+/=-]{8,}"), _keep(1, "token")),
    ("url-password", re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30}://[^\s:/@'\"]{0,256}:)"
                                r"[^\s@/'\"]{1,512}(?=@)"), _keep(1, "password")),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"),
     _whole("aws-access-key")),
    ("aws-secret-key", re.compile(r"(?i)(aws_?secret_?access_?key|secret_?access_?key)"
                                  r"([\"']?[ \t]*[:=][ \t]*[\"']?)[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),
     _keep(2, "aws-secret-key")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
     _whole("github-token")),
    ("slack-token", re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,255}"), _whole("slack-token")),
    ("slack-webhook", re.compile(r"(hooks\.slack\.com/(?:services|workflows)/)[A-Za-z0-9/_-]{8,255}"),
     _keep(1, "slack-webhook")),
    ("gcp-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), _whole("gcp-api-key")),
    ("gcp-oauth", re.compile(r"\bya29\.[0-9A-Za-z_-]{20,2048}"), _whole("gcp-token")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{4,4096}\.eyJ[A-Za-z0-9_-]{4,8192}\.[A-Za-z0-9_-]{0,4096}"),
     _whole("jwt")),
    ("env-secret", re.compile(r"(?i)(?<![A-Za-z0-9_])([A-Za-z0-9_]{0,40}(?:password|passwd|secret|"
                              r"token|api_?key|access_?key)[A-Za-z0-9_]{0,40}=)([^\s'\"]+)"),
     _keep(1, "secret")),
    ("flag", _LONG_FLAG, lambda m: m.group(1) + m.group(2) + MARK.format("secret")),
    # curl -u user:password, --user=user:password (the user is kept)
    ("user-password", re.compile(r"(?<![\w-])(-u|--user)([ \t]+|=)([^\s:'\"]{1,256}:)[^\s'\"]+"),
     _keep(3, "password")),
    ("flag-p", _SHORT_P, _short_p),
]

_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----")


def _pem(text: str) -> str:
    out: list[str] = []
    pos = 0
    while (m := _PEM_BEGIN.search(text, pos)) is not None:
        out.append(text[pos:m.start()])
        end = text.find("-----END ", m.end())
        close = text.find("-----", end + 9) if end >= 0 else -1
        out.append(MARK.format("private-key"))
        if close < 0:
            return "".join(out)  # an unterminated block: everything after BEGIN is key material
        pos = close + 5
    out.append(text[pos:])
    return "".join(out)


#: Every pattern above needs one of these (case-insensitively); a string without any is
#: left as is after one linear search instead of a pass per pattern.
_TRIGGER = re.compile(r"(?i)private[ -]key|authoriz|bearer|://|\b(?:akia|asia|agpa|aida|aroa|anpa)"
                      r"|secret|gh[pousr]_|github_pat_|xox|hooks\.slack|aiza|ya29\.|eyj|pass|token"
                      r"|api[-_]?key|access[-_]?key|(?<![\w-])-(?:p|u)|--user")
#: Strings up to this size are remembered (rule texts repeat in every alert).
_CACHE_MAX_LEN = 1 << 16


@functools.lru_cache(maxsize=4096)
def _redact_cached(text: str) -> str:
    return _redact_uncached(text)


def redact_text(text: str) -> str:
    """``text`` with every recognised secret replaced by ``[REDACTED:<kind>]``."""
    if len(text) <= _CACHE_MAX_LEN:
        return _redact_cached(text)
    return _redact_uncached(text)


def _redact_uncached(text: str) -> str:
    if _TRIGGER.search(text) is None:
        return text
    if "PRIVATE KEY" in text:
        text = _pem(text)
    for _kind, pattern, repl in _SUBS:
        text = pattern.sub(repl, text)
    return text


_SCHEMES = ("bearer", "basic", "token", "apikey", "digest")


def _is_flag(arg: str) -> bool:
    """An argument after which the next one is a secret (a flag, a header name, a scheme)."""
    low = arg.lower().strip("'\"")
    if low in _SCHEMES or low.endswith("authorization:"):
        return True
    return arg.startswith("-") and (arg == "-p" or low.lstrip("-") in _FLAGS)


def _redact_args(items: list[Any], depth: int) -> list[Any]:
    """A list; a secret flag given as its own argument (``-p``, ``--token``) hides the next one.

    ``["-H", "Authorization:", "Bearer", "TOKEN"]`` keeps the scheme word and hides the token.
    """
    out: list[Any] = []
    hide = user = False
    for item in items:
        if user and isinstance(item, str) and ":" in item:
            out.append(item.split(":", 1)[0] + ":" + MARK.format("password"))
            user = hide = False
            continue
        if hide and isinstance(item, str):
            hide = item.lower().strip("'\"") in _SCHEMES
            if hide:
                out.append(item)
            elif item[:1] in "/~." and out and out[-1] == "-p":
                out.append(item)  # mkdir -p /root/.kube: a path, not a password
            else:
                out.append(MARK.format("secret"))
            continue
        out.append(_redact_value(item, depth + 1))
        hide = isinstance(item, str) and _is_flag(item)
        user = item in ("-u", "--user")
    return out


def _redact_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth >= MAX_DEPTH:
        return MARK.format("too-deep") if isinstance(value, dict | list) else value
    if isinstance(value, dict):
        return {k: _redact_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return _redact_args(value, depth)
    return value


def redact_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an alert document with secrets redacted in every string value.

    Lists are treated as argument vectors: after ``--password``, ``--token``,
    ``-p`` (and the other secret flags) the next element is redacted whole.
    """
    return {k: _redact_value(v, 1) for k, v in doc.items()}
