"""The provisioning commands' ``--json`` output (``manage.py exercise``, ``invite``, ``members``)."""

from __future__ import annotations

from typing import Any

from liaison.models import (
    Exercise,
    Invitation,
    Membership,
    Room,
)
from liaison.payloads import iso_utc

# --- the provisioning commands' --json output (exercise, invite, members) ----------------------
# Scripts name exercises and people by code and e-mail, so these shapes do too.


def exercise_summary(exercise: Exercise) -> dict[str, Any]:
    members = (
        Membership.objects.filter(exercise=exercise, removed_at__isnull=True)
        .select_related("user")
        .order_by("user__email")
    )
    return {
        "id": exercise.pk,
        "code": exercise.code,
        "title": exercise.title,
        "status": exercise.status,
        "starts_at": iso_utc(exercise.starts_at),
        "ends_at": iso_utc(exercise.ends_at),
        "history_visibility": exercise.history_visibility,
        "agencies": sorted(exercise.agencies.values_list("code", flat=True)),
        "rooms": [{"id": room.pk, "name": room.name} for room in exercise.rooms.order_by("name")],
        "members": [
            {"email": m.user.email, "role": m.role, "display_name": m.user.display_name}
            for m in members
        ],
    }


def room_summary(room: Room) -> dict[str, Any]:
    return {"id": room.pk, "name": room.name, "exercise": room.exercise.code}


def membership_summary(membership: Membership) -> dict[str, Any]:
    return {
        "id": membership.pk,
        "email": membership.user.email,
        "display_name": membership.user.display_name,
        "agency": membership.user.agency.code if membership.user.agency else None,
        "role": membership.role,
        "created_at": iso_utc(membership.created_at),
        "removed_at": iso_utc(membership.removed_at),
    }


def invitation_summary(invitation: Invitation) -> dict[str, Any]:
    return {
        "id": invitation.pk,
        "exercise": invitation.exercise.code,
        "email": invitation.email,
        "agency": invitation.agency.code,
        "role": invitation.role,
        "expires_at": iso_utc(invitation.expires_at),
    }
