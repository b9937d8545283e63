"""A message's rules, shared by sending and by editing: what a client id, a body, a kind and a
list of attachments must be, and that the writer still belongs to the room."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from django.conf import settings
from django.utils.translation import gettext as _

from liaison import access
from liaison.errors import Invalid, PermissionDenied, TooLarge
from liaison.models import GroupRole, Membership, MessageKind

CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_ATTACHMENTS = 10
_KEPT_CONTROLS = {"\n", "\t"}


# --- the domain's rules (entry points check shapes first, in liaison.schemas) ---------------------


def clean_client_id(client_id: object) -> str:
    if not isinstance(client_id, str) or not CLIENT_ID_RE.fullmatch(client_id):
        raise Invalid(
            _("client_id must be 1 to 64 characters of letters, digits, '_' or '-'."),
            field="client_id",
        )
    return client_id


def clean_body(body: object, *, allow_empty: bool = False) -> str:
    """The body as stored: control characters (other than newline and tab) and unpaired
    surrogates removed, outer white space trimmed; non-empty and within the length limit."""
    if not isinstance(body, str):
        raise Invalid(_("body must be a string."), field="body")
    cleaned = "".join(
        ch for ch in body if ch in _KEPT_CONTROLS or unicodedata.category(ch) not in {"Cc", "Cs"}
    ).strip()
    if not cleaned and not allow_empty:
        raise Invalid(_("The message is empty."), field="body")
    limit = settings.LIAISON_MESSAGE_MAX_CHARS
    if len(cleaned) > limit:
        raise TooLarge(
            _("The message is %(length)s characters long; the limit is %(limit)s.")
            % {"length": len(cleaned), "limit": limit},
            field="body",
        )
    return cleaned


def clean_kind(kind: str, *, has_attachments: bool) -> str:
    if kind not in MessageKind.values:
        raise Invalid(_("Unknown message kind %(kind)s.") % {"kind": repr(kind)}, field="kind")
    if has_attachments and kind == MessageKind.TEXT:
        return MessageKind.ATTACHMENT
    return kind


def clean_attachment_ids(attachment_ids: Iterable[object]) -> list[int]:
    """The distinct ids, in the order given (a repeated id is attached once)."""
    ids: dict[int, None] = {}
    for value in attachment_ids:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise Invalid(_("attachments must be a list of attachment ids."), field="attachments")
        ids[value] = None
    if len(ids) > MAX_ATTACHMENTS:
        raise Invalid(
            _("A message can carry at most %(max_attachments)s attachments.")
            % {"max_attachments": MAX_ATTACHMENTS},
            field="attachments",
        )
    return list(ids)


def require_still_member(room_access: access.RoomAccess) -> None:
    """Inside the write's transaction: wait for a concurrent removal and honour it."""
    membership = room_access.membership
    if membership is None:
        return
    current = (
        Membership.objects.select_for_update()
        .filter(pk=membership.pk, removed_at__isnull=True)
        .values_list("role", flat=True)
        .first()
    )
    if current is None:
        raise access.AccessDenied(target_type="room", target_id=str(room_access.room.pk))
    if current == GroupRole.OBSERVER:
        raise PermissionDenied(_("Observers can read but not post in this exercise."))
