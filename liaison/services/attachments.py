"""Attachments: encrypted, streamed, type-checked files shared in rooms.

A file arrives as a stream of plaintext pieces (``start_upload`` → ``write`` → ``complete`` →
``record``, or ``upload_attachment`` for an iterable). Each piece is encrypted into the blob
store as it arrives; the per-file limit and the room quota are enforced while streaming; the
type is decided by sniffing the bytes against an allow-list; the name is sanitised for display
and stored encrypted. A message later claims its sender's uploads (``claim_for_message``);
unsent uploads are purged after a day (``purge_unsent``). Downloads are verified in full before
the first byte is delivered and every one is on record (``open_download``).
"""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import io
import logging
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import filetype
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from liaison import audit, storage
from liaison.access import access_attachment, access_room, require_can_post
from liaison.crypto import ContentShredded, CryptoError, TamperedError, roomkeys
from liaison.crypto import decrypt as crypto_decrypt
from liaison.crypto import encrypt as crypto_encrypt
from liaison.crypto.records import (
    ATTACHMENT_BLOB,
    ATTACHMENT_NAME,
    ATTACHMENT_THUMBNAIL,
    stream_context,
)
from liaison.crypto.streaming import StreamEncryptor, decrypt_stream
from liaison.errors import Invalid, LiaisonError, NotFound, TooLarge
from liaison.models import Attachment, Message, Room, User

logger = logging.getLogger(__name__)

# --- types --------------------------------------------------------------------------------------

PNG, JPEG, GIF, WEBP = "image/png", "image/jpeg", "image/gif", "image/webp"
PDF, CSV, TXT, ZIP = "application/pdf", "text/csv", "text/plain", "application/zip"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

IMAGE_TYPES = frozenset({PNG, JPEG, GIF, WEBP})
ALLOWED_TYPES = frozenset({*IMAGE_TYPES, PDF, CSV, XLSX, DOCX, TXT, ZIP})
# Served under their own type (still as a download); everything else as octet-stream.
SERVED_AS_IS = frozenset({*IMAGE_TYPES, PDF})
ALLOWED_DESCRIPTION = "images (PNG, JPEG, GIF, WebP), PDF, CSV, XLSX, DOCX, plain text and ZIP"

# How much of the start of a file the sniffer sees (filetype reads 8 KiB; image headers and
# the first ZIP entries of an Office document fit comfortably).
SNIFF_BYTES = 64 * 1024
NAME_MAX_CHARS = 200
EXTENSION_MAX_CHARS = 16
THUMBNAIL_PIXELS = 320
# Files up to this size are decrypted in one piece on download; larger ones are verified in a
# first authenticated pass and then streamed in a second.
BUFFERED_DOWNLOAD_BYTES = 1024 * 1024
DOWNLOAD_PIECE_BYTES = 1024 * 1024
UNSENT_MAX_AGE = dt.timedelta(hours=24)


def _image_max_pixels() -> int:
    return int(settings.LIAISON_IMAGE_MAX_PIXELS)


def _thumbnail_source_max_bytes() -> int:
    return int(settings.LIAISON_THUMBNAIL_SOURCE_MAX_BYTES)


# --- errors -------------------------------------------------------------------------------------


class AttachmentDamaged(LiaisonError):
    """This file failed its integrity check in the store and will not be delivered."""

    code = "damaged"
    http_status = 500


class AttachmentShredded(LiaisonError):
    """Content destroyed by retention policy."""

    code = "shredded"
    http_status = 410


# --- names --------------------------------------------------------------------------------------

_WINDOWS_RESERVED = set('<>:"|?*')


