"""Permission-checked fetchers and permission checks, shared by views, consumers and services.

Each ``access_*`` returns the object only if the user may see it, and otherwise raises
``AccessDenied`` (a ``NotFound``): a denied object and a missing one look the same.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils.translation import gettext as _

from liaison.errors import AccessDenied, PermissionDenied, RoomClosed
from liaison.models import (
    Attachment,
    Comparison,
    Dataset,
    Exercise,
    ExerciseStatus,
    GroupRole,
    HistoryVisibility,
    Membership,
    Message,
    Role,
    Room,
    User,
)

# Exercises members can still open; archived and shredded ones are the auditors' alone.
MEMBER_VISIBLE_STATUSES = {ExerciseStatus.DRAFT, ExerciseStatus.ACTIVE, ExerciseStatus.CLOSED}


@dataclass(frozen=True)
class RoomAccess:
    room: Room
    membership: Membership | None  # None for auditors, who read without belonging

    @property
    def exercise(self) -> Exercise:
        return self.room.exercise

    @property
    def is_auditor(self) -> bool:
        return self.membership is None


def current_membership(user: User, exercise: Exercise | int) -> Membership | None:
    exercise_id = exercise if isinstance(exercise, int) else exercise.pk
    return (
        Membership.objects.filter(exercise_id=exercise_id, user=user, removed_at__isnull=True)
        .select_related("exercise")
        .first()
    )


def _parse_id(value: object, kind: str) -> int:
    try:
        ident = int(str(value))
    except (TypeError, ValueError):
        raise AccessDenied(target_type=kind, target_id=str(value)[:64]) from None
    if ident <= 0:
        raise AccessDenied(target_type=kind, target_id=str(ident))
    return ident


def _usable(user: User | None) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def access_exercise(user: User, exercise_id: object) -> tuple[Exercise, Membership | None]:
    """The exercise and the user's membership; admins and auditors see every exercise."""
    ident = _parse_id(exercise_id, "exercise")
    exercise = Exercise.objects.filter(pk=ident).first() if _usable(user) else None
    if exercise is None:
        raise AccessDenied(target_type="exercise", target_id=str(ident))
    if user.role in {Role.ADMIN, Role.AUDITOR}:
        return exercise, current_membership(user, exercise)
    membership = current_membership(user, exercise)
    if membership is None or exercise.status not in MEMBER_VISIBLE_STATUSES:
        raise AccessDenied(target_type="exercise", target_id=str(ident))
    return exercise, membership


# --- exercises: who may provision, invite and see members' addresses ---------------------------


def require_admin(actor: User) -> None:
    """Provisioning is the admins' job; everyone else is refused."""
    if not (_usable(actor) and actor.is_admin):
        raise PermissionDenied(_("Only administrators can provision exercises."))


def is_coordinator(user: User, exercise: Exercise) -> bool:
    """A current coordinator of this exercise (removed coordinators are nobody)."""
    if not (_usable(user) and user.is_officer):
        return False
    return Membership.objects.filter(
        exercise=exercise, user=user, role=GroupRole.COORDINATOR, removed_at__isnull=True
    ).exists()


def can_manage_invitations(user: User, exercise: Exercise) -> bool:
    """Admins, and the exercise's own coordinators, may invite and see its invitations."""
    if not _usable(user):
        return False
    return user.is_admin or is_coordinator(user, exercise)


def sees_member_emails(user: User, exercise: Exercise) -> bool:
    """Members' e-mail addresses are for admins, auditors and the exercise's coordinators."""
    return user.is_admin or user.is_auditor or is_coordinator(user, exercise)


def access_managed_exercise(user: User, exercise_id: object) -> Exercise:
    """An exercise the user may provision (admins) or invite to (its current coordinators).

    Anyone else, and any id that does not exist, gets the same ``AccessDenied`` (a 404).
    """
    exercise, membership = access_exercise(user, exercise_id)
    if user.is_admin:
        return exercise
    if user.is_officer and membership is not None and membership.role == GroupRole.COORDINATOR:
        return exercise
    raise AccessDenied(target_type="exercise", target_id=str(exercise.pk))


def access_room(user: User, room_id: object) -> RoomAccess:
    """A room the user may read: as a current member, or as an auditor (read-only)."""
    ident = _parse_id(room_id, "room")
    room = (
        Room.objects.select_related("exercise").filter(pk=ident).first() if _usable(user) else None
    )
    membership = None
    if room is not None and user.role != Role.AUDITOR:
        membership = current_membership(user, room.exercise_id)
    return room_access_of(user, ident, room=room, membership=membership)


def room_access_of(
    user: User, room_id: int, *, room: Room | None, membership: Membership | None
) -> RoomAccess:
    """The rule of ``access_room``, for rows the caller has read already (a socket's admission
    reads them with its session in one statement): ``room`` with its exercise, and the user's
    current ``membership`` of that exercise."""
    if room is None or not _usable(user):
        raise AccessDenied(target_type="room", target_id=str(room_id))
    if user.role == Role.AUDITOR:
        return RoomAccess(room=room, membership=None)
    if membership is None or room.exercise.status not in MEMBER_VISIBLE_STATUSES:
        raise AccessDenied(target_type="room", target_id=str(room_id))
    return RoomAccess(room=room, membership=membership)


