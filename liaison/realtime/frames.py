"""Client frames of the room WebSocket: decoded and checked before anything acts on them.

The shapes are declared in ``liaison.schemas`` (docs/api/websocket.md). A frame with an unknown
type, an unknown or missing field, or a field of the wrong type is refused with ``Invalid``
saying what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from liaison import schemas
from liaison.errors import Invalid


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
    """The frame's type and its fields (optional ones at their defaults), or ``Invalid``."""
    frame = schemas.parse_frame(data)
    fields = frame.model_dump()
    return Frame(type=fields.pop("type"), fields=fields)
