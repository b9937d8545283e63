"""Every outgoing JSON shape: messages, people, attachments, exercises with their rooms,
members and invitations, and what the provisioning commands print with ``--json``.

Kept apart from the services so that readers (``selectors``, views, the real-time layer) can
shape what they return without importing any write path. Every time leaves as ``iso_utc``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch

from liaison import audit, crypto
from liaison.crypto import records
from liaison.models import (
    Acknowledgement,
    AckRequest,
    Attachment,
    Exercise,
    Invitation,
    Membership,
    Mention,
    Message,
    MessageRevision,
    Reaction,
    Room,
    User,
)

if TYPE_CHECKING:
    from liaison.selectors import MessagePage

logger = logging.getLogger(__name__)


# --- time ----------------------------------------------------------------------------------------


def iso_utc(moment: dt.datetime | None, *, timespec: str = "auto") -> str | None:
    """ISO 8601 in UTC with a ``Z`` (``2026-07-01T08:00:00Z``), or None.

    Message times pass ``timespec="milliseconds"``: clients order and compare them below the
    second, so they always carry three decimals.
    """
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


# --- people --------------------------------------------------------------------------------------


def person_payload(user: User) -> dict[str, Any]:
    """How a person appears in frames: as a sender, a typist, a reader."""
    return {
        "id": user.pk,
        "display_name": user.display_name,
        "agency": user.agency.name if user.agency_id else None,
        "time_zone": user.time_zone or "UTC",
    }


def account_payload(user: User) -> dict[str, Any]:
    """The signed-in account, as ``/api/v1/session`` describes it to its owner."""
    agency = user.agency
    return {
        "id": user.pk,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "agency": ({"id": agency.pk, "code": agency.code, "name": agency.name} if agency else None),
    }


# --- attachments ---------------------------------------------------------------------------------


def _attachment_name(attachment: Attachment) -> str:
    """The file name for display; a name that no longer opens still yields a payload, so one
    bad attachment never breaks a whole page of history."""
    try:
        return records.open_attachment_name(attachment)
    except crypto.ContentShredded:
        return crypto.ContentShredded.user_text
    except crypto.CryptoError:
        logger.warning("attachment %s: the file name failed to decrypt", attachment.pk)
        return "(name unreadable)"


def attachment_payload(attachment: Attachment) -> dict[str, Any]:
    """How an attachment appears in a message object and in the upload response."""
    has_thumbnail = bool(attachment.thumbnail_storage_name)
    return {
        "id": attachment.pk,
        "name": _attachment_name(attachment),
        "size": attachment.size,
        "content_type": attachment.content_type,
        "sha256": attachment.sha256,
        "has_thumbnail": has_thumbnail,
        "width": attachment.width,
        "height": attachment.height,
        "marking": attachment.marking or None,
        "download_url": f"/api/v1/attachments/{attachment.pk}",
        "thumbnail_url": f"/api/v1/attachments/{attachment.pk}/thumbnail"
        if has_thumbnail
        else None,
    }


def attachment_payloads_for_messages(
    message_ids: Iterable[int],
) -> dict[int, list[dict[str, Any]]]:
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


# --- messages ------------------------------------------------------------------------------------


def _message_time(moment: dt.datetime | None) -> str | None:
    return iso_utc(moment, timespec="milliseconds")


def _revisions(message: Message) -> list[MessageRevision]:
    return sorted(message.revisions.all(), key=lambda revision: revision.number)


def message_payload(
    message: Message,
    *,
    for_auditor: bool = False,
    attachments: list[dict[str, Any]] | None = None,
    body: str | None = None,
    extras: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The message object of the protocol (docs/api/websocket.md).

    Members never see a deleted body; auditors see it along with every revision. A shredded
    room shows the retention notice, a row that fails to authenticate shows no text at all.
    Pass ``body`` when the caller holds the current plaintext (saves a decryption), and
    ``extras`` (``message_extras``) when it holds the reply, mentions and acknowledgements.
    """
    deleted = message.deleted_at is not None
    payload: dict[str, Any] = {
        "seq": message.seq,
        "room": message.room_id,
        "kind": message.kind,
        "body": None,
        "sender": person_payload(message.sender),
        "created_at": _message_time(message.created_at),
        "edited_at": _message_time(message.edited_at),
        "deleted": deleted,
        "reply_to": message.reply_to_seq,
        "attachments": attachments
        if attachments is not None
        else attachment_payloads_for_messages([message.pk]).get(message.pk, []),
        "shredded": False,
        **(extras if extras is not None else message_extras([message])[message.pk]),
    }
    if deleted and not for_auditor:
        return payload
    try:
        revisions = _revisions(message) if (for_auditor or body is None) else []
        if body is None:
            body = (
                records.open_revision(revisions[-1], message)
                if revisions
                else records.open_message_body(message)
            )
        payload["body"] = body
        if for_auditor:
            payload["deleted_by"] = message.deleted_by_id
            payload["revisions"] = [
                {
                    "number": 0,
                    "body": records.open_message_body(message),
                    "created_at": _message_time(message.created_at),
                },
                *(
                    {
                        "number": revision.number,
                        "body": records.open_revision(revision, message),
                        "created_at": _message_time(revision.created_at),
                    }
                    for revision in revisions
                ),
            ]
    except crypto.ContentShredded:
        payload.update(body=crypto.ContentShredded.user_text, shredded=True)
        payload.pop("revisions", None)
    except crypto.TamperedError:
        logger.warning("message %s (room %s) failed to authenticate", message.pk, message.room_id)
        _record_integrity_failure(message)
        payload.update(body=None, error="integrity")
        payload.pop("revisions", None)
    except crypto.CryptoError:
        logger.exception("message %s (room %s) cannot be opened", message.pk, message.room_id)
        payload.update(body=None, error="unavailable")
        payload.pop("revisions", None)
    return payload


