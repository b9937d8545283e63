"""Changing what was said: edits (kept as sealed revisions), deletions (hidden from members,
kept for auditors) and read markers. Each locks what it changes, records its audit event and
publishes after commit, stamped with the room's access epoch."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from liaison import access, audit, events
from liaison.crypto import records
from liaison.errors import Invalid, NotFound, PermissionDenied
from liaison.models import GroupRole, Message, MessageRevision, ReadMarker, Room, User
from liaison.payloads import message_payload, person_payload
from liaison.services import attention
from liaison.services.message_rules import clean_body, require_still_member

# --- editing and deleting ----------------------------------------------------------------------


def _locked_epoch(room_id: int) -> int:
    """The room's access epoch, read under its row lock: an update committed after a removal
    carries the epoch that removal set."""
    return (
        Room.objects.select_for_update(of=("self",))
        .filter(pk=room_id)
        .values_list("access_epoch", flat=True)
        .get()
    )


def _locked_message(room: Room, seq: object) -> Message:
    if isinstance(seq, bool) or not isinstance(seq, int) or seq <= 0:
        raise Invalid(_("seq must be a positive integer."), field="seq")
    message = (
        Message.objects.select_for_update(of=("self",))
        .filter(room=room, seq=seq)
        .select_related("sender", "sender__agency")
        .first()
    )
    if message is None:
        raise NotFound(_("There is no message %(seq)s in this room.") % {"seq": seq})
    return message


def edit_message(
    *, user: User, room_id: int, seq: int, body: str, ip: str | None = None
) -> Message:
    """The author replaces the text. The original ciphertext stays; the new text becomes a
    sealed revision, so auditors can read every version."""
    room_access = access.access_room(user, room_id)
    access.require_can_post(room_access)
    text = clean_body(body)
    with transaction.atomic():
        room = room_access.room
        require_still_member(room_access)
        message = _locked_message(room, seq)
        if message.sender_id != user.pk:
            raise PermissionDenied(_("Only the author can edit a message."))
        if message.deleted_at is not None:
            raise Invalid(_("A deleted message cannot be edited."), field="seq")
        number = MessageRevision.objects.filter(message=message).order_by("-number").first()
        number = (number.number + 1) if number else 1
        sealed = records.seal_revision(
            room_id=room.pk, seq=message.seq, sender_id=user.pk, number=number, body=text
        )
        now = timezone.now()
        MessageRevision.objects.create(
            message=message,
            number=number,
            key_version=sealed.key_version,
            nonce=sealed.nonce,
            ciphertext=sealed.ciphertext,
            created_at=now,
        )
        message.edited_at = now
        message.save(update_fields=["edited_at"])
        audit.record(
            actor=user,
            action="message.edited",
            target=message,
            exercise=room.exercise,
            ip=ip,
            room=room.pk,
            seq=message.seq,
            revision=number,
        )
        payload = message_payload(message, body=text)
        events.publish_on_commit(
            events.room_group(room.pk),
            events.room_event(
                events.ROOM_MESSAGE_UPDATED,
                {"type": "message.updated", "message": payload},
                epoch=_locked_epoch(room.pk),
                written=message.created_at,
            ),
        )
    return message


def delete_message(*, user: User, room_id: int, seq: int, ip: str | None = None) -> Message:
    """Hide a message from members (the author, or a coordinator of the exercise). The sealed
    body stays for auditors and the chain stays whole. Deleting twice changes nothing."""
    room_access = access.access_room(user, room_id)
    access.require_can_post(room_access)
    with transaction.atomic():
        room = room_access.room
        require_still_member(room_access)
        message = _locked_message(room, seq)
        is_coordinator = (
            room_access.membership is not None
            and room_access.membership.role == GroupRole.COORDINATOR
        )
        if message.sender_id != user.pk and not is_coordinator:
            raise PermissionDenied(_("Only the author or a coordinator can delete a message."))
        if message.deleted_at is not None:
            return message
        message.deleted_at = timezone.now()
        message.deleted_by = user
        message.save(update_fields=["deleted_at", "deleted_by"])
        audit.record(
            actor=user,
            action="message.deleted",
            target=message,
            exercise=room.exercise,
            ip=ip,
            room=room.pk,
            seq=message.seq,
            by_author=message.sender_id == user.pk,
        )
        payload = message_payload(message)
        events.publish_on_commit(
            events.room_group(room.pk),
            events.room_event(
                events.ROOM_MESSAGE_UPDATED,
                {"type": "message.updated", "message": payload},
                epoch=_locked_epoch(room.pk),
                written=message.created_at,
            ),
        )
    return message


# --- read markers ---------------------------------------------------------------------


def mark_read(*, user: User, room_id: int, seq: int) -> int:
    """Move the reader's marker forward (clamped to the room's last seq); returns the stored
    marker. Members' markers are broadcast as read receipts; auditors read silently."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise Invalid(_("seq must be a non-negative integer."), field="seq")
    room_access = access.access_room(user, room_id)
    with transaction.atomic():
        last_seq, epoch = (
            Room.objects.filter(pk=room_access.room.pk)
            .values_list("last_seq", "access_epoch")
            .get()
        )
        target = min(seq, last_seq)
        marker, created = ReadMarker.objects.select_for_update().get_or_create(
            user=user, room_id=room_access.room.pk, defaults={"last_read_seq": target}
        )
        if not created and target <= marker.last_read_seq:
            return marker.last_read_seq
        if not created:
            marker.last_read_seq = target
            marker.save(update_fields=["last_read_seq", "updated_at"])
        if room_access.membership is not None:
            events.publish_on_commit(
                events.room_group(room_access.room.pk),
                events.room_event(
                    events.ROOM_READ,
                    {"type": "read", "user": person_payload(user), "seq": target},
                    epoch=epoch,
                    sender_id=user.pk,
                ),
            )
            # Every socket of the reader (other tabs, the home page) hears its new counts.
            attention.publish_counts(user=user, room_ids=[room_access.room.pk])
    return target
