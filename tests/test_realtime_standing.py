"""A socket's standing: the session, the person and the room read in one statement, and judged
by the same rules as a page (``sessions.socket_session_problem_of``, ``access.room_access_of``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison.models import (
    AuditEvent,
    ExerciseStatus,
    GroupRole,
    Membership,
    Room,
    User,
    UserSession,
)
from liaison.realtime import admission, owners
from liaison.realtime.standing import read_standing
from liaison.services import sessions

pytestmark = pytest.mark.django_db


def _admit(key: str | None, user: User, room_id: int, channel: str = "c1") -> admission.Admission:
    return admission.admit_socket(
        session_key=key, user_id=user.pk, room_id=room_id, channel_name=channel, ip="192.0.2.1"
    )


def _key(client: Client, user: User, login_as: Any) -> str:
    login_as(client, user)
    return client.session.session_key


def test_one_statement_reads_the_session_the_person_and_the_room(
    client: Client, uk_officer: User, room: Room, login_as: Any
) -> None:
    key = _key(client, uk_officer, login_as)
    with CaptureQueriesContext(connection) as queries:
        standing = read_standing(session_key=key, room_id=room.pk)
    assert len(queries.captured_queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert standing.user == uk_officer
        assert standing.user.agency == uk_officer.agency  # loaded, not read again
        assert standing.room == room
        assert standing.room.exercise == room.exercise
        assert standing.membership.role == GroupRole.MEMBER
        assert standing.tracked.created_at.tzinfo is not None  # converted, also on SQLite
        problem = standing.session_problem(uk_officer.pk)
    assert problem is None
    assert queries.captured_queries == []


def test_an_admitted_socket_gets_its_grant_and_its_owner_is_remembered(
    client: Client, uk_officer: User, room: Room, login_as: Any
) -> None:
    key = _key(client, uk_officer, login_as)
    assert owners.read_owner(session_key=key) == uk_officer.pk
    admitted = _admit(key, uk_officer, room.pk)
    assert admitted.grant is not None
    assert (admitted.grant.user_id, admitted.grant.room_id, admitted.grant.can_post) == (
        uk_officer.pk,
        room.pk,
        True,
    )
    assert admitted.grant.me["agency"] == uk_officer.agency.name
    assert admitted.online == [uk_officer.pk]
    assert owners.known(key) == uk_officer.pk


def _end(key: str, user: User) -> None:
    UserSession.objects.filter(session_key=key).update(ended_at=timezone.now())


def _expire(key: str, user: User) -> None:
    Session.objects.filter(session_key=key).update(expire_date=timezone.now())


def _tamper(key: str, user: User) -> None:
    Session.objects.filter(session_key=key).update(session_data="not-signed-by-us")


def _disable(key: str, user: User) -> None:
    User.objects.filter(pk=user.pk).update(is_active=False)


def _set_password(key: str, user: User) -> None:
    user.set_password("another-long-password-77")
    user.save()


def _reset_second_factor(key: str, user: User) -> None:
    TOTPDevice.objects.filter(user=user).update(confirmed=False)


def _unverify(key: str, user: User) -> None:
    store = sessions.session_store(key)
    del store[DEVICE_ID_SESSION_KEY]
    store.save()


def _revoke_all(key: str, user: User) -> None:
    User.objects.filter(pk=user.pk).update(
        sessions_valid_after=timezone.now() + dt.timedelta(seconds=1)
    )


@pytest.mark.parametrize(
    "change",
    [_end, _expire, _tamper, _disable, _set_password, _reset_second_factor, _unverify, _revoke_all],
)
def test_every_session_problem_refuses_with_4401(
    change: Any, client: Client, uk_officer: User, room: Room, login_as: Any
) -> None:
    key = _key(client, uk_officer, login_as)
    change(key, uk_officer)
    admitted = _admit(key, uk_officer, room.pk)
    assert (admitted.grant, admitted.close_code) == (None, admission.CLOSE_NOT_AUTHENTICATED)
    assert admission.socket_person(session_key=key) == admission.CLOSE_NOT_AUTHENTICATED


def test_a_session_of_someone_else_or_no_session_is_refused(
    client: Client, uk_officer: User, gz_officer: User, room: Room, login_as: Any
) -> None:
    key = _key(client, uk_officer, login_as)
    admitted = _admit(key, gz_officer, room.pk)
    assert (admitted.close_code, admitted.reason) == (
        admission.CLOSE_NOT_AUTHENTICATED,
        sessions.OTHER_USER,
    )
    for missing in (None, "", "no-such-session-key", "k" * 500):
        assert _admit(missing, uk_officer, room.pk).close_code == admission.CLOSE_NOT_AUTHENTICATED
        assert owners.read_owner(session_key=missing) is None
        assert admission.socket_person(session_key=missing) == admission.CLOSE_NOT_AUTHENTICATED


def test_rooms_the_person_may_not_open_are_refused_alike_and_audited(
    client: Client, uk_officer: User, room: Room, other_exercise: Any, login_as: Any
) -> None:
    key = _key(client, uk_officer, login_as)
    from tests.factories import RoomFactory

    elsewhere = RoomFactory(exercise=other_exercise, name="elsewhere")
    for room_id in (elsewhere.pk, 987654321):
        admitted = _admit(key, uk_officer, room_id)
        assert (admitted.grant, admitted.close_code) == (None, admission.CLOSE_FORBIDDEN)
    Membership.objects.filter(user=uk_officer).update(removed_at=timezone.now())
    assert _admit(key, uk_officer, room.pk).close_code == admission.CLOSE_FORBIDDEN
    denied = AuditEvent.objects.filter(action="access.denied", actor=uk_officer)
    assert denied.count() == 3


def test_observers_and_closed_exercises_read_but_cannot_post(
    client: Client, uk_officer: User, room: Room, login_as: Any
) -> None:
    key = _key(client, uk_officer, login_as)
    Membership.objects.filter(user=uk_officer).update(role=GroupRole.OBSERVER)
    assert _admit(key, uk_officer, room.pk, "c1").grant.can_post is False
    Membership.objects.filter(user=uk_officer).update(role=GroupRole.MEMBER)
    room.exercise.status = ExerciseStatus.CLOSED
    room.exercise.save(update_fields=["status"])
    grant = _admit(key, uk_officer, room.pk, "c2").grant
    assert (grant.can_post, grant.role) == (False, GroupRole.MEMBER)


def test_auditors_read_every_room_without_belonging(
    client: Client, auditor: User, room: Room, login_as: Any
) -> None:
    key = _key(client, auditor, login_as)
    grant = _admit(key, auditor, room.pk).grant
    assert (grant.role, grant.can_post) == (admission.AUDITOR, False)


def test_a_recheck_reads_the_standing_again(
    client: Client, uk_officer: User, room: Room, login_as: Any
) -> None:
    key = _key(client, uk_officer, login_as)
    grant = _admit(key, uk_officer, room.pk).grant
    Room.objects.filter(pk=room.pk).update(access_epoch=5)
    with CaptureQueriesContext(connection) as queries:
        refreshed = admission.recheck_socket(user=uk_officer, grant=grant)
    assert len(queries.captured_queries) == 1
    assert refreshed.epoch == 5
    Membership.objects.filter(user=uk_officer).update(removed_at=timezone.now())
    assert admission.recheck_socket(user=uk_officer, grant=grant) == admission.CLOSE_FORBIDDEN
