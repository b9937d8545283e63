"""Uploads: a file is encrypted into the store as it arrives and checked while it streams.

Plaintext never sits on disk and never whole in memory: each piece is sealed with the one
stream encryptor (``liaison.crypto.streaming.StreamEncryptor``) the moment it arrives, so the
per-file limit and the room's quota cut an oversized body off mid-stream, and the type is
decided by sniffing the first bytes (``policy``). A refused or broken upload deletes every blob
it wrote and leaves an audit event; a recorded one is the uploader's unsent file until a
message claims it (``claim_for_message``) or retention purges it.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from liaison import audit, storage
from liaison.access import access_room, require_can_post
from liaison.crypto import roomkeys
from liaison.crypto.records import (
    ATTACHMENT_BLOB,
    ATTACHMENT_THUMBNAIL,
    seal_attachment_name,
    stream_context,
)
from liaison.crypto.streaming import StreamEncryptor
from liaison.errors import Invalid, LiaisonError, TooLarge
from liaison.models import Attachment, Message, Room, User
from liaison.services.attachments.downloads import read_verified
from liaison.services.attachments.images import (
    decode_slot,
    image_size,
    make_thumbnail,
    thumbnail_source_max_bytes,
)
from liaison.services.attachments.policy import (
    IMAGE_TYPES,
    PDF,
    SNIFF_BYTES,
    TEXT_TYPES,
    clean_filename,
    max_upload_bytes,
    mib,
    room_quota_bytes,
    sniff_type,
    text_refused,
)
from liaison.services.attachments.previews import pdf_first_page


def room_usage(room_id: int) -> int:
    """Bytes of the room's live (not purged) attachments, counted against its quota."""
    total = Attachment.objects.filter(room_id=room_id, purged_at__isnull=True).aggregate(
        total=Sum("size")
    )["total"]
    return int(total or 0)


