"""Memberships: admins add, remove (a timestamp, never a deleted row) and change roles; a
removal closes the member's open sockets through a revocation event."""

from __future__ import annotations

from typing import Any

import pytest

from liaison import events
from liaison.access import access_room, require_can_post
from liaison.errors import AccessDenied, Conflict, Invalid, PermissionDenied
from liaison.models import Agency, Exercise, GroupRole, Membership, Role, Room, User
from liaison.services import memberships as service
from tests.factories import AgencyFactory, UserFactory
from tests.groups_support import NON_PROVISIONERS, AuditWatch

pytestmark = pytest.mark.django_db


def membership_of(user: User, exercise: Exercise) -> Membership:
    return Membership.objects.get(exercise=exercise, user=user, removed_at__isnull=True)


# --- adding ---------------------------------------------------------------------------------------


def test_an_admin_adds_an_officer_with_one_audit_event(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    officer = UserFactory(email="direct@hmrc.example", agency=hmrc)
    watch = AuditWatch()
    membership = service.add_member(
        actor=admin, exercise=exercise, user=officer, role=GroupRole.OBSERVER
    )
    assert membership.role == GroupRole.OBSERVER
    assert membership.added_by == admin
    assert membership.is_current
    event = watch.only("membership.added", actor=admin, target=membership, exercise=exercise)
    assert event.details["email"] == "direct@hmrc.example"


def test_only_active_officers_of_participating_agencies_are_added(
    admin: User, auditor: User, exercise: Exercise, hmrc: Agency
) -> None:
    dutch = UserFactory(
        email="jan@douane.example", agency=AgencyFactory(code="nl", name="Dutch Customs")
    )
    disabled = UserFactory(email="off@hmrc.example", agency=hmrc, is_active=False)
    for user, message in [
        (dutch, "agency does not take part"),
        (auditor, "not an active officer"),
        (disabled, "not an active officer"),
    ]:
        with pytest.raises(Invalid, match=message):
            service.add_member(actor=admin, exercise=exercise, user=user)
    assert not Membership.objects.filter(user__in=[dutch, auditor, disabled]).exists()


def test_adding_a_current_member_is_a_conflict(
    admin: User, exercise: Exercise, uk_officer: User
) -> None:
    with pytest.raises(Conflict, match="already a member"):
        service.add_member(actor=admin, exercise=exercise, user=uk_officer)


def test_an_unknown_role_is_refused(admin: User, exercise: Exercise, hmrc: Agency) -> None:
    officer = UserFactory(email="direct@hmrc.example", agency=hmrc)
    with pytest.raises(Invalid, match="Unknown role"):
        service.add_member(actor=admin, exercise=exercise, user=officer, role="owner")


@pytest.mark.parametrize("name", NON_PROVISIONERS)
def test_only_admins_add_members(
    request: pytest.FixtureRequest, name: str, exercise: Exercise, hmrc: Agency
) -> None:
    officer = UserFactory(email="direct@hmrc.example", agency=hmrc)
    with pytest.raises(PermissionDenied):
        service.add_member(actor=request.getfixturevalue(name), exercise=exercise, user=officer)
    assert not Membership.objects.filter(user=officer).exists()


# --- removing -------------------------------------------------------------------------------------


def test_removing_a_member_keeps_the_row_with_a_timestamp(
    admin: User, exercise: Exercise, uk_officer: User
) -> None:
    membership = membership_of(uk_officer, exercise)
    rows_before = Membership.objects.count()
    watch = AuditWatch()
    service.remove_member(actor=admin, membership=membership)
    membership.refresh_from_db()
    assert membership.removed_at is not None
    assert membership.removed_by == admin
    assert Membership.objects.count() == rows_before
    event = watch.only("membership.removed", actor=admin, target=membership, exercise=exercise)
    assert event.details["user_id"] == uk_officer.pk


def test_removing_a_member_closes_their_sockets_after_commit(
    admin: User,
    exercise: Exercise,
    room: Room,
    lane_room: Room,
    uk_officer: User,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as pending:
        service.remove_member(actor=admin, membership=membership_of(uk_officer, exercise))
        assert captured_events.sent == []  # nothing leaves before the commit
    for callback in pending:
        callback()
    assert captured_events.sent == [
        (
            events.user_group(uk_officer.pk),
            events.user_revoked(exercise_id=exercise.pk, room_ids=sorted([room.pk, lane_room.pk])),
        )
    ]
    assert captured_events.sent[0][1]["code"] == 4403


def test_a_removed_member_loses_access_to_the_rooms(
    admin: User, exercise: Exercise, room: Room, uk_officer: User
) -> None:
    assert access_room(uk_officer, room.pk).membership is not None
    service.remove_member(actor=admin, membership=membership_of(uk_officer, exercise))
    with pytest.raises(AccessDenied):
        access_room(uk_officer, room.pk)


def test_removing_twice_is_a_conflict_and_sends_nothing(
    admin: User,
    exercise: Exercise,
    room: Room,
    uk_officer: User,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    membership = membership_of(uk_officer, exercise)
    service.remove_member(actor=admin, membership=membership)
    watch = AuditWatch()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Conflict):
        service.remove_member(actor=admin, membership=membership)
    assert captured_events.sent == []
    assert watch.new() == []


@pytest.mark.parametrize("name", NON_PROVISIONERS)
def test_only_admins_remove_members(
    request: pytest.FixtureRequest,
    name: str,
    exercise: Exercise,
    gz_officer: User,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    membership = membership_of(gz_officer, exercise)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PermissionDenied):
        service.remove_member(actor=request.getfixturevalue(name), membership=membership)
    membership.refresh_from_db()
    assert membership.removed_at is None
    assert captured_events.sent == []


# --- roles ----------------------------------------------------------------------------------------


def test_an_admin_changes_a_role_and_the_event_says_from_and_to(
    admin: User, exercise: Exercise, gz_officer: User
) -> None:
    membership = membership_of(gz_officer, exercise)
    watch = AuditWatch()
    service.change_role(actor=admin, membership=membership, role=GroupRole.COORDINATOR)
    membership.refresh_from_db()
    assert membership.role == GroupRole.COORDINATOR
    event = watch.only("membership.role_changed", actor=admin, target=membership, exercise=exercise)
    assert (event.details["role_from"], event.details["role_to"]) == ("member", "coordinator")


def test_changing_to_the_same_role_or_an_unknown_one_is_refused(
    admin: User, exercise: Exercise, gz_officer: User
) -> None:
    membership = membership_of(gz_officer, exercise)
    with pytest.raises(Invalid, match="already member"):
        service.change_role(actor=admin, membership=membership, role=GroupRole.MEMBER)
    with pytest.raises(Invalid, match="Unknown role"):
        service.change_role(actor=admin, membership=membership, role="superuser")


def test_a_removed_membership_cannot_change_role(
    admin: User, exercise: Exercise, gz_officer: User
) -> None:
    membership = membership_of(gz_officer, exercise)
    service.remove_member(actor=admin, membership=membership)
    with pytest.raises(Conflict, match="already removed"):
        service.change_role(actor=admin, membership=membership, role=GroupRole.OBSERVER)


@pytest.mark.parametrize("name", NON_PROVISIONERS)
def test_only_admins_change_roles(
    request: pytest.FixtureRequest, name: str, exercise: Exercise, gz_officer: User
) -> None:
    membership = membership_of(gz_officer, exercise)
    with pytest.raises(PermissionDenied):
        service.change_role(
            actor=request.getfixturevalue(name), membership=membership, role=GroupRole.COORDINATOR
        )
    membership.refresh_from_db()
    assert membership.role == GroupRole.MEMBER


def test_an_observer_made_member_can_post_and_a_member_made_observer_cannot(
    admin: User, exercise: Exercise, room: Room, gz_observer: User, gz_officer: User
) -> None:
    service.change_role(
        actor=admin, membership=membership_of(gz_observer, exercise), role=GroupRole.MEMBER
    )
    service.change_role(
        actor=admin, membership=membership_of(gz_officer, exercise), role=GroupRole.OBSERVER
    )
    require_can_post(access_room(gz_observer, room.pk))
    with pytest.raises(PermissionDenied, match="Observers can read but not post"):
        require_can_post(access_room(gz_officer, room.pk))


def test_a_user_role_is_not_a_group_role(admin: User, exercise: Exercise, gz_officer: User) -> None:
    with pytest.raises(Invalid):
        service.change_role(
            actor=admin, membership=membership_of(gz_officer, exercise), role=Role.ADMIN
        )
