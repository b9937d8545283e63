"""Memberships: who belongs to an exercise, in which group role, and since/until when.

Removal is a timestamp, never a deleted row, so the record of who could read what survives.
A removed member's open sockets are told to close (4403) once the removal commits.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from liaison import audit, events
from liaison.access import require_admin
from liaison.errors import Conflict, Invalid
from liaison.models import Exercise, GroupRole, Membership, Role, User
from liaison.services import revocation
from liaison.services.exercises import lock_exercise, require_writable


def _clean_role(role: str) -> str:
    if role not in GroupRole.values:
        raise Invalid(
            _("Unknown role %(value)s: use one of %(values)s.")
            % {"value": repr(str(role)[:32]), "values": ", ".join(GroupRole.values)},
            field="role",
        )
    return role


def _lock_current(membership: Membership) -> Membership:
    """The membership re-read under SELECT ... FOR UPDATE; refused if already removed."""
    locked = (
        Membership.objects.select_for_update()
        .select_related("user", "exercise")
        .get(pk=membership.pk)
    )
    if locked.removed_at is not None:
        raise Conflict(
            _("%(email)s was already removed from this exercise.") % {"email": locked.user.email}
        )
    return locked


def add_member(
    *,
    actor: User,
    exercise: Exercise,
    user: User,
    role: str = GroupRole.MEMBER,
    ip: str | None = None,
) -> Membership:
    """Put an existing officer of a participating agency into the exercise directly."""
    require_admin(actor)
    role = _clean_role(role)
    with transaction.atomic():
        exercise = lock_exercise(exercise)
        require_writable(exercise)
        if not user.is_active or user.role != Role.OFFICER:
            raise Invalid(
                _("%(email)s is not an active officer account.") % {"email": user.email},
                field="user",
            )
        if user.agency_id is None or not exercise.agencies.filter(pk=user.agency_id).exists():
            raise Invalid(
                _("%(email)s's agency does not take part in exercise %(code)s.")
                % {"email": user.email, "code": exercise.code},
                field="user",
            )
        if Membership.objects.filter(
            exercise=exercise, user=user, removed_at__isnull=True
        ).exists():
            raise Conflict(
                _("%(email)s is already a member of %(code)s.")
                % {"email": user.email, "code": exercise.code},
                field="user",
            )
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    exercise=exercise, user=user, role=role, added_by=actor
                )
        except IntegrityError:
            raise Conflict(
                _("%(email)s is already a member of %(code)s.")
                % {"email": user.email, "code": exercise.code},
                field="user",
            ) from None
        audit.record(
            actor=actor,
            action="membership.added",
            target=membership,
            exercise=exercise,
            ip=ip,
            user_id=user.pk,
            email=user.email,
            role=role,
        )
    return membership


def remove_member(*, actor: User, membership: Membership, ip: str | None = None) -> Membership:
    """End a membership now: the row stays with ``removed_at``/``removed_by``, and the user's
    sockets in the exercise's rooms close (4403) after commit."""
    require_admin(actor)
    with transaction.atomic():
        exercise = lock_exercise(membership.exercise)
        require_writable(exercise)
        membership = _lock_current(membership)
        membership.removed_at = timezone.now()
        membership.removed_by = actor
        membership.save(update_fields=["removed_at", "removed_by"])
        cut = revocation.narrow_exercise(exercise_id=exercise.pk)
        audit.record(
            actor=actor,
            action="membership.removed",
            target=membership,
            exercise=exercise,
            ip=ip,
            user_id=membership.user_id,
            email=membership.user.email,
            role=membership.role,
            # The last message of each room the person could still receive.
            last_seq_by_room={str(room_id): seq for room_id, seq in cut.items()},
        )
        events.publish_on_commit(
            events.user_group(membership.user_id),
            events.user_revoked(exercise_id=exercise.pk, room_ids=list(cut)),
        )
    return membership


def change_role(
    *, actor: User, membership: Membership, role: str, ip: str | None = None
) -> Membership:
    """Make a member a coordinator, member or observer (observers read but cannot post)."""
    require_admin(actor)
    role = _clean_role(role)
    with transaction.atomic():
        exercise = lock_exercise(membership.exercise)
        require_writable(exercise)
        membership = _lock_current(membership)
        previous = membership.role
        if previous == role:
            raise Invalid(
                _("%(email)s is already %(role)s.")
                % {"email": membership.user.email, "role": GroupRole(role).label.lower()},
                field="role",
            )
        membership.role = role
        membership.save(update_fields=["role"])
        audit.record(
            actor=actor,
            action="membership.role_changed",
            target=membership,
            exercise=exercise,
            ip=ip,
            user_id=membership.user_id,
            email=membership.user.email,
            role_from=previous,
            role_to=role,
        )
        cut = revocation.narrow_exercise(exercise_id=exercise.pk)
        events.publish_on_commit(
            events.user_group(membership.user_id),
            events.grant_changed(exercise_id=exercise.pk, room_ids=list(cut)),
        )
    return membership
