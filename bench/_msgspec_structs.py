"""msgspec structs for the ``msgspec`` anchor: only the fields the seed rule reads.

Kept in their own module (imported lazily by ``anchors.py``) so that the
``auparse`` anchor can run under the system interpreter, which lacks msgspec.
"""

from __future__ import annotations

import msgspec

StrOrList = str | list[str] | None


class Os(msgspec.Struct):
    """``host.os``."""

    type: StrOrList = None


class Host(msgspec.Struct):
    """``host``."""

    os: Os | None = None


class Ev(msgspec.Struct):
    """``event``."""

    category: StrOrList = None
    action: StrOrList = None
    id: str | None = None


class Proc(msgspec.Struct):
    """``process``."""

    name: StrOrList = None
    executable: StrOrList = None
    args: StrOrList = None


class Doc(msgspec.Struct):
    """A nested ECS document."""

    host: Host | None = None
    event: Ev | None = None
    process: Proc | None = None


class Flat(
    msgspec.Struct,
    rename={
        "os_type": "host.os.type",
        "category": "event.category",
        "action": "event.action",
        "id": "event.id",
        "name": "process.name",
        "executable": "process.executable",
        "args": "process.args",
    },
):
    """A flat-dotted ECS document."""

    os_type: StrOrList = None
    category: StrOrList = None
    action: StrOrList = None
    id: str | None = None
    name: StrOrList = None
    executable: StrOrList = None
    args: StrOrList = None