def _record_integrity_failure(message: Message) -> None:
    """A stored message that no longer authenticates was altered or moved: an audit event,
    kept even when the read that found it happens inside a transaction (after it commits)."""
    room = message.room
    audit.record_independently(
        actor=None,
        actor_label="system:integrity",
        action="message.integrity_failed",
        target=message,
        exercise=room.exercise,
        room=room.pk,
        seq=message.seq,
        key_version=message.key_version,
    )


def message_payloads(messages: Sequence[Message], *, for_auditor: bool = False) -> list[dict]:
    """Message objects for a page of messages (loaded with ``with_payload_relations``)."""
    attachments = attachment_payloads_for_messages([message.pk for message in messages])
    extras = message_extras(messages)
    return [
        message_payload(
            message,
            for_auditor=for_auditor,
            attachments=attachments.get(message.pk, []),
            extras=extras[message.pk],
        )
        for message in messages
    ]


def with_payload_relations(queryset: Any) -> Any:
    """What ``message_payload`` reads, fetched up front."""
    return queryset.select_related("sender", "sender__agency").prefetch_related("revisions")


def message_page_payload(page: MessagePage) -> dict[str, Any]:
    """A page of history or of what was missed, as ``GET .../messages`` answers it."""
    return {"messages": page.messages, "last_seq": page.last_seq, "has_more": page.has_more}


def unread_payload(counts: dict[int, int]) -> dict[str, Any]:
    """Unread messages per room (JSON object keys are strings)."""
    return {"rooms": {str(room_id): count for room_id, count in counts.items()}}


# --- exercises, rooms, members, invitations (the exercises API) --------------------------------


def room_payload(room: Room) -> dict[str, Any]:
    return {"id": room.pk, "name": room.name, "title": room.title, "topic": room.topic}


def exercise_payload(exercise: Exercise, *, role: str | None = None) -> dict[str, Any]:
    """An exercise with its agencies and rooms; ``role`` is the reader's own group role."""
    return {
        "id": exercise.pk,
        "code": exercise.code,
        "title": exercise.title,
        "commodity_focus": exercise.commodity_focus,
        "hs_codes": list(exercise.hs_codes),
        "lanes": list(exercise.lanes),
        "agencies": [
            {"code": agency.code, "name": agency.name} for agency in exercise.agencies.all()
        ],
        "starts_at": iso_utc(exercise.starts_at),
        "ends_at": iso_utc(exercise.ends_at),
        "status": exercise.status,
        "retention_days": exercise.retention_days,
        "history_visibility": exercise.history_visibility,
        "rooms": [room_payload(room) for room in exercise.rooms.all()],
        "my_role": role,
    }


def membership_payload(membership: Membership, *, with_email: bool) -> dict[str, Any]:
    """A member; the e-mail address only for readers who may see it."""
    user = membership.user
    body = {
        "id": membership.pk,
        "user_id": user.pk,
        "display_name": user.display_name,
        "agency": user.agency.code if user.agency else None,
        "role": membership.role,
        "created_at": iso_utc(membership.created_at),
        "removed_at": iso_utc(membership.removed_at),
    }
    if with_email:
        body["email"] = user.email
    return body


def invitation_payload(invitation: Invitation) -> dict[str, Any]:
    """An invitation as its managers see it (never the token: only its hash is stored)."""
    return {
        "id": invitation.pk,
        "exercise_id": invitation.exercise_id,
        "email": invitation.email,
        "agency": invitation.agency.code,
        "role": invitation.role,
        "state": invitation.state,
        "created_at": iso_utc(invitation.created_at),
        "created_by": invitation.created_by.email,
        "expires_at": iso_utc(invitation.expires_at),
        "accepted_at": iso_utc(invitation.accepted_at),
        "revoked_at": iso_utc(invitation.revoked_at),
    }


# --- what a message asks of its readers: replies, mentions, acknowledgements, markings ---------

# How much of a replied-to message a reply quotes.
REPLY_EXCERPT_CHARS = 160