def clean_filename(raw: str) -> str:
    """A file name safe to show and to offer for saving.

    Drops any path (``../../etc/passwd`` becomes ``passwd``), control and format characters
    (NUL, bidi overrides such as U+202E that disguise ``exe.pdf`` as ``fdp.exe``, zero-width
    characters), characters Windows refuses, and leading dots; keeps the extension when
    shortening to ``NAME_MAX_CHARS``.
    """
    name = unicodedata.normalize("NFC", str(raw or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if ch in _WINDOWS_RESERVED else ch
        for ch in name
        if not unicodedata.category(ch).startswith("C")
    )
    name = " ".join(name.split())  # collapse runs of white space, trim the ends
    name = name.lstrip(". ").rstrip(". ")
    if not name:
        return "file"
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > EXTENSION_MAX_CHARS:
        stem, extension = name, ""
    if len(name) > NAME_MAX_CHARS:
        suffix = f".{extension}" if extension else ""
        name = stem[: NAME_MAX_CHARS - len(suffix)].rstrip(". ") + suffix
    return name


def _name_identity(storage_name: str) -> dict[str, Any]:
    return {"blob": storage_name}


def _seal_name(room_id: int, storage_name: str, name: str) -> Any:
    return crypto_encrypt(
        room_id, name.encode(), kind=ATTACHMENT_NAME, identity=_name_identity(storage_name)
    )


def display_name(attachment: Attachment) -> str:
    """The decrypted, already sanitised file name (raises ``CryptoError``)."""
    return crypto_decrypt(
        attachment.room_id,
        key_version=attachment.key_version,
        nonce=bytes(attachment.name_nonce),
        ciphertext=bytes(attachment.name_ciphertext),
        kind=ATTACHMENT_NAME,
        identity=_name_identity(attachment.storage_name),
    ).decode()


def _name_for_payload(attachment: Attachment) -> str:
    try:
        return display_name(attachment)
    except ContentShredded:
        return ContentShredded.user_text
    except CryptoError:
        logger.warning("attachment %s: the file name failed to decrypt", attachment.pk)
        return "(name unreadable)"


# --- payloads -----------------------------------------------------------------------------------


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
        raise Invalid("The message belongs to another room.", field="attachments")
    wanted: list[int] = []
    for value in attachment_ids:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise Invalid("attachments must be a list of attachment ids.", field="attachments")
        if value in wanted:
            raise Invalid(f"Attachment {value} is listed twice.", field="attachments")
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
                f"Attachment {ident} is not one of your uploads in this room.",
                field="attachments",
            )
        if attachment.purged_at is not None:
            raise Invalid(
                f"Attachment {ident} was never sent and has been removed; upload it again.",
                field="attachments",
            )
        if attachment.message_id is not None:
            raise Invalid(
                f"Attachment {ident} is already attached to a message.", field="attachments"
            )
        claimed.append(attachment)
    for attachment in claimed:
        attachment.message = message
        attachment.save(update_fields=["message"])
    return claimed


# --- sniffing -----------------------------------------------------------------------------------

_EXECUTABLE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"\xfe\xed\xfa\xce", "a macOS program"),
    (b"\xfe\xed\xfa\xcf", "a macOS program"),
    (b"\xce\xfa\xed\xfe", "a macOS program"),
    (b"\xcf\xfa\xed\xfe", "a macOS program"),
    (b"\xca\xfe\xba\xbe", "a macOS or Java program"),
    (b"\x00asm", "a WebAssembly module"),
    (b"dex\n", "an Android program"),
    (b"#!", "a script"),
)


def _type_refused(what: str) -> Invalid:
    return Invalid(
        f"This type of file ({what}) is not accepted. Allowed: {ALLOWED_DESCRIPTION}.",
        field="file",
    )


def _ooxml_type(head: bytes) -> str | None:
    """DOCX or XLSX from the names of the first ZIP entries (``[Content_Types].xml`` plus a
    ``word/`` or ``xl/`` part), for writers whose entry order ``filetype`` does not expect."""
    if b"[Content_Types].xml" not in head:
        return None
    names: list[bytes] = []
    offset = head.find(b"PK\x03\x04")
    while offset != -1 and len(names) < 64 and offset + 30 <= len(head):
        name_length = int.from_bytes(head[offset + 26 : offset + 28], "little")
        names.append(bytes(head[offset + 30 : offset + 30 + name_length]))
        offset = head.find(b"PK\x03\x04", offset + 30 + name_length)
    if b"[Content_Types].xml" not in names:
        return None
    if any(name.startswith(b"word/") for name in names):
        return DOCX
    if any(name.startswith(b"xl/") for name in names):
        return XLSX
    return None


