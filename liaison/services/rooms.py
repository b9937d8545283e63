"""Rooms added to an exercise after it is created (its ``general`` room comes with it)."""

from __future__ import annotations

import re

from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from liaison import audit
from liaison.access import require_admin
from liaison.errors import Conflict, Invalid
from liaison.models import Exercise, Room, User
from liaison.services.exercises import lock_exercise, require_writable

ROOM_NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def clean_room_name(name: str) -> str:
    value = (name or "").strip().lower()
    if not 1 <= len(value) <= 64 or not ROOM_NAME_RE.match(value):
        suggestion = slugify(name or "")[:64]
        hint = (
            _(" (for example %(suggestion)s)") % {"suggestion": repr(suggestion)}
            if suggestion and suggestion != value
            else ""
        )
        raise Invalid(
            _(
                "A room name uses lower-case letters, digits and single hyphens, at most 64 "
                "characters%(hint)s."
            )
            % {"hint": hint},
            field="name",
        )
    return value


def add_room(
    *,
    actor: User,
    exercise: Exercise,
    name: str,
    title: str = "",
    topic: str = "",
    ip: str | None = None,
) -> Room:
    """A new room (per lane or topic) in a draft or active exercise."""
    require_admin(actor)
    name = clean_room_name(name)
    title = (title or "").strip()
    topic = (topic or "").strip()
    if len(title) > 200:
        raise Invalid(_("The room title is longer than 200 characters."), field="title")
    if len(topic) > 500:
        raise Invalid(_("The room topic is longer than 500 characters."), field="topic")
    with transaction.atomic():
        exercise = lock_exercise(exercise)
        require_writable(exercise)
        if Room.objects.filter(exercise=exercise, name=name).exists():
            raise Conflict(
                _("Exercise %(code)s already has a room named %(name)s.")
                % {"code": exercise.code, "name": name},
                field="name",
            )
        room = Room.objects.create(
            exercise=exercise,
            name=name,
            title=title or name.replace("-", " ").capitalize(),
            topic=topic,
            created_by=actor,
        )
        audit.record(
            actor=actor,
            action="room.created",
            target=room,
            exercise=exercise,
            ip=ip,
            name=name,
        )
    return room
