"""The provisioning commands: exercise, invite, members (with --json for scripts)."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from liaison.models import (
    Agency,
    AuditEvent,
    Exercise,
    ExerciseStatus,
    GroupRole,
    Invitation,
    Membership,
    Room,
    User,
)
from liaison.services.invitations import accept_invitation, hash_token
from tests.factories import UserFactory
from tests.groups_support import AuditWatch

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


CREATE = [
    "exercise",
    "create",
    "--code",
    "cfe-2026-07",
    "--title",
    "Plastic waste",
    "--starts",
    "2030-07-01",
    "--ends",
    "2030-09-30T18:00+01:00",
    "--agency",
    "hmrc",
    "--agency",
    "gacc-gz",
    "--hs-code",
    "3915",
    "--lane",
    "Felixstowe–Nansha sea lane",
]


# --- exercise -------------------------------------------------------------------------------------


def test_exercise_create_prints_json_and_is_audited_under_the_first_admin(
    admin: User, hmrc: Agency, gacc: Agency
) -> None:
    later_admin = UserFactory(email="second@hmrc.example", role="admin", agency=hmrc)
    watch = AuditWatch()
    body = run_json(*CREATE)["exercise"]
    exercise = Exercise.objects.get(code="CFE-2026-07")
    assert body["id"] == exercise.pk
    assert body["status"] == "draft"
    assert body["starts_at"] == "2030-07-01T00:00:00Z"
    assert body["ends_at"] == "2030-09-30T17:00:00Z"
    assert body["agencies"] == ["gacc-gz", "hmrc"]
    assert body["rooms"] == [{"id": exercise.rooms.get().pk, "name": "general"}]
    assert exercise.hs_codes == ["3915"]
    event = watch.only("exercise.created", actor=admin, target=exercise, exercise=exercise)
    assert event.actor != later_admin


def test_exercise_create_acts_as_the_named_admin(admin: User, hmrc: Agency, gacc: Agency) -> None:
    second = UserFactory(email="second@hmrc.example", role="admin", agency=hmrc)
    run(*CREATE, "--actor", "Second@HMRC.example", "--activate")
    exercise = Exercise.objects.get(code="CFE-2026-07")
    assert exercise.status == ExerciseStatus.ACTIVE
    assert list(AuditEvent.objects.filter(exercise=exercise).values_list("action", "actor")) == [
        ("exercise.created", second.pk),
        ("exercise.activated", second.pk),
    ]


@pytest.mark.parametrize("actor", ["olivia@hmrc.example", "auditor@hmrc.example", "x@y.example"])
def test_the_actor_must_be_an_active_admin(
    actor: str, admin: User, auditor: User, uk_officer: User, hmrc: Agency, gacc: Agency
) -> None:
    with pytest.raises(CommandError, match="no active administrator"):
        run(*CREATE, "--actor", actor)
    assert not Exercise.objects.filter(code="CFE-2026-07").exists()


def test_commands_need_an_administrator_to_exist(hmrc: Agency, gacc: Agency) -> None:
    with pytest.raises(CommandError, match="No active administrator"):
        run(*CREATE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--agency", "atlantis"], "No agency has the code 'atlantis'"),
        (["--starts", "soon"], "--starts 'soon'"),
        (["--code", "CFE-TEST-WASTE"], "already exists"),
        (["--ends", "2030-06-01"], "end after it starts"),
    ],
)
def test_bad_create_arguments_are_clear_errors(
    admin: User, exercise: Exercise, change: list[str], message: str
) -> None:
    args = list(CREATE)
    option, value = change
    args[args.index(option) + 1] = value
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_activate_close_archive_and_list(
    admin: User, hmrc: Agency, gacc: Agency, exercise: Exercise
) -> None:
    run(*CREATE)
    for action, status in [("activate", "active"), ("close", "closed"), ("archive", "archived")]:
        body = run_json("exercise", action, "CFE-2026-07")
        assert body["exercise"]["status"] == status
    assert AuditEvent.objects.filter(action__startswith="exercise.").count() == 4
    with pytest.raises(CommandError, match="only a closed exercise can be archived"):
        run("exercise", "archive", "CFE-2026-07")
    listing = run_json("exercise", "list")["exercises"]
    assert {e["code"]: e["status"] for e in listing} == {
        "CFE-2026-07": "archived",
        "CFE-TEST-WASTE": "active",
    }
    only_active = run_json("exercise", "list", "--status", "active")["exercises"]
    assert [e["code"] for e in only_active] == ["CFE-TEST-WASTE"]
    assert "CFE-TEST-WASTE" in run("exercise", "list")


def test_add_room_command(admin: User, exercise: Exercise) -> None:
    body = run_json("exercise", "add-room", "CFE-TEST-WASTE", "--name", "felixstowe-nansha")
    room = Room.objects.get(exercise=exercise, name="felixstowe-nansha")
    assert body["room"]["id"] == room.pk
    assert AuditEvent.objects.filter(action="room.created").count() == 1


def test_an_unknown_exercise_code_is_named(admin: User) -> None:
    with pytest.raises(CommandError, match="No exercise has the code 'CFE-NOPE'"):
        run("exercise", "close", "CFE-NOPE")


# --- invite ---------------------------------------------------------------------------------------


def test_invite_prints_a_link_that_works_once(
    admin: User, exercise: Exercise, gacc: Agency
) -> None:
    output = run(
        "invite",
        "--exercise",
        "cfe-test-waste",
        "--email",
        "zhang@gz.example",
        "--agency",
        "gacc-gz",
    ).strip()
    assert output.startswith("http://127.0.0.1:8000/invite/")
    token = output.rstrip("/").rsplit("/", 1)[-1]
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hash_token(token)
    assert AuditEvent.objects.get(action="invitation.created").actor == admin
    membership = accept_invitation(
        token=token, display_name="Zhang Min", password="Nansha-container-check-2026"
    )
    assert membership.exercise == exercise


def test_invite_json_carries_the_invitation_and_link(
    admin: User, exercise: Exercise, gacc: Agency
) -> None:
    body = run_json(
        "invite",
        "--exercise",
        "CFE-TEST-WASTE",
        "--email",
        "zhang@gz.example",
        "--agency",
        "gacc-gz",
        "--role",
        "observer",
        "--ttl-hours",
        "12",
    )
    assert body["invitation"]["role"] == "observer"
    assert body["invitation"]["agency"] == "gacc-gz"
    assert body["url"].startswith("http://127.0.0.1:8000/invite/")
    assert body["emailed"] is False
    assert Invitation.objects.get().role == GroupRole.OBSERVER


def test_invite_refuses_an_agency_not_taking_part(admin: User, other_exercise: Exercise) -> None:
    with pytest.raises(CommandError, match="does not take part"):
        run(
            "invite",
            "--exercise",
            "CFE-TEST-OTHER",
            "--email",
            "x@hmrc.example",
            "--agency",
            "hmrc",
        )
    assert not Invitation.objects.exists()


def test_invite_can_send_the_email(
    admin: User, exercise: Exercise, gacc: Agency, mailoutbox: Any
) -> None:
    body = run_json(
        "invite",
        "--exercise",
        "CFE-TEST-WASTE",
        "--email",
        "zhang@gz.example",
        "--agency",
        "gacc-gz",
        "--send-email",
    )
    assert body["emailed"] is True
    assert body["url"] in mailoutbox[0].body


# --- members --------------------------------------------------------------------------------------


def test_members_list(admin: User, exercise: Exercise, uk_officer: User, gz_observer: User) -> None:
    members = run_json("members", "list", "--exercise", "CFE-TEST-WASTE")["members"]
    assert {(m["email"], m["role"]) for m in members} == {
        ("olivia@hmrc.example", "member"),
        ("chen@gz.example", "observer"),
    }
    assert "olivia@hmrc.example" in run("members", "list", "--exercise", "CFE-TEST-WASTE")


def test_members_remove_keeps_the_row_and_tells_the_sockets(
    admin: User,
    exercise: Exercise,
    room: Room,
    uk_officer: User,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        body = run_json(
            "members", "remove", "--exercise", "CFE-TEST-WASTE", "--email", "olivia@hmrc.example"
        )
    assert body["member"]["removed_at"] is not None
    membership = Membership.objects.get(user=uk_officer)
    assert membership.removed_by == admin
    assert captured_events.to_group(f"user.{uk_officer.pk}")[0]["type"] == "user.revoked"
    assert run_json("members", "list", "--exercise", "CFE-TEST-WASTE")["members"] == []
    with_removed = run_json("members", "list", "--exercise", "CFE-TEST-WASTE", "--all")
    assert [m["email"] for m in with_removed["members"]] == ["olivia@hmrc.example"]
    with pytest.raises(CommandError, match="is not a member"):
        run("members", "remove", "--exercise", "CFE-TEST-WASTE", "--email", "olivia@hmrc.example")


def test_members_role_and_add(
    admin: User, exercise: Exercise, uk_officer: User, hmrc: Agency
) -> None:
    body = run_json(
        "members",
        "role",
        "--exercise",
        "CFE-TEST-WASTE",
        "--email",
        "olivia@hmrc.example",
        "--role",
        "coordinator",
    )
    assert body["member"]["role"] == "coordinator"
    event = AuditEvent.objects.get(action="membership.role_changed")
    assert event.actor == admin
    UserFactory(email="direct@hmrc.example", agency=hmrc)
    run("members", "add", "--exercise", "CFE-TEST-WASTE", "--email", "direct@hmrc.example")
    assert Membership.objects.filter(user__email="direct@hmrc.example").exists()
    with pytest.raises(CommandError, match="already a member"):
        run("members", "add", "--exercise", "CFE-TEST-WASTE", "--email", "direct@hmrc.example")


def test_members_commands_refuse_a_closed_exercise(
    admin: User, exercise: Exercise, uk_officer: User
) -> None:
    Exercise.objects.filter(pk=exercise.pk).update(status=ExerciseStatus.CLOSED)
    with pytest.raises(CommandError, match="read-only"):
        run("members", "remove", "--exercise", "CFE-TEST-WASTE", "--email", "olivia@hmrc.example")
    assert Membership.objects.get(user=uk_officer).removed_at is None
