"""Downloads: nothing leaves the store unless it authenticated in full, and every one is audited.

Streamed decryption alone would only notice damage or truncation when it reaches it, after part
of the file had gone out under a success status; so a file is verified before its first byte is
handed out (decrypted whole when small, a full authenticated pass first when large). A damaged
blob is a clear error and an audit event, a shredded room's file a clear "gone". Thumbnails are
served from here too, and the upload reads its own blob back through the same verified path.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from liaison import audit, storage
from liaison.access import access_attachment
from liaison.crypto import ContentShredded, CryptoError, TamperedError, roomkeys
from liaison.crypto.records import (
    ATTACHMENT_BLOB,
    ATTACHMENT_THUMBNAIL,
    open_attachment_name,
    stream_context,
)
from liaison.crypto.streaming import decrypt_stream
from liaison.errors import LiaisonError, NotFound
from liaison.models import Attachment, User
from liaison.services import markings
from liaison.services.attachments.images import thumbnail_type

logger = logging.getLogger(__name__)

# Files up to this size are decrypted in one piece on download; larger ones are verified in a
# first authenticated pass and then streamed in a second.
BUFFERED_DOWNLOAD_BYTES = 1024 * 1024
DOWNLOAD_PIECE_BYTES = 1024 * 1024


class AttachmentDamaged(LiaisonError):
    """This file failed its integrity check in the store and will not be delivered."""

    code = "damaged"
    http_status = 500
    default_detail = gettext_lazy(
        "This file failed its integrity check in the store and will not be delivered."
    )


class AttachmentShredded(LiaisonError):
    """Content destroyed by retention policy."""

    code = "shredded"
    http_status = 410
    default_detail = gettext_lazy("Content destroyed by retention policy.")


def display_name(attachment: Attachment) -> str:
    """The decrypted, already sanitised file name (raises ``CryptoError``)."""
    return open_attachment_name(attachment)


# --- reading blobs ------------------------------------------------------------------------------


def _blob_key(room_id: int, key_version: int) -> bytes:
    try:
        return roomkeys.data_key(room_id, key_version)
    except ContentShredded:
        raise AttachmentShredded() from None


def decrypted_pieces(
    room_id: int, key_version: int, storage_name: str, kind: str = ATTACHMENT_BLOB
) -> Iterator[bytes]:
    """Plaintext of a stored blob, piece by piece; each piece authenticated, but the whole
    only once the iterator ends cleanly."""
    key = _blob_key(room_id, key_version)
    context = stream_context(
        kind, room_id=room_id, key_version=key_version, storage_name=storage_name
    )
    with storage.open_blob(storage_name) as handle:
        yield from decrypt_stream(key, handle, context=context)


def read_verified(room_id: int, key_version: int, storage_name: str, size: int) -> bytes:
    """A whole blob's plaintext, authenticated to its end and of the expected size."""
    data = b"".join(decrypted_pieces(room_id, key_version, storage_name))
    if len(data) != size:
        raise TamperedError(f"blob {storage_name} holds {len(data)} bytes, not {size}")
    return data


def _verify(attachment: Attachment) -> None:
    """A full authenticated pass over the blob, also matching the recorded size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    for piece in decrypted_pieces(
        attachment.room_id, attachment.key_version, attachment.storage_name
    ):
        digest.update(piece)
        size += len(piece)
    if size != attachment.size or digest.hexdigest() != attachment.sha256:
        raise TamperedError(f"attachment {attachment.pk} does not match its recorded digest")


def _regrouped(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Fewer, larger pieces for the response (each is one thread hop under ASGI)."""
    buffer: list[bytes] = []
    buffered = 0
    for piece in pieces:
        buffer.append(piece)
        buffered += len(piece)
        if buffered >= size:
            yield b"".join(buffer)
            buffer, buffered = [], 0
    if buffer:
        yield b"".join(buffer)


def _damaged(*, user: User, attachment: Attachment, exercise: Any, ip: str | None) -> None:
    logger.error("attachment %s failed its integrity check", attachment.pk)
    with transaction.atomic():
        audit.record(
            actor=user,
            action="attachment.damaged",
            target=attachment,
            exercise=exercise,
            ip=ip,
            room=attachment.room_id,
        )


# --- serving ------------------------------------------------------------------------------------


def open_download(
    *, user: User, attachment_id: object, ip: str | None = None
) -> tuple[Attachment, Iterator[bytes], str]:
    """The attachment, its plaintext as an iterator of pieces, and its display name.

    Nothing unauthenticated is ever handed out: a file up to ``BUFFERED_DOWNLOAD_BYTES`` is
    decrypted whole before the first byte is returned; a larger one gets a full authenticated
    pass (which also checks the recorded size and SHA-256) before it is streamed in a second
    pass. If the blob changes between the two passes, the stream stops at the bad chunk and the
    connection ends short of Content-Length, which every client treats as a failed transfer.
    Each download is audited, auditors' included.
    """
    attachment, room_access = access_attachment(user, attachment_id)
    markings.require_may_download(attachment=attachment, room_access=room_access)
    try:
        name = display_name(attachment)
        if attachment.size <= BUFFERED_DOWNLOAD_BYTES:
            data = read_verified(
                attachment.room_id, attachment.key_version, attachment.storage_name, attachment.size
            )
            if hashlib.sha256(data).hexdigest() != attachment.sha256:
                raise TamperedError(f"attachment {attachment.pk} does not match its digest")
            pieces: Iterator[bytes] = iter([data] if data else [])
        else:
            _verify(attachment)
            pieces = _regrouped(
                decrypted_pieces(
                    attachment.room_id, attachment.key_version, attachment.storage_name
                ),
                DOWNLOAD_PIECE_BYTES,
            )
    except ContentShredded:
        raise AttachmentShredded() from None
    except (CryptoError, FileNotFoundError, OSError):
        _damaged(user=user, attachment=attachment, exercise=room_access.exercise, ip=ip)
        raise AttachmentDamaged() from None
    with transaction.atomic():
        audit.record(
            actor=user,
            action="attachment.downloaded",
            target=attachment,
            exercise=room_access.exercise,
            ip=ip,
            room=attachment.room_id,
            size=attachment.size,
            content_type=attachment.content_type,
            as_auditor=room_access.is_auditor,
        )
    return attachment, pieces, name


def open_thumbnail(*, user: User, attachment_id: object) -> tuple[bytes, str]:
    """The decrypted thumbnail and its type. Thumbnails are previews shown inline in the
    conversation, so fetching one is not a download and is not audited."""
    attachment, room_access = access_attachment(user, attachment_id)
    markings.require_may_download(attachment=attachment, room_access=room_access)
    if not attachment.thumbnail_storage_name:
        raise NotFound(_("This attachment has no thumbnail."))
    try:
        data = b"".join(
            decrypted_pieces(
                attachment.room_id,
                attachment.key_version,
                attachment.thumbnail_storage_name,
                ATTACHMENT_THUMBNAIL,
            )
        )
    except ContentShredded:
        raise AttachmentShredded() from None
    except (CryptoError, OSError):
        _damaged(user=user, attachment=attachment, exercise=room_access.exercise, ip=None)
        raise AttachmentDamaged() from None
    return data, thumbnail_type(data)
