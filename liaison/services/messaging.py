"""Messages: sending (edits, deletions and read markers are in ``message_changes``, the rules
both share in ``message_rules``; both are re-exported here). The message object clients see
is ``payloads.message_payload``.

Every write locks what it changes and publishes its real-time event after commit. A new
message's record is its link in the room's hash chain, in the same transaction (edits and
deletions also get an audit event, ids only, never text). Bodies are sealed before they touch
the database; the chain link covers the ciphertext, so it verifies without the text and after
crypto-shredding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from liaison import access, audit, crypto, events, payloads
from liaison.crypto import records
from liaison.errors import GrantOutdated, Invalid, PermissionDenied, RoomClosed
from liaison.models import (
    Attachment,
    HistoryVisibility,
    Membership,
    Mention,
    Message,
    MessageKind,
    Role,
    Room,
    User,
)
from liaison.payloads import (
    attachment_payload,
    hidden_reply_payload,
    message_payload,
)
from liaison.services import acknowledgements, attention, markings, room_append
from liaison.services import attachments as attachments_service
from liaison.services import mentions as mentioning
from liaison.services.message_changes import (  # noqa: F401 - part of the messaging API
    delete_message,
    edit_message,
    mark_read,
)
from liaison.services.message_rules import (
    clean_attachment_ids,
    clean_body,
    clean_client_id,
    clean_kind,
    require_still_member,
)

# The sender of Liaison's own notices (an exercise opening, closing, archived): an account that
# can never sign in and belongs to no exercise.
SYSTEM_SENDER_EMAIL = "system@liaison.invalid"
SYSTEM_SENDER_NAME = "Liaison"


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    message: Message
    created: bool  # False: a resent client_id, answered with the original message

    @property
    def seq(self) -> int:
        return self.message.seq


def _existing(room_id: int, sender: User, client_id: str) -> Message | None:
    return (
        Message.objects.filter(room_id=room_id, sender=sender, client_id=client_id)
        .select_related("sender", "sender__agency")
        .first()
    )


def send_message(
    *,
    sender: User,
    room_id: int,
    client_id: str,
    body: str,
    kind: str = MessageKind.TEXT,
    reply_to: int | None = None,
    attachment_ids: Iterable[int] = (),
    posting_epoch: int | None = None,
    mentions: dict[str, Any] | None = None,
    ack: dict[str, Any] | None = None,
    marking: str | None = None,
) -> SendResult:
    """Store a message with the room's next ``seq``, or return the original for a resent
    ``client_id`` (no duplicate, no second audit row, no second event).

    ``mentions`` and ``ack`` are ``schemas.MentionSpec`` / ``schemas.AckSpec`` as dicts: whom
    the message mentions and whom it asks to acknowledge it (current members only);
    ``marking`` is one of the exercise's handling markings (its default when omitted).

    ``posting_epoch`` is the room's access epoch at which the caller (a socket's grant) last
    verified that ``sender`` may post here. Every change bearing on that right moves the epoch
    under the room's row lock, so while it has not moved the check is not repeated.
    """
    client_id = clean_client_id(client_id)
    attachment_list = clean_attachment_ids(attachment_ids)
    room_access: access.RoomAccess | None = None
    if posting_epoch is None:
        room_access = access.access_room(sender, room_id)
        room_id = room_access.room.pk
        try:
            access.require_can_post(room_access)
        except (PermissionDenied, RoomClosed):
            # A resend of a message stored while posting was open still gets its answer.
            existing = _existing(room_id, sender, client_id)
            if existing is None:
                raise
            return SendResult(existing, created=False)
    text = clean_body(body, allow_empty=bool(attachment_list))
    kind = clean_kind(kind, has_attachments=bool(attachment_list))
    if reply_to is not None and (
        isinstance(reply_to, bool) or not isinstance(reply_to, int) or reply_to <= 0
    ):
        raise Invalid(_("reply_to must be the seq of a message in this room."), field="reply_to")
    try:
        return _store_message(
            room_id=room_id,
            room_access=room_access,
            posting_epoch=posting_epoch,
            sender=sender,
            client_id=client_id,
            text=text,
            kind=kind,
            reply_to=reply_to,
            attachment_ids=attachment_list,
            asks=Asks(mentions=mentions, ack=ack, marking=marking),
        )
    except IntegrityError:
        # This client_id is already stored (a resend, or a race with another connection that
        # won): the unique constraint refused the copy; answer with the original.
        existing = _existing(room_id, sender, client_id)
        if existing is None:
            raise
        return SendResult(existing, created=False)
    except (PermissionDenied, RoomClosed):
        existing = _existing(room_id, sender, client_id) if posting_epoch is not None else None
        if existing is None:
            raise
        return SendResult(existing, created=False)


def _store_message(
    *,
    room_id: int,
    room_access: access.RoomAccess | None,
    posting_epoch: int | None,
    sender: User,
    client_id: str,
    text: str,
    kind: str,
    reply_to: int | None,
    attachment_ids: list[int],
    notice: bool = False,
    asks: Asks | None = None,
) -> SendResult:
    """``notice``: Liaison's own notice (``post_notice``), which no posting rule applies to and
    whose caller records the audit event of what it announces."""
    with transaction.atomic():
        # The room row is the per-room allocation lock: seq and chain head move together.
        # ``of=self``: the exercise row is read, not locked, so rooms do not queue on it.
        # ``of`` the room only: the exercise row is read, not locked, so rooms do not queue on it.
        locked = room_append.lock_room_for_append(room_id)
        if locked is None:
            raise access.AccessDenied(target_type="room", target_id=str(room_id))
        room = locked.room
        if not notice and room_access is None and room.access_epoch != posting_epoch:
            # Someone's right here narrowed since the caller's grant: it must read it again.
            raise GrantOutdated()
        if room_access is not None:
            require_still_member(room_access)
            access.require_can_post(access.RoomAccess(room=room, membership=room_access.membership))
        # A client_id used before fails the unique constraint on insert, rolling all of this
        # back; send_message then answers with the original.
        if reply_to is not None and reply_to > room.last_seq:
            raise Invalid(
                _("There is no message %(reply_to)s to reply to.") % {"reply_to": reply_to},
                field="reply_to",
            )
        asks = asks or Asks()
        marking = markings.clean_marking(room.exercise, asks.marking)
        mentioned = mentioning.resolve_mentions(room=room, sender=sender, spec=asks.mentions)
        addressed = (
            mentioning.resolve_addressees(room=room, sender=sender, spec=asks.ack)
            if asks.ack is not None
            else None
        )
        parent = _parent(room, reply_to)
        seq = room.last_seq + 1
        try:
            if locked.key_shredded:
                raise crypto.ContentShredded(crypto.ContentShredded.user_text)
            sealed = records.seal_message_body(
                room_id=room.pk,
                seq=seq,
                sender_id=sender.pk,
                body=text,
                key_version=locked.key_version,
            )
        except crypto.ContentShredded:
            raise RoomClosed(
                _("This room's content was destroyed; it takes no new messages.")
            ) from None
        message = Message(
            room=room,
            seq=seq,
            sender=sender,
            client_id=client_id,
            kind=kind,
            key_version=sealed.key_version,
            nonce=sealed.nonce,
            ciphertext=sealed.ciphertext,
            reply_to_seq=reply_to,
            mentions=mentioned.declared if mentioned else {},
            marking=marking,
            created_at=timezone.now(),
            prev_hash=room.chain_head,
            link_version=audit.MESSAGE_LINK_VERSION,
        )
        message.chain_hash = audit.message_link_of(message)
        room_append.append_message(message)
        # The chain link is the message's record (no audit row per message: that one global
        # lock serialised every room's sends); signed checkpoints bind the room's head.
        audit.checkpoint_if_due(seq)
        attachments: list[dict[str, Any]] = []
        if attachment_ids:
            attachments = _claim_attachments(sender, room, attachment_ids, message)
        extras = _store_asks(message, parent, mentioned, addressed, asks)
        payload = message_payload(message, attachments=attachments, body=text, extras=extras)
        if parent is not None and _hidden_from_a_member(room, parent):
            payload["reply"] = hidden_reply_payload(parent.seq)
        events.publish_on_commit(
            events.room_group(room.pk),
            events.room_event(
                events.ROOM_MESSAGE_NEW,
                {"type": "message.new", "message": payload},
                epoch=room.access_epoch,
                sender_id=sender.pk,
            ),
        )
        # Liaison's own notices count as activity too (they mention and ask nobody).
        attention.announce_message(
            room=room,
            message=message,
            sender=sender,
            mentioned=mentioned,
            addressed=addressed,
            parent=parent,
        )
    return SendResult(message, created=True)


@dataclass(frozen=True)
class Asks:
    """What a message asks of its readers besides reading it (``send_message``'s keywords)."""

    mentions: dict[str, Any] | None = None
    ack: dict[str, Any] | None = None
    marking: str | None = None


def draft_options(fields: dict[str, Any]) -> dict[str, Any]:
    """``send_message``'s optional keywords from a checked ``message.send`` frame."""
    return {
        "kind": fields.get("kind") or MessageKind.TEXT,
        "reply_to": fields.get("reply_to"),
        "attachment_ids": fields.get("attachments") or (),
        "mentions": fields.get("mentions"),
        "ack": fields.get("ack"),
        "marking": fields.get("marking"),
    }


def _parent(room: Room, reply_to: int | None) -> Message | None:
    """The message a reply quotes (it lies in the same room, below the new seq)."""
    if reply_to is None:
        return None
    return payloads.with_payload_relations(Message.objects.filter(room=room, seq=reply_to)).first()


def _store_asks(
    message: Message,
    parent: Message | None,
    mentioned: mentioning.Reach | None,
    addressed: mentioning.Reach | None,
    asks: Asks,
) -> dict[str, Any]:
    """Store who the message mentions and asks to acknowledge; its payload's extras, made
    from what is in hand (no query)."""
    extras: dict[str, Any] = {
        "reply": payloads.reply_payload(parent, message.reply_to_seq)
        if message.reply_to_seq
        else None,
        "mentions": None,
        "ack": None,
        "marking": message.marking or None,
        "reactions": {},
    }
    if mentioned is not None:
        Mention.objects.bulk_create(
            [
                Mention(message=message, user_id=ident, via=via)
                for ident, via in mentioned.people.items()
            ]
        )
        extras["mentions"] = payloads.mentions_payload(mentioned.declared, mentioned.people)
    if addressed is not None:
        request, rows = acknowledgements.open_request(
            message=message,
            addressed=addressed,
            due_minutes=(asks.ack or {}).get("due_minutes"),
        )
        extras["ack"] = payloads.ack_payload(request, rows)
    return extras


def system_sender() -> User:
    """The account Liaison's notices are sent as: inactive, with no password, in no exercise."""
    user = User.objects.filter(email=SYSTEM_SENDER_EMAIL).first()
    if user is not None:
        return user
    try:
        with transaction.atomic():
            user = User(
                email=SYSTEM_SENDER_EMAIL,
                display_name=SYSTEM_SENDER_NAME,
                role=Role.OFFICER,
                is_active=False,
            )
            user.set_unusable_password()
            user.save()
    except IntegrityError:  # created meanwhile by another process
        user = User.objects.get(email=SYSTEM_SENDER_EMAIL)
    return user


def post_notice(*, room_id: int, client_id: str, body: str) -> Message | None:
    """A notice from Liaison itself into a room, whatever the room's state (it announces that
    state): sealed and chained like any message, of kind ``system``. Idempotent by
    ``client_id``. The caller's own audit event records what it announces. ``None`` when the
    room's content was destroyed and it can take nothing new."""
    sender = system_sender()
    existing = _existing(room_id, sender, client_id)
    if existing is not None:
        return existing
    try:
        return _store_message(
            room_id=room_id,
            room_access=None,
            posting_epoch=None,
            sender=sender,
            client_id=clean_client_id(client_id),
            text=clean_body(body),
            kind=MessageKind.SYSTEM,
            reply_to=None,
            attachment_ids=[],
            notice=True,
        ).message
    except RoomClosed:
        return None


def _hidden_from_a_member(room: Room, parent: Message) -> bool:
    """Whether a current member of a ``joined`` exercise joined after ``parent`` was written:
    the room's one broadcast frame then quotes nothing of it (members who may see it read the
    quote in their history)."""
    if room.exercise.history_visibility != HistoryVisibility.JOINED:
        return False
    return Membership.objects.filter(
        exercise_id=room.exercise_id, removed_at__isnull=True, created_at__gt=parent.created_at
    ).exists()


def _claim_attachments(
    sender: User, room: Room, attachment_ids: list[int], message: Message
) -> list[dict[str, Any]]:
    """Bind the sender's uploads to the message (the attachments service checks them)."""
    claimed = attachments_service.claim_for_message(
        user=sender, room=room, attachment_ids=attachment_ids, message=message
    )
    # An attachment not marked at upload carries the message's marking.
    unmarked = [attachment for attachment in claimed if not attachment.marking]
    if unmarked:
        Attachment.objects.filter(pk__in=[a.pk for a in unmarked]).update(marking=message.marking)
        for attachment in unmarked:
            attachment.marking = message.marking
    return [attachment_payload(attachment) for attachment in claimed]