def visible_from(room_access: RoomAccess) -> dt.datetime | None:
    """The oldest message time the reader may see in the room (history visibility): for a
    member of a ``joined`` exercise, the start of their current membership (someone removed and
    added again reads from the new start); ``None`` when the whole history is theirs (``shared``
    exercises, auditors). Every read of messages applies it: history, sync, search, files."""
    membership = room_access.membership
    if membership is None or room_access.exercise.history_visibility != HistoryVisibility.JOINED:
        return None
    return membership.created_at


def room_refused_to_admin(user: User, room_id: object) -> Room | None:
    """After ``access_room`` refused an administrator: the room, so the page can say why
    (admins provision every exercise but read no conversation). ``None`` for anyone else and
    for a room that does not exist, so officers still see one 404 for denied and missing."""
    if not (_usable(user) and user.is_admin):
        return None
    try:
        ident = _parse_id(room_id, "room")
    except AccessDenied:
        return None
    return Room.objects.select_related("exercise").filter(pk=ident).first()


def require_can_post(access: RoomAccess) -> None:
    """Raise unless the user may write in the room now."""
    if access.membership is None:
        raise PermissionDenied(_("Auditors have read-only access."))
    if access.membership.role == GroupRole.OBSERVER:
        raise PermissionDenied(_("Observers can read but not post in this exercise."))
    if access.room.exercise.status != ExerciseStatus.ACTIVE:
        raise RoomClosed(
            _("This exercise is not active: its rooms are read-only.")
            if access.room.exercise.status != ExerciseStatus.DRAFT
            else _("This exercise has not started yet: its rooms open when it is activated.")
        )


def access_attachment(user: User, attachment_id: object) -> tuple[Attachment, RoomAccess]:
    """An attachment in a room the user may read (uploader's unsent files only to the uploader)."""
    ident = _parse_id(attachment_id, "attachment")
    attachment = Attachment.objects.filter(pk=ident, purged_at__isnull=True).first()
    if attachment is None:
        raise AccessDenied(target_type="attachment", target_id=str(ident))
    try:
        room_access = access_room(user, attachment.room_id)
    except AccessDenied:
        raise AccessDenied(target_type="attachment", target_id=str(ident)) from None
    if attachment.message_id is None and attachment.uploader_id != user.pk:
        raise AccessDenied(target_type="attachment", target_id=str(ident))
    boundary = visible_from(room_access)
    if boundary is not None and attachment.message_id is not None:
        sent = Message.objects.filter(pk=attachment.message_id).values_list("created_at", flat=True)
        if sent.first() < boundary:  # sent before this member joined a ``joined`` exercise
            raise AccessDenied(target_type="attachment", target_id=str(ident))
    return attachment, room_access


# --- auditors ---------------------------------------------------------------------------------


def is_auditor(user: User | None) -> bool:
    """An active, signed-in user with the global auditor role."""
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.role == Role.AUDITOR
    )


def require_auditor(user: User | None) -> None:
    """Raise ``AccessDenied`` (404) unless ``user`` is an active auditor: the auditors'
    workspace does not reveal itself to anyone else."""
    if not is_auditor(user):
        raise AccessDenied(target_type="audit", target_id="workspace")


# --- exercise data exchange (data sets, comparisons, seizure reports) ----------------------------


def access_exchange(user: User, exercise_id: object) -> tuple[Exercise, Membership | None]:
    """An exercise whose data sets and comparisons the user may read: its current members (any
    role) and auditors. Administrators provision exercises but read none of their data."""
    exercise, membership = access_exercise(user, exercise_id)
    if membership is None and user.role != Role.AUDITOR:
        raise AccessDenied(target_type="exercise", target_id=str(exercise.pk))
    return exercise, membership


def require_can_exchange(exercise: Exercise, membership: Membership | None) -> None:
    """Raise unless the user may upload data and run comparisons: a member or coordinator of
    an active exercise (what posting in its rooms needs too)."""
    if membership is None:
        raise PermissionDenied(_("Auditors have read-only access."))
    if membership.role == GroupRole.OBSERVER:
        raise PermissionDenied(_("Observers can read but not add data in this exercise."))
    if exercise.status != ExerciseStatus.ACTIVE:
        raise RoomClosed(
            _("This exercise has not started yet: data can be added once it is activated.")
            if exercise.status == ExerciseStatus.DRAFT
            else _("This exercise is not active: its data is read-only.")
        )


def access_dataset(user: User, dataset_id: object) -> tuple[Dataset, Membership | None]:
    """A data set of an exercise the user may read (``access_exchange``)."""
    ident = _parse_id(dataset_id, "dataset")
    dataset = Dataset.objects.select_related("exercise").filter(pk=ident).first()
    if dataset is None:
        raise AccessDenied(target_type="dataset", target_id=str(ident))
    try:
        _, membership = access_exchange(user, dataset.exercise_id)
    except AccessDenied:
        raise AccessDenied(target_type="dataset", target_id=str(ident)) from None
    return dataset, membership


def access_comparison(user: User, comparison_id: object) -> tuple[Comparison, Membership | None]:
    """A comparison of an exercise the user may read (``access_exchange``)."""
    ident = _parse_id(comparison_id, "comparison")
    comparison = Comparison.objects.select_related("exercise").filter(pk=ident).first()
    if comparison is None:
        raise AccessDenied(target_type="comparison", target_id=str(ident))
    try:
        _, membership = access_exchange(user, comparison.exercise_id)
    except AccessDenied:
        raise AccessDenied(target_type="comparison", target_id=str(ident)) from None
    return comparison, membership
