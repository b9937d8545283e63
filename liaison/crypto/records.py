"""How each kind of record is sealed: the one place that names kinds and identities.

Messages are bound to (room, seq, sender); revisions add their number; attachment names and
blobs are bound to the attachment's random storage name, and so are the exchange's blobs (a data
set's file, its checked rows, a comparison's result) and a data set's file name.
"""

from __future__ import annotations

from typing import Any

from liaison.crypto.aead import Sealed, decrypt, encrypt

MESSAGE = "message"
MESSAGE_REVISION = "message.revision"
ATTACHMENT_NAME = "attachment.name"
ATTACHMENT_BLOB = "attachment.blob"
ATTACHMENT_THUMBNAIL = "attachment.thumbnail"
EXCHANGE_FILE = "exchange.file"
EXCHANGE_ROWS = "exchange.rows"
EXCHANGE_RESULT = "exchange.result"
EXCHANGE_NAME = "exchange.name"


def message_identity(seq: int, sender_id: int) -> dict[str, Any]:
    return {"seq": seq, "sender": sender_id}


def seal_message_body(
    *, room_id: int, seq: int, sender_id: int, body: str, key_version: int | None = None
) -> Sealed:
    """``key_version``: the room's newest key, when the caller has just read it (``None``: look
    it up, creating the first)."""
    return encrypt(
        room_id,
        body.encode(),
        kind=MESSAGE,
        identity=message_identity(seq, sender_id),
        key_version=key_version,
    )


def open_message_body(message: Any) -> str:
    """Plaintext body of a ``Message`` row (raises TamperedError / ContentShredded)."""
    return decrypt(
        message.room_id,
        key_version=message.key_version,
        nonce=message.nonce,
        ciphertext=message.ciphertext,
        kind=MESSAGE,
        identity=message_identity(message.seq, message.sender_id),
    ).decode()


def seal_revision(*, room_id: int, seq: int, sender_id: int, number: int, body: str) -> Sealed:
    identity = {**message_identity(seq, sender_id), "revision": number}
    return encrypt(room_id, body.encode(), kind=MESSAGE_REVISION, identity=identity)


def open_revision(revision: Any, message: Any) -> str:
    identity = {**message_identity(message.seq, message.sender_id), "revision": revision.number}
    return decrypt(
        message.room_id,
        key_version=revision.key_version,
        nonce=revision.nonce,
        ciphertext=revision.ciphertext,
        kind=MESSAGE_REVISION,
        identity=identity,
    ).decode()


def attachment_name_identity(storage_name: str) -> dict[str, Any]:
    return {"blob": storage_name}


def seal_attachment_name(*, room_id: int, key_version: int, storage_name: str, name: str) -> Sealed:
    """An attachment's file name, sealed under the same key version as its blob."""
    return encrypt(
        room_id,
        name.encode(),
        kind=ATTACHMENT_NAME,
        identity=attachment_name_identity(storage_name),
        key_version=key_version,
    )


def open_attachment_name(attachment: Any) -> str:
    """Plaintext file name of an ``Attachment`` row (raises TamperedError / ContentShredded)."""
    return decrypt(
        attachment.room_id,
        key_version=attachment.key_version,
        nonce=attachment.name_nonce,
        ciphertext=attachment.name_ciphertext,
        kind=ATTACHMENT_NAME,
        identity=attachment_name_identity(attachment.storage_name),
    ).decode()


def stream_context(kind: str, *, room_id: int, key_version: int, storage_name: str) -> bytes:
    """Associated context for a streamed blob (file or thumbnail)."""
    return f"{kind}|room={room_id}|key_version={key_version}|blob={storage_name}".encode()


def seal_dataset_name(*, room_id: int, key_version: int, storage_name: str, name: str) -> Sealed:
    """A data set's file name, sealed under the same key version as its file."""
    return encrypt(
        room_id,
        name.encode(),
        kind=EXCHANGE_NAME,
        identity={"blob": storage_name},
        key_version=key_version,
    )


def open_dataset_name(dataset: Any) -> str:
    """Plaintext file name of a ``Dataset`` row (raises TamperedError / ContentShredded)."""
    return decrypt(
        dataset.key_room_id,
        key_version=dataset.key_version,
        nonce=dataset.name_nonce,
        ciphertext=dataset.name_ciphertext,
        kind=EXCHANGE_NAME,
        identity={"blob": dataset.storage_name},
    ).decode()


AUDIT_EXPORT = "audit.export"


def export_key_context(*, export_id: int, storage_name: str) -> bytes:
    """What an auditor export's own file key is wrapped against (the key belongs to one file)."""
    return f"liaison/export-key/v1|export={export_id}|blob={storage_name}".encode()


def export_stream_context(*, export_id: int, storage_name: str) -> bytes:
    """Associated context of an auditor export's encrypted file."""
    return f"{AUDIT_EXPORT}|export={export_id}|blob={storage_name}".encode()