def sniff_type(head: bytes, *, name: str) -> str:
    """The content type of a file from its first bytes, or ``Invalid`` if it is not allowed.

    The verdict comes from the bytes alone (``filetype``'s signatures, plus our own list of
    executable signatures); text, which has no signature, is recognised as UTF-8 without NUL
    (the rest of the file is checked as it streams). The name only chooses between CSV and
    plain text, which are accepted and served alike.
    """
    for signature, what in _EXECUTABLE_SIGNATURES:
        if head.startswith(signature):
            raise Invalid(
                f"Executable files are not accepted: this file is {what}, whatever its name says.",
                field="file",
            )
    kind = filetype.guess(bytes(head)) if head else None
    if kind is not None:
        mime = PNG if kind.mime == "image/apng" else kind.mime
        if mime == ZIP:
            mime = _ooxml_type(head) or ZIP
        if mime in ALLOWED_TYPES:
            return mime
        raise _type_refused(kind.extension.upper())
    if b"\x00" in head:
        raise _type_refused("unrecognised binary data")
    return CSV if name.lower().endswith(".csv") else TXT


def _text_refused() -> Invalid:
    return Invalid(
        "This file is neither a recognised document nor UTF-8 text. Allowed: "
        f"{ALLOWED_DESCRIPTION} (save text and CSV as UTF-8).",
        field="file",
    )


# --- images -------------------------------------------------------------------------------------


def _bomb(width: int, height: int) -> Invalid:
    return Invalid(
        f"This image declares {width} × {height} pixels, more than the "
        f"{_image_max_pixels():,} allowed: it is refused (a decompression bomb, or simply too "
        "large to handle).",
        field="file",
    )


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from an image's header, without decoding its pixels; ``None`` when the
    header is not within ``data``. Over-sized declarations raise ``Invalid``."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Invalid(
                "This image declares more pixels than allowed: it is refused.", field="file"
            ) from None
        except Exception:
            return None
    if width * height > _image_max_pixels():
        raise _bomb(width, height)
    return width, height


def make_thumbnail(data: bytes) -> tuple[bytes, int, int]:
    """A small JPEG (PNG when transparent) of an image, with no metadata at all, and the
    image's displayed width and height. ``Invalid`` for a damaged or over-sized image."""
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > _image_max_pixels():
                    raise _bomb(width, height)
                if image.getexif().get(0x0112) in {5, 6, 7, 8}:  # rotated a quarter turn
                    width, height = height, width
                image.draft("RGB", (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))  # JPEG: decode small
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
                transparent = upright.mode in {"RGBA", "LA", "PA"} or (
                    upright.mode == "P" and "transparency" in upright.info
                )
                mode = "RGBA" if transparent else "RGB"
                converted = upright.convert(mode)
                # A fresh image from raw pixels carries no EXIF, GPS, ICC, XMP or comments.
                clean = Image.frombytes(mode, converted.size, converted.tobytes())
        except LiaisonError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Invalid(
                "This image declares more pixels than allowed: it is refused.", field="file"
            ) from None
        except Exception:
            raise Invalid(
                "This image could not be read: it is damaged or not really an image.",
                field="file",
            ) from None
    out = io.BytesIO()
    if transparent:
        clean.save(out, "PNG", optimize=True)
    else:
        clean.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue(), width, height


# --- uploading ----------------------------------------------------------------------------------


