"""Exercises and rooms: creation, edits, the status machine, who may provision, the demo."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from liaison import events, selectors
from liaison.access import access_exercise, access_managed_exercise, access_room
from liaison.errors import AccessDenied, Conflict, Invalid, PermissionDenied
from liaison.models import (
    Agency,
    AuditEvent,
    Exercise,
    ExerciseStatus,
    GroupRole,
    Membership,
    Room,
    User,
)
from liaison.services import exercises as service
from liaison.services import invitations, memberships, rooms
from liaison.services.demo import load_demo
from tests.factories import AgencyFactory, ExerciseFactory, UserFactory
from tests.groups_support import NON_PROVISIONERS, AuditWatch

pytestmark = pytest.mark.django_db

START = dt.datetime(2030, 7, 1, 8, 0, tzinfo=dt.UTC)
END = dt.datetime(2030, 9, 30, 18, 0, tzinfo=dt.UTC)


def new_exercise(actor: User, agencies: list[Agency], **overrides: Any) -> Exercise:
    arguments: dict[str, Any] = {
        "actor": actor,
        "code": "CFE-2026-07",
        "title": "Plastic waste, Felixstowe to Nansha",
        "agencies": agencies,
        "starts_at": START,
        "ends_at": END,
        "commodity_focus": "Plastic waste",
        "hs_codes": ["3915", "3915.10"],
        "lanes": ["Felixstowe–Nansha sea lane"],
        "retention_days": 730,
    }
    arguments.update(overrides)
    return service.create_exercise(**arguments)


def draft(admin: User, agencies: list[Agency], **overrides: Any) -> Exercise:
    return ExerciseFactory(
        code=overrides.pop("code", "CFE-DRAFT"),
        status=overrides.pop("status", ExerciseStatus.DRAFT),
        created_by=admin,
        agencies=agencies,
        **overrides,
    )


# --- creating -------------------------------------------------------------------------------------


def test_an_admin_creates_a_draft_exercise_with_a_general_room(
    admin: User, hmrc: Agency, gacc: Agency
) -> None:
    watch = AuditWatch()
    exercise = new_exercise(admin, [hmrc, gacc], code=" cfe-2026-07 ")

    exercise.refresh_from_db()
    assert exercise.code == "CFE-2026-07"
    assert exercise.status == ExerciseStatus.DRAFT
    assert exercise.hs_codes == ["3915", "391510"]
    assert exercise.lanes == ["Felixstowe–Nansha sea lane"]
    assert set(exercise.agencies.values_list("code", flat=True)) == {"hmrc", "gacc-gz"}
    assert exercise.retention_days == 730
    assert exercise.created_by == admin
    assert list(exercise.rooms.values_list("name", flat=True)) == ["general"]
    event = watch.only("exercise.created", actor=admin, target=exercise, exercise=exercise)
    assert event.details["general_room_id"] == exercise.rooms.get().pk
    assert event.details["agencies"] == ["gacc-gz", "hmrc"]


def test_a_second_exercise_with_the_same_code_is_a_conflict(admin: User, hmrc: Agency) -> None:
    new_exercise(admin, [hmrc])
    watch = AuditWatch()
    with pytest.raises(Conflict, match="already exists") as caught:
        new_exercise(admin, [hmrc], code="cfe-2026-07")
    assert caught.value.field == "code"
    assert Exercise.objects.count() == 1
    assert watch.new() == []


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"code": "CFE 2026/07"}, "code", "letters, digits and single hyphens"),
        ({"code": "C"}, "code", "3 to 40"),
        ({"title": "   "}, "title", "needs a title"),
        ({"hs_codes": ["39AB"]}, "hs_codes", "not an HS code prefix"),
        ({"hs_codes": ["3"]}, "hs_codes", "2 to 10 digits"),
        ({"agencies": []}, "agencies", "at least one"),
        ({"ends_at": START}, "ends_at", "end after it starts"),
        ({"starts_at": dt.datetime(2030, 7, 1, 8, 0)}, "starts_at", "time zone"),
        ({"retention_days": 0}, "retention_days", "from 1 to 3650"),
        ({"retention_days": 99999}, "retention_days", "from 1 to 3650"),
        ({"lanes": ["x" * 121]}, "lanes", "longer than 120"),
    ],
)
def test_bad_exercise_input_is_refused_with_the_field_named(
    admin: User, hmrc: Agency, overrides: dict[str, Any], field: str, message: str
) -> None:
    agencies = overrides.pop("agencies", [hmrc])
    with pytest.raises(Invalid, match=message) as caught:
        new_exercise(admin, agencies, **overrides)
    assert caught.value.field == field
    assert not Exercise.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("name", NON_PROVISIONERS)
def test_only_admins_create_exercises(
    request: pytest.FixtureRequest, name: str, hmrc: Agency
) -> None:
    actor = request.getfixturevalue(name)
    before = Exercise.objects.count()
    with pytest.raises(PermissionDenied):
        new_exercise(actor, [hmrc])
    assert Exercise.objects.count() == before


def test_a_disabled_admin_cannot_provision(hmrc: Agency) -> None:
    former = UserFactory(email="gone@hmrc.example", role="admin", agency=hmrc, is_active=False)
    with pytest.raises(PermissionDenied):
        new_exercise(former, [hmrc])


# --- editing --------------------------------------------------------------------------------------


def test_an_admin_edits_an_exercise_and_one_event_names_the_changes(
    admin: User, exercise: Exercise, hmrc: Agency, ukbf: Agency, gacc: Agency
) -> None:
    extra = AgencyFactory(code="nl-customs", name="Dutch Customs")
    watch = AuditWatch()
    service.update_exercise(
        actor=admin,
        exercise=exercise,
        title="Solid waste CFE, phase 2",
        hs_codes=["4707"],
        agencies=[hmrc, ukbf, gacc, extra],
        ends_at=exercise.ends_at + dt.timedelta(days=10),
    )
    exercise.refresh_from_db()
    assert exercise.title == "Solid waste CFE, phase 2"
    assert exercise.hs_codes == ["4707"]
    assert exercise.agencies.filter(code="nl-customs").exists()
    event = watch.only("exercise.updated", actor=admin, target=exercise, exercise=exercise)
    assert set(event.details["changed"]) == {"title", "hs_codes", "ends_at"}
    assert event.details["agencies"] == {"added": ["nl-customs"], "removed": []}


def test_an_edit_that_changes_nothing_is_refused(admin: User, exercise: Exercise) -> None:
    with pytest.raises(Invalid, match="Nothing to change"):
        service.update_exercise(actor=admin, exercise=exercise, title=exercise.title)


def test_the_code_can_change_only_while_the_exercise_is_a_draft(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    with pytest.raises(Invalid, match="only be changed while the exercise is a draft"):
        service.update_exercise(actor=admin, exercise=exercise, code="CFE-RENAMED")
    planned = draft(admin, [hmrc])
    service.update_exercise(actor=admin, exercise=planned, code="cfe-renamed")
    planned.refresh_from_db()
    assert planned.code == "CFE-RENAMED"


def test_an_agency_with_current_members_cannot_be_dropped(
    admin: User, exercise: Exercise, uk_officer: User, hmrc: Agency, gacc: Agency
) -> None:
    with pytest.raises(Invalid, match="hmrc still has members") as caught:
        service.update_exercise(actor=admin, exercise=exercise, agencies=[gacc])
    assert caught.value.field == "agencies"
    assert exercise.agencies.filter(pk=hmrc.pk).exists()


def test_an_edit_that_ends_before_the_start_is_refused(admin: User, exercise: Exercise) -> None:
    with pytest.raises(Invalid, match="end after it starts"):
        service.update_exercise(
            actor=admin, exercise=exercise, ends_at=exercise.starts_at - dt.timedelta(hours=1)
        )


@pytest.mark.parametrize("name", NON_PROVISIONERS)
def test_only_admins_edit_exercises(
    request: pytest.FixtureRequest, name: str, exercise: Exercise
) -> None:
    actor = request.getfixturevalue(name)
    with pytest.raises(PermissionDenied):
        service.update_exercise(actor=actor, exercise=exercise, title="Taken over")
    exercise.refresh_from_db()
    assert exercise.title == "Solid waste CFE"


# --- rooms ----------------------------------------------------------------------------------------


def test_an_admin_adds_a_lane_room_with_one_audit_event(admin: User, exercise: Exercise) -> None:
    watch = AuditWatch()
    room = rooms.add_room(
        actor=admin, exercise=exercise, name="Felixstowe-Nansha", topic="Sea lane"
    )
    assert room.name == "felixstowe-nansha"
    assert room.title == "Felixstowe nansha"
    assert room.exercise == exercise
    assert room.created_by == admin
    watch.only("room.created", actor=admin, target=room, exercise=exercise)


def test_a_room_name_must_be_a_slug_and_unique_in_its_exercise(
    admin: User, exercise: Exercise, room: Room, other_exercise: Exercise
) -> None:
    with pytest.raises(Invalid, match="lower-case letters") as caught:
        rooms.add_room(actor=admin, exercise=exercise, name="Felixstowe / Nansha")
    assert "felixstowe-nansha" in caught.value.detail
    with pytest.raises(Conflict, match="already has a room named general"):
        rooms.add_room(actor=admin, exercise=exercise, name="general")
    # The same name in another exercise is another room.
    assert rooms.add_room(actor=admin, exercise=other_exercise, name="general").pk != room.pk


@pytest.mark.parametrize("name", NON_PROVISIONERS)
def test_only_admins_add_rooms(
    request: pytest.FixtureRequest, name: str, exercise: Exercise
) -> None:
    actor = request.getfixturevalue(name)
    with pytest.raises(PermissionDenied):
        rooms.add_room(actor=actor, exercise=exercise, name="side-channel")
    assert not Room.objects.filter(name="side-channel").exists()


# --- the status machine ---------------------------------------------------------------------------


def test_an_exercise_runs_from_draft_to_active_to_closed_to_archived(
    admin: User, hmrc: Agency, django_capture_on_commit_callbacks: Any
) -> None:
    exercise = draft(admin, [hmrc])
    for run, status, action in [
        (service.activate_exercise, ExerciseStatus.ACTIVE, "exercise.activated"),
        (service.close_exercise, ExerciseStatus.CLOSED, "exercise.closed"),
        (service.archive_exercise, ExerciseStatus.ARCHIVED, "exercise.archived"),
    ]:
        watch = AuditWatch()
        with django_capture_on_commit_callbacks(execute=True):
            run(actor=admin, exercise=exercise)
        exercise.refresh_from_db()
        assert exercise.status == status
        event = watch.only(action, actor=admin, target=exercise, exercise=exercise)
        assert event.details["status_to"] == status
    assert exercise.closed_at is not None
    assert exercise.archived_at is not None


@pytest.mark.parametrize(
    ("status", "run", "message"),
    [
        (ExerciseStatus.DRAFT, service.close_exercise, "only an active exercise can be closed"),
        (ExerciseStatus.DRAFT, service.archive_exercise, "only a closed exercise"),
        (ExerciseStatus.ACTIVE, service.activate_exercise, "only a draft exercise"),
        (ExerciseStatus.ACTIVE, service.archive_exercise, "only a closed exercise"),
        (ExerciseStatus.CLOSED, service.activate_exercise, "only a draft exercise"),
        (ExerciseStatus.ARCHIVED, service.activate_exercise, "only a draft exercise"),
        (ExerciseStatus.ARCHIVED, service.close_exercise, "only an active exercise"),
    ],
)
def test_the_status_machine_never_skips_or_goes_back(
    admin: User, hmrc: Agency, status: str, run: Any, message: str
) -> None:
    exercise = draft(admin, [hmrc], status=status)
    with pytest.raises(Conflict, match=message):
        run(actor=admin, exercise=exercise)
    exercise.refresh_from_db()
    assert exercise.status == status
    assert not AuditEvent.objects.exists()


def test_an_exercise_that_has_ended_cannot_be_activated(admin: User, hmrc: Agency) -> None:
    past = timezone.now() - dt.timedelta(days=30)
    exercise = draft(admin, [hmrc], starts_at=past, ends_at=past + dt.timedelta(days=1))
    with pytest.raises(Invalid, match="move its end date"):
        service.activate_exercise(actor=admin, exercise=exercise)


@pytest.mark.parametrize("name", NON_PROVISIONERS)
def test_only_admins_activate_close_or_archive(
    request: pytest.FixtureRequest, name: str, exercise: Exercise
) -> None:
    actor = request.getfixturevalue(name)
    with pytest.raises(PermissionDenied):
        service.close_exercise(actor=actor, exercise=exercise)
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.ACTIVE


def test_closing_tells_every_room_to_close_its_sockets(
    admin: User,
    exercise: Exercise,
    room: Room,
    lane_room: Room,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        service.close_exercise(actor=admin, exercise=exercise)
    # First the notice of the closing, then the order to close.
    for each in (room, lane_room):
        notice, closing = captured_events.to_group(events.room_group(each.pk))
        assert events.frame_of(notice)["message"]["kind"] == "system"
        assert closing == events.room_closed(room_id=each.pk, status="closed")


def test_archiving_tells_every_room_too(
    admin: User,
    exercise: Exercise,
    room: Room,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    Exercise.objects.filter(pk=exercise.pk).update(status=ExerciseStatus.CLOSED)
    with django_capture_on_commit_callbacks(execute=True):
        service.archive_exercise(actor=admin, exercise=exercise)
    notice, closing = captured_events.to_group(events.room_group(room.pk))
    assert events.frame_of(notice)["message"]["kind"] == "system"
    assert closing == events.room_closed(room_id=room.pk, status="archived")


def test_a_refused_transition_publishes_nothing(
    admin: User,
    exercise: Exercise,
    room: Room,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Conflict):
        service.archive_exercise(actor=admin, exercise=exercise)
    assert captured_events.sent == []


def test_a_closed_exercise_refuses_every_change(
    admin: User,
    exercise: Exercise,
    room: Room,
    uk_officer: User,
    hmrc: Agency,
) -> None:
    issued = invitations.create_invitation(
        actor=admin, exercise=exercise, email="new@hmrc.example", agency=hmrc
    )
    membership = Membership.objects.get(exercise=exercise, user=uk_officer)
    newcomer = UserFactory(email="late@hmrc.example", agency=hmrc)
    service.close_exercise(actor=admin, exercise=exercise)
    watch = AuditWatch()

    attempts = [
        lambda: service.update_exercise(actor=admin, exercise=exercise, title="Reopened"),
        lambda: rooms.add_room(actor=admin, exercise=exercise, name="after-hours"),
        lambda: invitations.create_invitation(
            actor=admin, exercise=exercise, email="late@hmrc.example", agency=hmrc
        ),
        lambda: invitations.revoke_invitation(actor=admin, invitation=issued.invitation),
        lambda: memberships.add_member(actor=admin, exercise=exercise, user=newcomer),
        lambda: memberships.remove_member(actor=admin, membership=membership),
        lambda: memberships.change_role(
            actor=admin, membership=membership, role=GroupRole.OBSERVER
        ),
    ]
    for attempt in attempts:
        with pytest.raises(Conflict, match="is closed: it is read-only"):
            attempt()
    exercise.refresh_from_db()
    membership.refresh_from_db()
    assert exercise.title == "Solid waste CFE"
    assert membership.removed_at is None
    assert membership.role == GroupRole.MEMBER
    assert exercise.rooms.count() == 1
    assert watch.new() == []


# --- who sees what --------------------------------------------------------------------------------


def test_an_archived_exercise_is_visible_to_auditors_only(
    admin: User, exercise: Exercise, room: Room, uk_officer: User, auditor: User
) -> None:
    Exercise.objects.filter(pk=exercise.pk).update(status=ExerciseStatus.ARCHIVED)
    with pytest.raises(AccessDenied):
        access_exercise(uk_officer, exercise.pk)
    with pytest.raises(AccessDenied):
        access_room(uk_officer, room.pk)
    assert exercise not in selectors.exercises_for(uk_officer)
    assert exercise in selectors.exercises_for(auditor)
    assert access_exercise(auditor, exercise.pk)[0] == exercise


def test_members_see_their_own_exercises_only(
    exercise: Exercise, other_exercise: Exercise, uk_officer: User, outsider: User
) -> None:
    assert list(selectors.exercises_for(uk_officer)) == [exercise]
    assert list(selectors.exercises_for(outsider)) == [other_exercise]


def test_a_removed_member_no_longer_sees_the_exercise(
    admin: User, exercise: Exercise, uk_officer: User
) -> None:
    membership = Membership.objects.get(exercise=exercise, user=uk_officer)
    memberships.remove_member(actor=admin, membership=membership)
    assert not selectors.exercises_for(uk_officer).exists()


def test_coordinators_manage_only_their_own_exercises(
    exercise: Exercise, other_exercise: Exercise, uk_coordinator: User, admin: User
) -> None:
    assert list(selectors.managed_exercises(uk_coordinator)) == [exercise]
    assert access_managed_exercise(uk_coordinator, exercise.pk) == exercise
    with pytest.raises(AccessDenied):
        access_managed_exercise(uk_coordinator, other_exercise.pk)
    assert set(selectors.managed_exercises(admin)) == {exercise, other_exercise}


@pytest.mark.parametrize("name", ["uk_officer", "gz_observer", "auditor", "outsider"])
def test_nobody_else_manages_an_exercise(
    request: pytest.FixtureRequest, name: str, exercise: Exercise
) -> None:
    with pytest.raises(AccessDenied):
        access_managed_exercise(request.getfixturevalue(name), exercise.pk)


# --- the demo -------------------------------------------------------------------------------------


def test_the_demo_exercise_has_two_rooms_the_four_officers_and_not_the_outsider() -> None:
    world = load_demo()
    [described] = world["exercises"]
    exercise = Exercise.objects.get(code="CFE-DEMO-WASTE")
    assert described["id"] == exercise.pk
    assert described["status"] == "active"
    assert set(described) == {"id", "code", "status", "members", "rooms"}
    assert [room["name"] for room in described["rooms"]] == ["general", "felixstowe-nansha"]
    assert {room["id"] for room in described["rooms"]} == set(
        exercise.rooms.values_list("pk", flat=True)
    )
    assert sorted(described["members"]) == [
        "chen.jing@gz.customs.example",
        "james.carter@ukbf.example",
        "li.wei@gz.customs.example",
        "olivia.hughes@hmrc.example",
    ]
    assert "sam.outsider@ukbf.example" not in described["members"]
    assert set(exercise.agencies.values_list("code", flat=True)) == {"hmrc", "ukbf", "gacc-gz"}
    coordinators = Membership.objects.filter(exercise=exercise, role=GroupRole.COORDINATOR)
    assert [m.user.agency.country for m in coordinators] == ["GB"]
    # Built through the services: the audit log tells how.
    assert AuditEvent.objects.filter(action="exercise.created", exercise=exercise).count() == 1
    assert AuditEvent.objects.filter(action="membership.added", exercise=exercise).count() == 4


def test_the_demo_exercise_is_idempotent() -> None:
    first = load_demo()["exercises"]
    events_before = AuditEvent.objects.count()
    second = load_demo()["exercises"]
    assert first == second
    assert AuditEvent.objects.count() == events_before
    assert Exercise.objects.filter(code="CFE-DEMO-WASTE").count() == 1
