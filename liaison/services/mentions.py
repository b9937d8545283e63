"""Mentions and acknowledgement addressees: who a message reaches, decided when it is sent.

The composer resolves ``@display name``, ``@agency`` and ``@room`` to user ids and agency codes
from the room's member list; here each is checked against the exercise's current members (a
non-member is refused, so nobody outside the exercise can be mentioned, asked to acknowledge,
or notified) and expanded to the people it reaches. Callers hold the room's row lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from liaison.errors import Invalid
from liaison.models import GroupRole, Membership, MentionVia, Room, User


@dataclass(frozen=True)
class Reach:
    """People a message reaches, each with how (``MentionVia``), and what the sender wrote."""

    declared: dict[str, Any]
    people: dict[int, str] = field(default_factory=dict)  # user id -> via
    users: dict[int, User] = field(default_factory=dict)

    @property
    def user_ids(self) -> list[int]:
        return sorted(self.people)


def current_members(room: Room) -> list[Membership]:
    """The exercise's current members with their people and agencies."""
    return list(
        Membership.objects.filter(exercise_id=room.exercise_id, removed_at__isnull=True)
        .select_related("user", "user__agency")
        .order_by("user__display_name", "user_id")
    )


def _agency_code(user: User) -> str | None:
    return user.agency.code if user.agency_id else None


def _check_people(
    ids: Iterable[int], by_id: dict[int, Membership], *, field_name: str
) -> list[int]:
    wanted = list(dict.fromkeys(ids))
    strangers = [ident for ident in wanted if ident not in by_id]
    if strangers:
        raise Invalid(
            _("Only members of this exercise can be named; %(ids)s is not one.")
            % {"ids": ", ".join(str(ident) for ident in strangers[:5])},
            field=field_name,
        )
    return wanted


def _check_agencies(
    codes: Iterable[str], members: list[Membership], *, field_name: str
) -> list[str]:
    present = {_agency_code(m.user) for m in members}
    wanted = list(dict.fromkeys(codes))
    absent = [code for code in wanted if code not in present]
    if absent:
        raise Invalid(
            _("No member of this exercise belongs to the agency %(code)s.")
            % {"code": repr(absent[0][:32])},
            field=field_name,
        )
    return wanted


def resolve_mentions(*, room: Room, sender: User, spec: dict[str, Any] | None) -> Reach | None:
    """The people a message's mentions reach (the sender excepted), or ``None`` for none.
    A person named directly counts as ``person`` even if an agency or ``@room`` reaches them."""
    if not spec or not (spec.get("users") or spec.get("agencies") or spec.get("room")):
        return None
    members = current_members(room)
    by_id = {m.user_id: m for m in members}
    users = _check_people(spec.get("users") or [], by_id, field_name="mentions")
    agencies = _check_agencies(spec.get("agencies") or [], members, field_name="mentions")
    everyone = bool(spec.get("room"))
    people: dict[int, str] = {}
    for membership in members:
        user = membership.user
        if user.pk == sender.pk:
            continue
        if user.pk in users:
            people[user.pk] = MentionVia.PERSON
        elif _agency_code(user) in agencies:
            people[user.pk] = MentionVia.AGENCY
        elif everyone:
            people[user.pk] = MentionVia.ROOM
    declared = {"users": users, "agencies": agencies, "room": everyone}
    return Reach(
        declared=declared,
        people=people,
        users={ident: by_id[ident].user for ident in people},
    )


def resolve_addressees(*, room: Room, sender: User, spec: dict[str, Any]) -> Reach:
    """Who an acknowledgement request asks: the named people (any current member), the members
    of the named agencies who may post, or, with neither named, everyone who may post; never
    the sender. Refused if that leaves nobody."""
    members = current_members(room)
    by_id = {m.user_id: m for m in members}
    users = _check_people(spec.get("users") or [], by_id, field_name="ack")
    agencies = _check_agencies(spec.get("agencies") or [], members, field_name="ack")
    everyone = not users and not agencies
    people: dict[int, str] = {}
    for membership in members:
        user = membership.user
        if user.pk == sender.pk:
            continue
        posts = membership.role != GroupRole.OBSERVER
        if user.pk in users:
            people[user.pk] = MentionVia.PERSON
        elif posts and _agency_code(user) in agencies:
            people[user.pk] = MentionVia.AGENCY
        elif posts and everyone:
            people[user.pk] = MentionVia.ROOM
    if not people:
        raise Invalid(_("Nobody else in this room could acknowledge this message."), field="ack")
    return Reach(
        declared={"agencies": agencies, "users": users},
        people=people,
        users={ident: by_id[ident].user for ident in people},
    )