def max_upload_bytes() -> int:
    return int(settings.LIAISON_ATTACHMENT_MAX_BYTES)


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MiB" if size >= 1024 * 1024 else f"{size:,} bytes"


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
        # The name is sealed first and the blob under the same key version, so one
        # ``key_version`` column describes both even if the room key rotates meanwhile.
        self._sealed_name = _seal_name(room.pk, self.storage_name, self.filename)
        self.key_version = self._sealed_name.key_version
        key = roomkeys.data_key(room.pk, self.key_version)
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
            raise Invalid(f"This upload is {self.state}, not {state}.")

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
                f"The file is larger than the {_mib(self.max_bytes)} limit.", field="file"
            )
        if self.size > self.quota_left:
            raise TooLarge(
                "The file does not fit in this room's remaining storage quota "
                f"({_mib(max(self.quota_left, 0))} left).",
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
        if self.content_type in {CSV, TXT}:
            self._text = codecs.getincrementaldecoder("utf-8")("strict")
            self._check_text(head, final=final)
        elif self.content_type in IMAGE_TYPES:
            size = _image_size(head)
            if size is not None:
                self.width, self.height = size
        self._head = bytearray()

    def _check_text(self, data: bytes, *, final: bool) -> None:
        assert self._text is not None
        if b"\x00" in data:
            raise _text_refused()
        try:
            self._text.decode(data, final)
        except UnicodeDecodeError:
            raise _text_refused() from None

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
        except BaseException as error:
            self._fail(error)
            raise
        self.state = "complete"

    def _thumbnail(self) -> None:
        if self.size > _thumbnail_source_max_bytes():
            if self.width is None:  # too large to decode here, and its header was unreadable
                raise Invalid(
                    "This image's dimensions could not be read from its header.", field="file"
                )
            return  # accepted without a preview
        plaintext = _read_verified(self.room.pk, self.key_version, self.storage_name, self.size)
        thumbnail, self.width, self.height = make_thumbnail(plaintext)
        del plaintext
        name = storage.new_blob_name()
        key = roomkeys.data_key(self.room.pk, self.key_version)
        encryptor = StreamEncryptor(key, context=self._context(ATTACHMENT_THUMBNAIL, name))
        self.thumbnail_name = name
        storage.write_blob(name, encryptor.update(thumbnail) + encryptor.finalize())

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
                quota = int(settings.LIAISON_ROOM_QUOTA_BYTES)
                if room_usage(self.room.pk) + self.size > quota:
                    raise TooLarge(
                        f"This room's storage quota ({_mib(quota)}) would be exceeded.",
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
    quota_left = int(settings.LIAISON_ROOM_QUOTA_BYTES) - room_usage(access.room.pk)
    refusal = None
    if at_least > limit:
        refusal = TooLarge(f"The file is larger than the {_mib(limit)} limit.", field="file")
    elif quota_left <= 0:
        refusal = TooLarge("This room's storage quota is used up.", field="file")
    elif at_least > quota_left:
        refusal = TooLarge(
            "The file does not fit in this room's remaining storage quota "
            f"({_mib(quota_left)} left).",
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


# --- downloading --------------------------------------------------------------------------------


def _blob_key(room_id: int, key_version: int) -> bytes:
    try:
        return roomkeys.data_key(room_id, key_version)
    except ContentShredded:
        raise AttachmentShredded() from None


def _decrypted_pieces(
    room_id: int, key_version: int, storage_name: str, kind: str = ATTACHMENT_BLOB
) -> Iterator[bytes]:
    key = _blob_key(room_id, key_version)
    context = stream_context(
        kind, room_id=room_id, key_version=key_version, storage_name=storage_name
    )
    with storage.open_blob(storage_name) as handle:
        yield from decrypt_stream(key, handle, context=context)


def _read_verified(room_id: int, key_version: int, storage_name: str, size: int) -> bytes:
    data = b"".join(_decrypted_pieces(room_id, key_version, storage_name))
    if len(data) != size:
        raise TamperedError(f"blob {storage_name} holds {len(data)} bytes, not {size}")
    return data


def _verify(attachment: Attachment) -> None:
    """A full authenticated pass over the blob, also matching the recorded size and SHA-256."""
    digest, size = hashlib.sha256(), 0
    for piece in _decrypted_pieces(
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


def open_download(
    *, user: User, attachment_id: object, ip: str | None = None
) -> tuple[Attachment, Iterator[bytes], str]:
    """The attachment, its plaintext as an iterator of pieces, and its display name.

    Nothing unauthenticated is ever handed out: a file up to ``BUFFERED_DOWNLOAD_BYTES`` is
    decrypted whole before the first byte is returned; a larger one gets a full authenticated
    pass (which also checks the recorded size and SHA-256) before it is streamed in a second
    pass. Streamed decryption alone would only notice damage or truncation when it reaches it,
    after part of the file had gone out under a success status. If the blob changes between
    the two passes, the stream stops at the bad chunk and the connection ends short of
    Content-Length, which every client treats as a failed transfer. Each download is audited,
    auditors' included.
    """
    attachment, room_access = access_attachment(user, attachment_id)
    try:
        name = display_name(attachment)
        if attachment.size <= BUFFERED_DOWNLOAD_BYTES:
            data = _read_verified(
                attachment.room_id, attachment.key_version, attachment.storage_name, attachment.size
            )
            if hashlib.sha256(data).hexdigest() != attachment.sha256:
                raise TamperedError(f"attachment {attachment.pk} does not match its digest")
            pieces: Iterator[bytes] = iter([data] if data else [])
        else:
            _verify(attachment)
            pieces = _regrouped(
                _decrypted_pieces(
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
    if not attachment.thumbnail_storage_name:
        raise NotFound("This attachment has no thumbnail.")
    try:
        data = b"".join(
            _decrypted_pieces(
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
    return data, PNG if data.startswith(b"\x89PNG") else JPEG


def served_content_type(attachment: Attachment) -> str:
    """Images and PDF keep their checked type (always sent as a download); anything else is
    ``application/octet-stream`` so no browser ever renders it."""
    return (
        attachment.content_type
        if attachment.content_type in SERVED_AS_IS
        else ("application/octet-stream")
    )


# --- purging ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    purged: list[int]
    bytes_freed: int
    orphans_removed: list[str]


def purge_unsent(*, older_than: dt.timedelta = UNSENT_MAX_AGE) -> PurgeResult:
    """Remove uploads never attached to a message within ``older_than``: the row is marked
    purged (with its audit event) first, then the blobs are deleted. Also sweeps blobs that no
    row names (left by a process that died mid-upload) and are as old."""
    cutoff = timezone.now() - older_than
    purged: list[int] = []
    freed = 0
    candidates = list(
        Attachment.objects.filter(
            message__isnull=True, purged_at__isnull=True, created_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for ident in candidates:
        with transaction.atomic():
            attachment = (
                Attachment.objects.select_for_update()
                .select_related("room__exercise")
                .filter(pk=ident, message__isnull=True, purged_at__isnull=True)
                .first()
            )
            if attachment is None:  # claimed by a message meanwhile
                continue
            attachment.purged_at = timezone.now()
            attachment.save(update_fields=["purged_at"])
            audit.record(
                actor=None,
                actor_label="system:purge_uploads",
                action="attachment.purged",
                target=attachment,
                exercise=attachment.room.exercise,
                room=attachment.room_id,
                size=attachment.size,
                uploader=attachment.uploader_id,
                age_hours=round((timezone.now() - attachment.created_at).total_seconds() / 3600),
            )
        storage.delete_blob(attachment.storage_name)
        storage.delete_blob(attachment.thumbnail_storage_name)
        purged.append(attachment.pk)
        freed += attachment.size
    referenced = set()
    for name, thumbnail in Attachment.objects.filter(purged_at__isnull=True).values_list(
        "storage_name", "thumbnail_storage_name"
    ):
        referenced.add(name)
        if thumbnail:
            referenced.add(thumbnail)
    orphans = storage.sweep_orphans(referenced=referenced, older_than=cutoff)
    return PurgeResult(purged=purged, bytes_freed=freed, orphans_removed=orphans)
