"""Narrowing someone's rights: move the rooms' access epochs and tell the open sockets.

Called inside the transaction of the change itself. The epoch moves under the room's row lock,
which every send takes too, so a message committed after the change carries the new epoch and
no socket holding an older grant delivers it without re-checking (``liaison/realtime/``).
"""

from __future__ import annotations

from django.db.models import F

from liaison import events
from liaison.models import Membership, Room


def narrow_exercise(*, exercise_id: int) -> dict[int, int]:
    """Someone's right in this exercise narrowed (removal, role, status): move every room's
    epoch. Returns each room's last ``seq`` at the change, the cut between the messages
    committed before it and those after (rooms locked in id order, as a send locks one)."""
    rooms = Room.objects.select_for_update().filter(exercise_id=exercise_id).order_by("pk")
    cut = dict(rooms.values_list("pk", "last_seq"))
    Room.objects.filter(pk__in=list(cut)).update(access_epoch=F("access_epoch") + 1)
    return cut


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
