"""Readable transcripts of a room: every message decrypted, with revisions, deletions and
shredded content marked, and each message's chain link.

Behind the auditors' transcript pages and search (``audit.workspace``) and the signed export's
``transcript.jsonl`` (``audit.export``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any

from liaison.crypto import records
from liaison.crypto.errors import ContentShredded, CryptoError
from liaison.models import (
    Acknowledgement,
    Attachment,
    Mention,
    Message,
    MessageRevision,
    Room,
    User,
)

CHUNK = 500

CONTENT_OK = "ok"
CONTENT_SHREDDED = "shredded"
CONTENT_UNREADABLE = "unreadable"


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds") if value else None


def _open(opener: Any, *args: Any) -> tuple[str | None, str]:
    """Decrypted text and a content mark; shredded or unreadable content is marked, not raised."""
    try:
        return opener(*args), CONTENT_OK
    except ContentShredded:
        return None, CONTENT_SHREDDED
    except CryptoError:
        return None, CONTENT_UNREADABLE


class People:
    """Senders looked up once each."""

    def __init__(self) -> None:
        self._known: dict[int, dict[str, Any]] = {}

    def get(self, user_id: int | None) -> dict[str, Any] | None:
        if user_id is None:
            return None
        if user_id not in self._known:
            user = User.objects.select_related("agency").filter(pk=user_id).first()
            self._known[user_id] = {
                "id": user_id,
                "email": user.email if user else "",
                "display_name": user.display_name if user else "",
                "agency": user.agency.name if user and user.agency else "",
            }
        return self._known[user_id]


def iter_transcript(
    room: Room,
    *,
    after_seq: int = 0,
    upto_seq: int | None = None,
    limit: int | None = None,
    people: People | None = None,
) -> Iterator[dict[str, Any]]:
    """The room's messages in ``seq`` order, decrypted, as plain JSON-able dicts.

    Streams in chunks (revisions and attachments fetched per chunk), so a long room never sits
    in memory. Each entry carries its chain link so an outside verifier can re-walk the chain.
    """
    people = people or People()
    cursor, produced = after_seq, 0
    while limit is None or produced < limit:
        size = CHUNK if limit is None else min(CHUNK, limit - produced)
        query = Message.objects.filter(room_id=room.pk, seq__gt=cursor)
        if upto_seq is not None:
            query = query.filter(seq__lte=upto_seq)
        chunk = list(query.order_by("seq")[:size])
        if not chunk:
            return
        ids = [m.pk for m in chunk]
        revisions: dict[int, list[MessageRevision]] = {}
        for revision in MessageRevision.objects.filter(message_id__in=ids).order_by(
            "message_id", "number"
        ):
            revisions.setdefault(revision.message_id, []).append(revision)
        attachments: dict[int, list[dict[str, Any]]] = {}
        for attachment in Attachment.objects.filter(message_id__in=ids).order_by("pk"):
            name, _mark = _open(records.open_attachment_name, attachment)
            attachments.setdefault(attachment.message_id, []).append(
                {
                    "id": attachment.pk,
                    "name": name,
                    "size": attachment.size,
                    "sha256": attachment.sha256,
                    "content_type": attachment.content_type,
                    "marking": attachment.marking,
                    "purged": attachment.purged_at is not None,
                }
            )
        asks = _asks(chunk, people)
        for message in chunk:
            entry = message_entry(
                message,
                revisions.get(message.pk, []),
                attachments.get(message.pk, []),
                people,
            )
            entry.update(asks.get(message.pk, {}))
            yield entry
            cursor = message.seq
            produced += 1


def _asks(chunk: list[Message], people: People) -> dict[int, dict[str, Any]]:
    """Per message id: its marking, whom it mentioned (user ids) and, for an acknowledgement
    request, each addressee with the time they acknowledged."""
    ids = [message.pk for message in chunk]
    result: dict[int, dict[str, Any]] = {
        message.pk: {"marking": message.marking, "mentioned": [], "acknowledgements": None}
        for message in chunk
    }
    for message_id, user_id in (
        Mention.objects.filter(message_id__in=ids)
        .order_by("message_id", "user_id")
        .values_list("message_id", "user_id")
    ):
        result[message_id]["mentioned"].append(user_id)
    for row in (
        Acknowledgement.objects.filter(request__message_id__in=ids)
        .select_related("request")
        .order_by("request_id", "pk")
    ):
        entry = result[row.request.message_id]
        if entry["acknowledgements"] is None:
            entry["acknowledgements"] = {"due_at": iso(row.request.due_at), "by": []}
        entry["acknowledgements"]["by"].append(
            {"user": people.get(row.user_id), "at": iso(row.acknowledged_at)}
        )
    return result


def message_entry(
    message: Message,
    revisions: list[MessageRevision],
    attachments: list[dict[str, Any]],
    people: People,
) -> dict[str, Any]:
    body, content = _open(records.open_message_body, message)
    history = []
    for revision in revisions:
        text, mark = _open(records.open_revision, revision, message)
        history.append(
            {
                "number": revision.number,
                "created_at": iso(revision.created_at),
                "body": text,
                "content": mark,
            }
        )
    current = history[-1]["body"] if history else body
    return {
        "type": "message",
        "room": message.room_id,
        "seq": message.seq,
        "kind": message.kind,
        "created_at": iso(message.created_at),
        "sender": people.get(message.sender_id),
        "reply_to_seq": message.reply_to_seq,
        "body": body,
        "content": content,
        "current_body": current,
        "edited": bool(history) or message.edited_at is not None,
        "edited_at": iso(message.edited_at),
        "revisions": history,
        "deleted": message.deleted_at is not None,
        "deleted_at": iso(message.deleted_at),
        "deleted_by": people.get(message.deleted_by_id),
        "attachments": attachments,
        "key_version": message.key_version,
        "body_digest": hashlib.sha256(bytes(message.nonce) + bytes(message.ciphertext)).hexdigest(),
        "link_version": message.link_version,
        "marking": message.marking,
        "mentions": message.mentions,
        "prev_hash": message.prev_hash,
        "chain_hash": message.chain_hash,
    }