def excerpt(text: str, limit: int = REPLY_EXCERPT_CHARS) -> str:
    """The start of a text on one line, cut at ``limit`` characters with an ellipsis."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def reply_payload(parent: Message | None, seq: int) -> dict[str, Any]:
    """The quoted parent of a reply: who wrote it and the start of its current text (none for a
    deleted, destroyed or unreadable parent, or one not found)."""
    if parent is None:
        return {"seq": seq, "sender": None, "excerpt": None, "deleted": False}
    quoted: str | None = None
    if parent.deleted_at is None:
        try:
            revisions = _revisions(parent)
            text = (
                records.open_revision(revisions[-1], parent)
                if revisions
                else records.open_message_body(parent)
            )
            quoted = excerpt(text)
        except crypto.ContentShredded:
            quoted = crypto.ContentShredded.user_text
        except crypto.CryptoError:
            quoted = None
    return {
        "seq": seq,
        "sender": person_payload(parent.sender),
        "excerpt": quoted,
        "deleted": parent.deleted_at is not None,
    }


def hidden_reply_payload(seq: int) -> dict[str, Any]:
    """A reply's parent that the reader may not see (written before they joined an exercise
    whose history starts at joining): its seq, nothing of it."""
    return {"seq": seq, "sender": None, "excerpt": None, "deleted": False, "hidden": True}


def ack_payload(request: AckRequest, rows: Iterable[Acknowledgement]) -> dict[str, Any]:
    """An acknowledgement request: whom it asked (``requested``: agencies and people named,
    both empty for everyone who may post), by when, and each addressee with the time they
    acknowledged (``null`` until they do)."""
    addressed = request.addressed or {}
    return {
        "requested": {
            "agencies": list(addressed.get("agencies", [])),
            "users": list(addressed.get("users", [])),
        },
        "created_at": _message_time(request.created_at),
        "due_at": _message_time(request.due_at),
        "by": [
            {"user": person_payload(row.user), "at": _message_time(row.acknowledged_at)}
            for row in rows
        ],
    }


def message_extras(messages: Sequence[Message]) -> dict[int, dict[str, Any]]:
    """Per message id: ``reply`` (the quoted parent, or null), ``mentions`` (the sender's
    declaration and ``all``, every person it reaches; null when none), ``ack`` (the
    acknowledgement request, or null) and ``marking``. A few queries for a whole page."""
    result: dict[int, dict[str, Any]] = {
        message.pk: {
            "reply": None,
            "mentions": None,
            "ack": None,
            "marking": message.marking or None,
            "reactions": {},
        }
        for message in messages
    }
    if not messages:
        return result
    wanted = {(m.room_id, m.reply_to_seq) for m in messages if m.reply_to_seq}
    if wanted:
        parents: dict[tuple[int, int], Message] = {}
        for room_id in {room_id for room_id, _ in wanted}:
            seqs = [seq for room, seq in wanted if room == room_id]
            rows = with_payload_relations(Message.objects.filter(room_id=room_id, seq__in=seqs))
            parents.update({(row.room_id, row.seq): row for row in rows})
        for message in messages:
            if message.reply_to_seq:
                parent = parents.get((message.room_id, message.reply_to_seq))
                result[message.pk]["reply"] = reply_payload(parent, message.reply_to_seq)
    mentioning = [message.pk for message in messages if message.mentions]
    if mentioning:
        reached: dict[int, list[int]] = {}
        rows = Mention.objects.filter(message_id__in=mentioning).order_by("user_id")
        for message_id, user_id in rows.values_list("message_id", "user_id"):
            reached.setdefault(message_id, []).append(user_id)
        for message in messages:
            if message.mentions:
                result[message.pk]["mentions"] = mentions_payload(
                    message.mentions, reached.get(message.pk, [])
                )
    requests = AckRequest.objects.filter(message_id__in=list(result)).prefetch_related(
        ack_rows_prefetch()
    )
    for request in requests:
        result[request.message_id]["ack"] = ack_payload(request, request.rows.all())
    for message_id, reactions in reactions_of(list(result)).items():
        result[message_id]["reactions"] = reactions
    return result


def reactions_of(message_ids: list[int]) -> dict[int, dict[str, list[int]]]:
    """Per message id: each reaction given and the ids of who gave it, in the order given."""
    result: dict[int, dict[str, list[int]]] = {}
    rows = Reaction.objects.filter(message_id__in=message_ids).order_by("created_at", "pk")
    for message_id, emoji, user_id in rows.values_list("message_id", "emoji", "user_id"):
        result.setdefault(message_id, {}).setdefault(emoji, []).append(user_id)
    return result


def mentions_payload(declared: dict[str, Any], reached: Iterable[int]) -> dict[str, Any]:
    return {
        "users": list(declared.get("users", [])),
        "agencies": list(declared.get("agencies", [])),
        "room": bool(declared.get("room", False)),
        "all": sorted(set(reached)),
    }


def ack_rows_prefetch() -> Prefetch:
    """An acknowledgement request's addressees, by name, with their people loaded."""
    return Prefetch(
        "rows",
        queryset=Acknowledgement.objects.select_related("user", "user__agency").order_by(
            "user__display_name", "user_id"
        ),
    )