class AttachmentUpload:
    """One upload in flight. Plaintext goes in piece by piece and leaves only as ciphertext.

    ``write()`` each piece, then ``complete()`` (end of stream: final checks, blob committed,
    thumbnail made), then ``record()`` (the database row and the audit event, in one
    transaction). ``abort()`` — automatic on any failure — deletes every blob written, so a
    refused or broken upload leaves nothing in the store. Created by ``start_upload``.
    """

    def __init__(
        self,
        *,
        uploader: User,
        room: Room,
        filename: str,
        declared_type: str,
        ip: str | None,
        quota_left: int,
    ) -> None:
        self.uploader = uploader
        self.room = room
        self.filename = clean_filename(filename)
        self.declared_type = str(declared_type or "")[:100]
        self.ip = ip
        self.max_bytes = max_upload_bytes()
        self.quota_left = quota_left
        self.storage_name = storage.new_blob_name()
        self.thumbnail_name = ""
        self.size = 0
        self.sha256 = ""
        self.content_type: str | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.attachment: Attachment | None = None
        self.state = "open"  # open → complete → recorded, or aborted
        # The name and the blob are sealed under the same key version, so one ``key_version``
        # column describes both even if the room key rotates meanwhile.
        self.key_version, key = roomkeys.active_key(room.pk)
        self._sealed_name = seal_attachment_name(
            room_id=room.pk,
            key_version=self.key_version,
            storage_name=self.storage_name,
            name=self.filename,
        )
        self._encryptor = StreamEncryptor(key, context=self._context(ATTACHMENT_BLOB))
        self._digest = hashlib.sha256()
        self._head = bytearray()
        self._text: codecs.IncrementalDecoder | None = None
        self._writer = storage.BlobWriter(self.storage_name)

    def _context(self, kind: str, name: str | None = None) -> bytes:
        return stream_context(
            kind,
            room_id=self.room.pk,
            key_version=self.key_version,
            storage_name=name or self.storage_name,
        )

    def _expect(self, state: str) -> None:
        if self.state != state:
            raise Invalid(
                _("This upload is %(state)s, not %(state2)s.")
                % {"state": self.state, "state2": state}
            )

    # -- streaming --

    def write(self, data: bytes) -> None:
        """Take the next piece of the file."""
        self._expect("open")
        try:
            self._write(bytes(data))
        except BaseException as error:
            self._fail(error)
            raise

    def _write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise TooLarge(
                _("The file is larger than the %(mib)s limit.") % {"mib": mib(self.max_bytes)},
                field="file",
            )
        if self.size > self.quota_left:
            raise TooLarge(
                _("The file does not fit in this room's remaining storage quota (%(mib)s left).")
                % {"mib": mib(max(self.quota_left, 0))},
                field="file",
            )
        if self.content_type is None:
            self._head += data
            if len(self._head) >= SNIFF_BYTES:
                self._decide(final=False)
        elif self._text is not None:
            self._check_text(data, final=False)
        self._digest.update(data)
        self._writer.write(self._encryptor.update(data))

    def _decide(self, *, final: bool) -> None:
        head = bytes(self._head)
        self.content_type = sniff_type(head, name=self.filename)
        if self.content_type in TEXT_TYPES:
            self._text = codecs.getincrementaldecoder("utf-8")("strict")
            self._check_text(head, final=final)
        elif self.content_type in IMAGE_TYPES:
            size = image_size(head)
            if size is not None:
                self.width, self.height = size
        self._head = bytearray()

    def _check_text(self, data: bytes, *, final: bool) -> None:
        assert self._text is not None
        if b"\x00" in data:
            raise text_refused()
        try:
            self._text.decode(data, final)
        except UnicodeDecodeError:
            raise text_refused() from None

    def complete(self) -> None:
        """The stream ended: finish the checks, commit the blob, make the thumbnail."""
        self._expect("open")
        try:
            if self.content_type is None:
                self._decide(final=True)
            elif self._text is not None:
                self._check_text(b"", final=True)
            self._writer.write(self._encryptor.finalize())
            self._writer.commit()
            self.sha256 = self._digest.hexdigest()
            if self.content_type in IMAGE_TYPES:
                self._thumbnail()
            elif self.content_type == PDF:
                self._pdf_preview()
        except BaseException as error:
            self._fail(error)
            raise
        self.state = "complete"

    def _thumbnail(self) -> None:
        if self.size > thumbnail_source_max_bytes():
            if self.width is None:  # too large to decode here, and its header was unreadable
                raise Invalid(
                    _("This image's dimensions could not be read from its header."), field="file"
                )
            return  # accepted without a preview
        # One image at a time per process, from reading its plaintext back to the preview, so a
        # burst of uploads costs one image's memory; a long wait means no preview.
        with decode_slot() as free:
            if not free:
                return
            plaintext = read_verified(self.room.pk, self.key_version, self.storage_name, self.size)
            thumbnail, self.width, self.height = make_thumbnail(plaintext)
            del plaintext
        if thumbnail is None:  # too large to decode within the thumbnail pixel limit
            return
        self._store_preview(thumbnail)

    def _pdf_preview(self) -> None:
        """A PDF's first page as its preview, sealed like an image's thumbnail."""
        if self.size > thumbnail_source_max_bytes():
            return
        with decode_slot() as free:
            if not free:
                return
            plaintext = read_verified(self.room.pk, self.key_version, self.storage_name, self.size)
            preview = pdf_first_page(plaintext)
            del plaintext
        if preview is None:
            return
        data, self.width, self.height = preview
        self._store_preview(data)

    def _store_preview(self, data: bytes) -> None:
        name = storage.new_blob_name()
        key = roomkeys.data_key(self.room.pk, self.key_version)
        encryptor = StreamEncryptor(key, context=self._context(ATTACHMENT_THUMBNAIL, name))
        self.thumbnail_name = name
        storage.write_blob(name, encryptor.update(data) + encryptor.finalize())

    # -- recording --

    def record(self) -> Attachment:
        """Create the attachment row and its audit event; the upload is now the uploader's
        unsent file until a message claims it."""
        self._expect("complete")
        assert self.content_type is not None
        try:
            with transaction.atomic():
                # The room lock serialises quota checks of concurrent uploads.
                Room.objects.select_for_update().filter(pk=self.room.pk).first()
                access = access_room(self.uploader, self.room.pk)  # still a member?
                require_can_post(access)
                quota = room_quota_bytes()
                if room_usage(self.room.pk) + self.size > quota:
                    raise TooLarge(
                        _("This room's storage quota (%(mib)s) would be exceeded.")
                        % {"mib": mib(quota)},
                        field="file",
                    )
                attachment = Attachment.objects.create(
                    room=self.room,
                    uploader=self.uploader,
                    key_version=self.key_version,
                    storage_name=self.storage_name,
                    size=self.size,
                    sha256=self.sha256,
                    content_type=self.content_type,
                    name_nonce=self._sealed_name.nonce,
                    name_ciphertext=self._sealed_name.ciphertext,
                    thumbnail_storage_name=self.thumbnail_name,
                    width=self.width,
                    height=self.height,
                )
                audit.record(
                    actor=self.uploader,
                    action="attachment.uploaded",
                    target=attachment,
                    exercise=access.exercise,
                    ip=self.ip,
                    room=self.room.pk,
                    size=self.size,
                    content_type=self.content_type,
                    declared_type=self.declared_type,
                    sha256=self.sha256,
                    thumbnail=bool(self.thumbnail_name),
                )
        except BaseException as error:
            self._fail(error)
            raise
        self.attachment = attachment
        self.state = "recorded"
        return attachment

    # -- failure --

    def abort(self) -> None:
        """Delete everything written so far. Safe to call in any state; a no-op once recorded."""
        if self.state in {"recorded", "aborted"}:
            return
        self.state = "aborted"
        self._writer.abort()
        storage.delete_blob(self.storage_name)
        storage.delete_blob(self.thumbnail_name)

    def _fail(self, error: BaseException) -> None:
        already_aborted = self.state == "aborted"
        self.abort()
        if not already_aborted and isinstance(error, Invalid | TooLarge):
            _record_refusal(
                uploader=self.uploader,
                room=self.room,
                ip=self.ip,
                error=error,
                declared_type=self.declared_type,
                detected_type=self.content_type or "",
                bytes_received=self.size,
            )


