"""Client frames of the room WebSocket: parsed and checked before anything acts on them.

The shapes are those of docs/api/websocket.md. A frame with an unknown type, an unknown or
missing field, or a field of the wrong type is refused with ``Invalid`` saying what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from liaison.errors import Invalid

# Field checkers: each returns the value or raises Invalid naming the field.


def _integer(name: str, value: object, *, minimum: int, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(_("Field '%(name)s' must be an integer.") % {"name": name}, field=name)
    if value < minimum:
        raise Invalid(
            _("Field '%(name)s' must be at least %(minimum)s.")
            % {"name": name, "minimum": minimum},
            field=name,
        )
    return value


def _string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise Invalid(_("Field '%(name)s' must be a string.") % {"name": name}, field=name)
    return value


def _attachments(name: str, value: object) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or any(
        isinstance(item, bool) or not isinstance(item, int) or item <= 0 for item in value
    ):
        raise Invalid(
            _("Field '%(name)s' must be a list of attachment ids.") % {"name": name}, field=name
        )
    return value


def _kind(name: str, value: object) -> str:
    if value not in {"text", "alert"}:
        raise Invalid(
            _('Field \'%(name)s\' must be "text" or "alert".') % {"name": name}, field=name
        )
    return value  # type: ignore[return-value]


# type -> {field: (required, checker)}
SCHEMAS: dict[str, dict[str, tuple[bool, Any]]] = {
    "message.send": {
        "client_id": (True, _string),
        "body": (True, _string),
        "reply_to": (False, lambda n, v: _integer(n, v, minimum=1, nullable=True)),
        "attachments": (False, _attachments),
        "kind": (False, _kind),
    },
    "message.edit": {
        "seq": (True, lambda n, v: _integer(n, v, minimum=1)),
        "body": (True, _string),
    },
    "message.delete": {"seq": (True, lambda n, v: _integer(n, v, minimum=1))},
    "sync": {"after_seq": (True, lambda n, v: _integer(n, v, minimum=0))},
    "history": {
        "before_seq": (False, lambda n, v: _integer(n, v, minimum=1, nullable=True)),
        "limit": (False, lambda n, v: _integer(n, v, minimum=1, nullable=True)),
    },
    "typing": {},
    "read": {"seq": (True, lambda n, v: _integer(n, v, minimum=0))},
    "ping": {},
}


@dataclass(frozen=True)
class Frame:
    type: str
    fields: dict[str, Any]


def decode_frame(text: str) -> object:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        # ValueError covers malformed JSON and integers longer than Python converts (4,300 digits).
        raise Invalid(_("The frame is not valid JSON.")) from None


def frame_client_id(data: object) -> str | None:
    """The ``client_id`` of a ``message.send``, to echo in an error about it."""
    if not isinstance(data, dict) or data.get("type") != "message.send":
        return None
    client_id = data.get("client_id")
    return client_id if isinstance(client_id, str) and 0 < len(client_id) <= 64 else None


def check_frame(data: object) -> Frame:
    if not isinstance(data, dict):
        raise Invalid(_("A frame must be a JSON object with a 'type'."))
    kind = data.get("type")
    if not isinstance(kind, str):
        raise Invalid(_("A frame must have a string 'type'."))
    schema = SCHEMAS.get(kind)
    if schema is None:
        raise Invalid(_("Unknown frame type %(kind)s.") % {"kind": repr(kind[:40])})
    unknown = sorted(set(data) - set(schema) - {"type"})
    if unknown:
        raise Invalid(
            _("Unknown field '%(value)s' in a %(kind)s frame.")
            % {"value": str(unknown[0])[:40], "kind": kind}
        )
    fields: dict[str, Any] = {}
    for name, (required, checker) in schema.items():
        if name not in data:
            if required:
                raise Invalid(_("Field '%(name)s' is required.") % {"name": name}, field=name)
            continue
        fields[name] = checker(name, data[name])
    return Frame(type=kind, fields=fields)
