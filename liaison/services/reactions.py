"""Reactions from a small fixed set (seen, agreed, important) on a message: set or cleared by a
member who may post, shown live to the room (``reaction.updated``). Not audited: they grant and
change no right and carry no content; what must be on the record is an acknowledgement."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from liaison import access, events, payloads
from liaison.errors import Invalid, NotFound
from liaison.models import REACTIONS, Message, Reaction, Room, User


def react(*, user: User, room_id: int, seq: int, emoji: str, on: bool) -> dict[str, list[int]]:
    """Set (``on``) or clear the person's ``emoji`` on message ``seq``; the message's
    reactions afterwards. Setting twice or clearing what is not set changes nothing."""
    if emoji not in REACTIONS:
        raise Invalid(
            _("A reaction is one of %(choices)s.") % {"choices": " ".join(REACTIONS)},
            field="emoji",
        )
    room_access = access.access_room(user, room_id)
    access.require_can_post(room_access)
    with transaction.atomic():
        room = Room.objects.select_for_update(of=("self",)).get(pk=room_access.room.pk)
        message = Message.objects.filter(room=room, seq=seq, deleted_at__isnull=True).first()
        if message is None:
            raise NotFound(_("There is no message %(seq)s in this room.") % {"seq": seq})
        rows = Reaction.objects.filter(message=message, user=user, emoji=emoji)
        if on and not rows.exists():
            Reaction.objects.create(message=message, user=user, emoji=emoji)
        elif not on and rows.exists():
            rows.delete()
        else:
            return payloads.reactions_of([message.pk]).get(message.pk, {})
        reactions = payloads.reactions_of([message.pk]).get(message.pk, {})
        frame: dict[str, Any] = {
            "type": "reaction.updated",
            "room": room.pk,
            "seq": seq,
            "reactions": reactions,
        }
        events.publish_on_commit(
            events.room_group(room.pk),
            events.room_event(
                events.ROOM_REACTION_UPDATED,
                frame,
                epoch=room.access_epoch,
                sender_id=user.pk,
                written=message.created_at,
            ),
        )
    return reactions