def _record_refusal(
    *,
    uploader: User,
    room: Room,
    ip: str | None,
    error: LiaisonError,
    declared_type: str,
    detected_type: str = "",
    bytes_received: int = 0,
) -> None:
    """A refusal by rule (type, size, quota, image) is a security-relevant event; recorded in
    its own transaction since the upload itself fails."""
    with transaction.atomic():
        audit.record(
            actor=uploader,
            action="attachment.refused",
            target=("room", room.pk),
            exercise=room.exercise,
            ip=ip,
            reason=error.code,
            detail=error.detail[:300],
            declared_type=declared_type[:100],
            detected_type=detected_type,
            bytes_received=bytes_received,
        )


def start_upload(
    *,
    uploader: User,
    room_id: object,
    filename: str,
    declared_type: str,
    ip: str | None = None,
    at_least: int = 0,
) -> AttachmentUpload:
    """Open an upload into a room the uploader may post in.

    ``at_least`` is a lower bound of the file's size when the transport knows one (from the
    request's Content-Length): a file that cannot fit the limit or the room's remaining quota
    is refused at once, before any of it is read.
    """
    access = access_room(uploader, room_id)
    require_can_post(access)
    limit = max_upload_bytes()
    quota_left = room_quota_bytes() - room_usage(access.room.pk)
    refusal = None
    if at_least > limit:
        refusal = TooLarge(
            _("The file is larger than the %(mib)s limit.") % {"mib": mib(limit)}, field="file"
        )
    elif quota_left <= 0:
        refusal = TooLarge(_("This room's storage quota is used up."), field="file")
    elif at_least > quota_left:
        refusal = TooLarge(
            _("The file does not fit in this room's remaining storage quota (%(mib)s left).")
            % {"mib": mib(quota_left)},
            field="file",
        )
    if refusal is not None:
        _record_refusal(
            uploader=uploader, room=access.room, ip=ip, error=refusal, declared_type=declared_type
        )
        raise refusal
    return AttachmentUpload(
        uploader=uploader,
        room=access.room,
        filename=filename,
        declared_type=declared_type,
        ip=ip,
        quota_left=quota_left,
    )


def upload_attachment(
    *,
    uploader: User,
    room_id: object,
    filename: str,
    declared_type: str,
    chunks: Iterable[bytes],
    ip: str | None = None,
) -> Attachment:
    """Store a file given as an iterable of plaintext pieces (see ``AttachmentUpload``)."""
    upload = start_upload(
        uploader=uploader,
        room_id=room_id,
        filename=filename,
        declared_type=declared_type,
        ip=ip,
    )
    try:
        for chunk in chunks:
            upload.write(chunk)
        upload.complete()
        return upload.record()
    finally:
        upload.abort()  # a no-op once recorded


# --- binding to a message -----------------------------------------------------------------------


def claim_for_message(
    *, user: User, room: Room, attachment_ids: list[int], message: Message
) -> list[Attachment]:
    """Bind the sender's own unsent uploads in this room to ``message``.

    To be called inside the sending transaction, which records the audit event (listing the
    ids). Refuses, naming the first bad id, anything that is not the user's own upload in this
    room, already belongs to a message, or was purged. Someone else's upload and a missing one
    get the same answer, so ids reveal nothing.
    """
    if message.room_id != room.pk:
        raise Invalid(_("The message belongs to another room."), field="attachments")
    wanted: list[int] = []
    for value in attachment_ids:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise Invalid(_("attachments must be a list of attachment ids."), field="attachments")
        if value in wanted:
            raise Invalid(
                _("Attachment %(value)s is listed twice.") % {"value": value}, field="attachments"
            )
        wanted.append(value)
    rows = {
        attachment.pk: attachment
        for attachment in Attachment.objects.select_for_update().filter(pk__in=wanted)
    }
    claimed = []
    for ident in wanted:
        attachment = rows.get(ident)
        if attachment is None or attachment.uploader_id != user.pk or attachment.room_id != room.pk:
            raise Invalid(
                _("Attachment %(ident)s is not one of your uploads in this room.")
                % {"ident": ident},
                field="attachments",
            )
        if attachment.purged_at is not None:
            raise Invalid(
                _("Attachment %(ident)s was never sent and has been removed; upload it again.")
                % {"ident": ident},
                field="attachments",
            )
        if attachment.message_id is not None:
            raise Invalid(
                _("Attachment %(ident)s is already attached to a message.") % {"ident": ident},
                field="attachments",
            )
        claimed.append(attachment)
    for attachment in claimed:
        attachment.message = message
        attachment.save(update_fields=["message"])
    return claimed
