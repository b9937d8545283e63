"""Handling markings: each exercise names its own (lowest first, with a default), every message
and attachment carries one, and an exercise may forbid observers to download attachments marked
above a level. The rule is enforced here, for every download path, not in the page.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils.translation import gettext as _

from liaison import access, audit
from liaison.errors import Invalid, PermissionDenied
from liaison.models import Attachment, Exercise, GroupRole, User

MAX_MARKINGS = 10
MARKING_CHARS = 40


def exercise_markings(exercise: Exercise) -> list[str]:
    """The exercise's markings, lowest first (never empty: the default alone at worst)."""
    markings = [str(m) for m in (exercise.markings or []) if m]
    if exercise.default_marking and exercise.default_marking not in markings:
        markings.insert(0, exercise.default_marking)
    return markings or ["OFFICIAL"]


def clean_marking(exercise: Exercise, marking: str | None) -> str:
    """The marking a message or attachment is stored with: the one asked for, if the exercise
    defines it, else the exercise's default."""
    markings = exercise_markings(exercise)
    if marking is None or marking == "":
        return exercise.default_marking or markings[0]
    if marking not in markings:
        raise Invalid(
            _("This exercise has no handling marking %(marking)s; it uses %(markings)s.")
            % {"marking": repr(marking[:MARKING_CHARS]), "markings": ", ".join(markings)},
            field="marking",
        )
    return marking


def level(exercise: Exercise, marking: str) -> int:
    """How high a marking stands (an unknown or blank marking counts as the default's)."""
    markings = exercise_markings(exercise)
    if marking in markings:
        return markings.index(marking)
    default = exercise.default_marking
    return markings.index(default) if default in markings else 0


def require_may_download(*, attachment: Attachment, room_access: access.RoomAccess) -> None:
    """Observers may not download an attachment marked above the exercise's observer limit
    (files and their previews alike); everyone else who reads the room may."""
    membership = room_access.membership
    if membership is None or membership.role != GroupRole.OBSERVER:
        return
    exercise = room_access.exercise
    limit = exercise.observer_download_limit
    if limit and level(exercise, attachment.marking) > level(exercise, limit):
        raise PermissionDenied(
            _("Observers may not download files marked %(marking)s in this exercise.")
            % {"marking": attachment.marking}
        )


def set_markings(
    *,
    actor: User,
    exercise: Exercise,
    markings: Iterable[str],
    default: str,
    observer_download_limit: str = "",
    ip: str | None = None,
) -> Exercise:
    """An administrator sets the exercise's markings (lowest first), its default and the
    highest marking observers may download (blank: no limit). Audited."""
    access.require_admin(actor)
    names: list[str] = []
    for raw in markings:
        name = str(raw).strip().upper()
        if name and name not in names:
            if len(name) > MARKING_CHARS:
                raise Invalid(_("A marking is at most 40 characters long."), field="markings")
            names.append(name)
    if not names or len(names) > MAX_MARKINGS:
        raise Invalid(_("Give one to ten handling markings."), field="markings")
    default = default.strip().upper()
    limit = observer_download_limit.strip().upper()
    if default not in names:
        raise Invalid(_("The default marking must be one of the markings."), field="default")
    if limit and limit not in names:
        raise Invalid(
            _("The observers' download limit must be one of the markings."),
            field="observer_download_limit",
        )
    with transaction.atomic():
        exercise = Exercise.objects.select_for_update().get(pk=exercise.pk)
        exercise.markings = names
        exercise.default_marking = default
        exercise.observer_download_limit = limit
        exercise.save(update_fields=["markings", "default_marking", "observer_download_limit"])
        audit.record(
            actor=actor,
            action="exercise.markings_changed",
            target=exercise,
            exercise=exercise,
            ip=ip,
            markings=names,
            default=default,
            observer_download_limit=limit,
        )
    return exercise
