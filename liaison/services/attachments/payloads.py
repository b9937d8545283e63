"""How an attachment appears to clients: in a message object and in the upload response.

The file name is opened here for display; a name that no longer opens (shredded room, damaged
row) still yields a payload, so one bad attachment never breaks a whole page of history.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from liaison.crypto import ContentShredded, CryptoError
from liaison.models import Attachment
from liaison.services.attachments.downloads import display_name

logger = logging.getLogger(__name__)


def _name_for_payload(attachment: Attachment) -> str:
    try:
        return display_name(attachment)
    except ContentShredded:
        return ContentShredded.user_text
    except CryptoError:
        logger.warning("attachment %s: the file name failed to decrypt", attachment.pk)
        return "(name unreadable)"


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    """How an attachment appears in a message object and in the upload response."""
    has_thumbnail = bool(attachment.thumbnail_storage_name)
    return {
        "id": attachment.pk,
        "name": _name_for_payload(attachment),
        "size": attachment.size,
        "content_type": attachment.content_type,
        "sha256": attachment.sha256,
        "has_thumbnail": has_thumbnail,
        "width": attachment.width,
        "height": attachment.height,
        "download_url": f"/api/v1/attachments/{attachment.pk}",
        "thumbnail_url": f"/api/v1/attachments/{attachment.pk}/thumbnail"
        if has_thumbnail
        else None,
    }


def payloads_for_messages(message_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Attachment objects per message id, in upload order, in one query."""
    ids = list(message_ids)
    result: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return result
    rows = Attachment.objects.filter(message_id__in=ids, purged_at__isnull=True).order_by(
        "message_id", "created_at", "pk"
    )
    for attachment in rows:
        result.setdefault(attachment.message_id, []).append(attachment_payload(attachment))
    return result
