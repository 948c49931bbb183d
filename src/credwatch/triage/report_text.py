"""Text for the HTML report: host labels, rendered guides, steps with code, the script's data.

Everything here takes attacker-controlled text (host names, arguments, and the
rule guide of an alerts file given with ``--input``) and returns either plain
text, which the template's autoescaping escapes, or, for the two places that
must be markup (a rendered guide, the JSON in a ``<script>`` element), markup
built by a library that escapes its input: markdown-it-py with raw HTML off,
and JSON with every ``<``, ``>``, ``&`` and ``'`` written as a ``\\u`` escape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

from credwatch.alerts.display import visible_text
from credwatch.normalize.flatten import get_values

NO_HOST = "(no host name)"
#: Longest guide rendered (a rule's note is a few KB; an alerts file may hold anything).
MAX_GUIDE_CHARS = 64 * 1024


def _first(doc: Mapping[str, Any], field: str) -> str:
    vals = get_values(doc, field)
    return str(vals[0]) if vals and vals[0] not in (None, "") else ""


def host_label(alert: Mapping[str, Any]) -> str:
    """How the report names the host of ``alert``, everywhere (summary, filter, table, details).

    ``host.name``, else ``host.hostname``, else :data:`NO_HOST`; invisible and
    control characters shown escaped so two hosts that look alike do not read
    as one.
    """
    return visible_text(_first(alert, "host.name") or _first(alert, "host.hostname") or NO_HOST)


class _GuideMarkdown(MarkdownIt):
    """CommonMark without raw HTML or images, and links only to http(s) URLs."""

    def validateLink(self, url: str) -> bool:  # markdown-it's name
        return url.strip().lower().startswith(("http://", "https://"))


def _link_open(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict,
               env: EnvType) -> str:
    # A guide's link leaves the report: do not tell the site where it was opened from.
    tokens[idx].attrSet("rel", "noreferrer noopener")
    return str(self.renderToken(tokens, idx, options, env))


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = _GuideMarkdown("commonmark", {"html": False})
    md.disable("image")  # the page loads nothing (CSP img-src data: only)
    md.add_render_rule("link_open", _link_open)
    return md


@lru_cache(maxsize=64)
def render_guide(text: str) -> Markup:
    """A rule's investigation guide (markdown) as HTML.

    Raw HTML in the guide is shown escaped, links go only to http/https, and
    NUL, bidi overrides and other invisible characters (also when written as
    entities such as ``&#x202e;``) are shown as visible escapes.
    """
    if len(text) > MAX_GUIDE_CHARS:
        text = text[:MAX_GUIDE_CHARS] + "\n\n… (guide truncated)"
    # The renderer escapes <&>" itself; visible_text then only replaces invisible characters,
    # which are never markup, so the result stays well-formed.
    return Markup(visible_text(_markdown().render(visible_text(text))))


def code_spans(step: str) -> list[tuple[bool, str]]:
    """A next step as ``(is code, text)`` parts: the text between its outer backticks is code.

    The triage writes a command line as ```cmd```; the command itself may hold
    backticks, so the first and the last backtick delimit it (no markdown is read
    from event text).
    """
    first, last = step.find("`"), step.rfind("`")
    if first < 0 or last == first:
        return [(False, step)]
    return [(False, step[:first]), (True, step[first + 1:last]), (False, step[last + 1:])]


_SCRIPT_UNSAFE = re.compile("[<>&'\u2028\u2029]")


def script_json(data: Any) -> Markup:
    """``data`` as JSON that can sit inside ``<script type=application/json>`` unchanged.

    Non-ASCII is ``\\u``-escaped and so are ``<``, ``>``, ``&`` and ``'``: no
    ``</script>`` or ``<!--`` in a host name can end or alter the element.
    """
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"))
    return Markup(_SCRIPT_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
