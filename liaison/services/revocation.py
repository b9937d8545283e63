"""Narrowing someone's rights: move the rooms' access epochs and tell the open sockets.

Called inside the transaction of the change itself. The epoch moves under the room's row lock,
which every send takes too, so a message committed after the change carries the new epoch and
no socket holding an older grant delivers it without re-checking (``liaison/realtime/``).
"""

from __future__ import annotations

from django.db.models import F

from liaison import events
from liaison.models import Membership, Room


def narrow_exercise(*, exercise_id: int) -> list[int]:
    """Someone's right in this exercise narrowed (removal, role, status): move every room's
    epoch. Returns the room ids."""
    rooms = Room.objects.filter(exercise_id=exercise_id)
    rooms.update(access_epoch=F("access_epoch") + 1)
    return list(rooms.order_by("pk").values_list("pk", flat=True))


def narrow_person(*, user_id: int, recheck: bool = True) -> None:
    """An account changed (disabled, password, role, sessions ended): move the epochs of the
    rooms the person belongs to, and (``recheck``) have their sockets read their grant again."""
    exercise_ids = Membership.objects.filter(user_id=user_id, removed_at__isnull=True).values(
        "exercise_id"
    )
    Room.objects.filter(exercise_id__in=exercise_ids).update(access_epoch=F("access_epoch") + 1)
    if recheck:
        events.publish_on_commit(
            events.user_group(user_id), events.grant_changed(exercise_id=None, room_ids=None)
        )
