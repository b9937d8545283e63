"""The exercises and provisioning JSON API under /api/v1/."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

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
from liaison.services import invitations
from tests.factories import AgencyFactory, UserFactory
from tests.groups_support import AuditWatch

pytestmark = pytest.mark.django_db


def send(client: Client, method: str, url: str, body: Any = None, **extra: Any) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body or {})
    return getattr(client, method.lower())(url, data=data, content_type="application/json", **extra)


def api_error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "detail"} <= set(body["error"])
    return body["error"]


NEW_EXERCISE = {
    "code": "CFE-2026-07",
    "title": "Plastic waste",
    "commodity_focus": "Plastic scrap",
    "hs_codes": ["3915", "4707"],
    "lanes": ["Felixstowe–Nansha sea lane"],
    "agencies": ["hmrc", "gacc-gz"],
    "starts_at": "2030-07-01T08:00:00Z",
    "ends_at": "2030-09-30T18:00:00+08:00",
    "retention_days": 730,
}


# --- reading --------------------------------------------------------------------------------------


def test_the_api_needs_a_session(client: Client, exercise: Exercise) -> None:
    response = client.get("/api/v1/exercises")
    assert response.status_code == 401
    assert api_error(response)["code"] == "not_authenticated"


def test_an_officer_lists_their_exercises_with_rooms(
    client: Client,
    login_as: Any,
    gz_officer: User,
    exercise: Exercise,
    room: Room,
    lane_room: Room,
    other_exercise: Exercise,
) -> None:
    login_as(client, gz_officer)
    response = client.get("/api/v1/exercises")
    assert response.status_code == 200
    [listed] = response.json()["exercises"]
    assert listed["id"] == exercise.pk
    assert listed["code"] == "CFE-TEST-WASTE"
    assert listed["status"] == "active"
    assert listed["my_role"] == "member"
    assert [r["name"] for r in listed["rooms"]] == ["felixstowe-nansha", "general"]
    assert listed["starts_at"].endswith("Z")
    assert response["Cache-Control"] == "no-store"


def test_admins_and_auditors_list_every_exercise_they_may_see(
    client: Client,
    login_as: Any,
    admin: User,
    auditor: User,
    exercise: Exercise,
    other_exercise: Exercise,
) -> None:
    Exercise.objects.filter(pk=other_exercise.pk).update(status=ExerciseStatus.ARCHIVED)
    for user in (admin, auditor):
        login_as(client, user)
        codes = {e["code"] for e in client.get("/api/v1/exercises").json()["exercises"]}
        assert codes == {"CFE-TEST-WASTE", "CFE-TEST-OTHER"}


def test_a_removed_member_no_longer_lists_the_exercise(
    client: Client, login_as: Any, removed_coordinator: User, exercise: Exercise
) -> None:
    login_as(client, removed_coordinator)
    assert client.get("/api/v1/exercises").json() == {"exercises": []}
    assert client.get(f"/api/v1/exercises/{exercise.pk}").status_code == 404


def test_one_exercise_with_its_members(
    client: Client,
    login_as: Any,
    uk_officer: User,
    uk_coordinator: User,
    exercise: Exercise,
    room: Room,
) -> None:
    login_as(client, uk_officer)
    body = client.get(f"/api/v1/exercises/{exercise.pk}").json()["exercise"]
    assert body["code"] == "CFE-TEST-WASTE"
    assert {m["display_name"] for m in body["members"]} == {"Olivia Hughes", "James Carter"}
    assert all("email" not in m for m in body["members"])
    login_as(client, uk_coordinator)
    body = client.get(f"/api/v1/exercises/{exercise.pk}").json()["exercise"]
    assert {m["email"] for m in body["members"]} == {"olivia@hmrc.example", "james@ukbf.example"}


def test_another_exercises_id_is_a_404_like_a_missing_one(
    client: Client, login_as: Any, outsider: User, exercise: Exercise
) -> None:
    login_as(client, outsider)
    foreign = client.get(f"/api/v1/exercises/{exercise.pk}")
    missing = client.get("/api/v1/exercises/987654")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert api_error(foreign)["code"] == "not_found"
    for url in [
        f"/api/v1/exercises/{exercise.pk}/members",
        f"/api/v1/exercises/{exercise.pk}/invitations",
    ]:
        response = client.get(url)
        assert response.status_code == 404
        assert b"CFE-TEST-WASTE" not in response.content
    # Every refusal is on record, the missing id as much as the foreign ones.
    assert AuditEvent.objects.filter(action="access.denied", actor=outsider).count() == 4


# --- creating and changing exercises --------------------------------------------------------------


def test_an_admin_creates_an_exercise(
    client: Client, login_as: Any, admin: User, hmrc: Agency, gacc: Agency
) -> None:
    login_as(client, admin)
    watch = AuditWatch()
    response = send(client, "POST", "/api/v1/exercises", NEW_EXERCISE)
    assert response.status_code == 201
    body = response.json()["exercise"]
    exercise = Exercise.objects.get(code="CFE-2026-07")
    assert body["id"] == exercise.pk
    assert body["status"] == "draft"
    assert body["ends_at"] == "2030-09-30T10:00:00Z"
    assert [r["name"] for r in body["rooms"]] == ["general"]
    assert {a["code"] for a in body["agencies"]} == {"hmrc", "gacc-gz"}
    watch.only("exercise.created", actor=admin, target=exercise, exercise=exercise)


@pytest.mark.parametrize(
    ("change", "status", "field", "message"),
    [
        ({"starts_at": "2030-07-01T08:00:00"}, 400, "starts_at", "time zone offset"),
        ({"starts_at": "next tuesday"}, 400, "starts_at", "ISO 8601"),
        ({"agencies": ["hmrc", "atlantis"]}, 400, "agencies", "atlantis"),
        ({"retention_days": "many"}, 400, "retention_days", "whole number"),
        ({"colour": "blue"}, 400, "colour", "Unknown field"),
        ({"hs_codes": [3915]}, 400, "hs_codes", "list of strings"),
        ({"code": "CFE-TEST-WASTE"}, 409, "code", "already exists"),
    ],
)
def test_bad_exercise_requests_are_named(
    client: Client,
    login_as: Any,
    admin: User,
    exercise: Exercise,
    change: dict[str, Any],
    status: int,
    field: str,
    message: str,
) -> None:
    login_as(client, admin)
    response = send(client, "POST", "/api/v1/exercises", {**NEW_EXERCISE, **change})
    assert response.status_code == status
    error = api_error(response)
    assert error["field"] == field
    assert message in error["detail"]


def test_a_missing_field_and_malformed_json_are_400(
    client: Client, login_as: Any, admin: User, hmrc: Agency
) -> None:
    login_as(client, admin)
    body = {k: v for k, v in NEW_EXERCISE.items() if k != "title"}
    error = api_error(send(client, "POST", "/api/v1/exercises", body))
    assert error["detail"] == "title is required."
    response = send(client, "POST", "/api/v1/exercises", "{not json")
    assert response.status_code == 400
    assert "not valid JSON" in api_error(response)["detail"]


@pytest.mark.parametrize("name", ["uk_officer", "uk_coordinator", "auditor", "gz_observer"])
def test_non_admins_cannot_create_exercises(
    request: pytest.FixtureRequest, client: Client, login_as: Any, name: str, hmrc: Agency
) -> None:
    login_as(client, request.getfixturevalue(name))
    response = send(client, "POST", "/api/v1/exercises", NEW_EXERCISE)
    assert response.status_code == 403
    assert api_error(response)["code"] == "forbidden"
    assert not Exercise.objects.filter(code="CFE-2026-07").exists()


def test_unsafe_methods_need_the_csrf_token(
    login_as: Any, admin: User, hmrc: Agency, gacc: Agency
) -> None:
    client = login_as(Client(enforce_csrf_checks=True), admin)
    refused = send(client, "POST", "/api/v1/exercises", NEW_EXERCISE)
    assert refused.status_code == 403
    assert not Exercise.objects.exists()
    client.get("/manage/exercises/new/")  # a page with a form sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = send(client, "POST", "/api/v1/exercises", NEW_EXERCISE, HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201, accepted.content


def test_an_admin_edits_an_exercise(
    client: Client, login_as: Any, admin: User, exercise: Exercise
) -> None:
    login_as(client, admin)
    response = send(
        client, "PATCH", f"/api/v1/exercises/{exercise.pk}", {"title": "Phase 2", "lanes": []}
    )
    assert response.status_code == 200
    assert response.json()["exercise"]["title"] == "Phase 2"
    exercise.refresh_from_db()
    assert exercise.lanes == []
    assert AuditEvent.objects.filter(action="exercise.updated").count() == 1
    empty = send(client, "PATCH", f"/api/v1/exercises/{exercise.pk}", {})
    assert empty.status_code == 400


def test_a_member_gets_403_when_changing_an_exercise_they_can_see(
    client: Client, login_as: Any, uk_officer: User, exercise: Exercise
) -> None:
    login_as(client, uk_officer)
    response = send(client, "PATCH", f"/api/v1/exercises/{exercise.pk}", {"title": "Mine now"})
    assert response.status_code == 403
    exercise.refresh_from_db()
    assert exercise.title == "Solid waste CFE"


def test_the_status_machine_over_the_api(
    client: Client,
    login_as: Any,
    admin: User,
    exercise: Exercise,
    room: Room,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    login_as(client, admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, "POST", f"/api/v1/exercises/{exercise.pk}/close")
    assert response.status_code == 200
    assert response.json()["exercise"]["status"] == "closed"
    # The closing's notice in the room, then the order to close its sockets.
    assert [e["type"] for e in captured_events.to_group(f"room.{room.pk}")] == [
        "room.message.new",
        "room.closed",
    ]
    again = send(client, "POST", f"/api/v1/exercises/{exercise.pk}/close")
    assert again.status_code == 409
    assert api_error(again)["code"] == "conflict"
    room_on_closed = send(client, "POST", f"/api/v1/exercises/{exercise.pk}/rooms", {"name": "x"})
    assert room_on_closed.status_code == 409
    assert "read-only" in api_error(room_on_closed)["detail"]
    archived = send(client, "POST", f"/api/v1/exercises/{exercise.pk}/archive")
    assert archived.json()["exercise"]["status"] == "archived"
    assert client.get(f"/api/v1/exercises/{exercise.pk}/activate").status_code == 405


def test_an_admin_adds_a_room(
    client: Client, login_as: Any, admin: User, exercise: Exercise, room: Room
) -> None:
    login_as(client, admin)
    response = send(
        client,
        "POST",
        f"/api/v1/exercises/{exercise.pk}/rooms",
        {"name": "felixstowe-nansha", "title": "Sea lane"},
    )
    assert response.status_code == 201
    assert response.json()["room"]["name"] == "felixstowe-nansha"
    duplicate = send(client, "POST", f"/api/v1/exercises/{exercise.pk}/rooms", {"name": "general"})
    assert duplicate.status_code == 409


# --- invitations ----------------------------------------------------------------------------------


def test_invitations_are_created_listed_and_revoked(
    client: Client, login_as: Any, admin: User, exercise: Exercise, gacc: Agency
) -> None:
    login_as(client, admin)
    response = send(
        client,
        "POST",
        f"/api/v1/exercises/{exercise.pk}/invitations",
        {"email": "zhang.min@gz.example", "agency": "gacc-gz", "role": "observer", "ttl_hours": 24},
    )
    assert response.status_code == 201
    created = response.json()
    token = created["token"]
    assert created["url"] == f"http://testserver/invite/{token}/"
    assert created["invitation"]["state"] == "pending"
    invitation = Invitation.objects.get()
    listed = client.get(f"/api/v1/exercises/{exercise.pk}/invitations")
    assert [i["email"] for i in listed.json()["invitations"]] == ["zhang.min@gz.example"]
    assert token not in listed.content.decode()

    watch = AuditWatch()
    revoked = send(
        client, "POST", f"/api/v1/exercises/{exercise.pk}/invitations/{invitation.pk}/revoke"
    )
    assert revoked.status_code == 200
    assert revoked.json()["invitation"]["state"] == "revoked"
    watch.only("invitation.revoked", actor=admin, target=invitation, exercise=exercise)
    pending = client.get(f"/api/v1/exercises/{exercise.pk}/invitations?state=pending")
    assert pending.json() == {"invitations": []}
    bad_state = client.get(f"/api/v1/exercises/{exercise.pk}/invitations?state=lost")
    assert bad_state.status_code == 400


def test_an_invitation_to_a_non_participating_agency_is_a_400(
    client: Client, login_as: Any, admin: User, exercise: Exercise
) -> None:
    AgencyFactory(code="nl-customs", name="Dutch Customs")
    login_as(client, admin)
    response = send(
        client,
        "POST",
        f"/api/v1/exercises/{exercise.pk}/invitations",
        {"email": "jan@douane.example", "agency": "nl-customs"},
    )
    assert response.status_code == 400
    assert api_error(response)["field"] == "agency"


def test_a_coordinator_manages_invitations_of_their_exercise_only(
    client: Client,
    login_as: Any,
    admin: User,
    uk_coordinator: User,
    exercise: Exercise,
    other_exercise: Exercise,
    ukbf: Agency,
) -> None:
    foreign = invitations.create_invitation(
        actor=admin, exercise=other_exercise, email="far@ukbf.example", agency=ukbf
    ).invitation
    login_as(client, uk_coordinator)
    own = send(
        client,
        "POST",
        f"/api/v1/exercises/{exercise.pk}/invitations",
        {"email": "new@ukbf.example", "agency": "ukbf"},
    )
    assert own.status_code == 201
    assert client.get(f"/api/v1/exercises/{exercise.pk}/invitations").status_code == 200
    assert client.get(f"/api/v1/exercises/{other_exercise.pk}/invitations").status_code == 404
    cross = send(client, "POST", f"/api/v1/exercises/{exercise.pk}/invitations/{foreign.pk}/revoke")
    assert cross.status_code == 404
    foreign.refresh_from_db()
    assert foreign.state == "pending"


@pytest.mark.parametrize("name", ["uk_officer", "gz_observer", "removed_coordinator"])
def test_members_observers_and_removed_coordinators_cannot_see_or_send_invitations(
    request: pytest.FixtureRequest, client: Client, login_as: Any, name: str, exercise: Exercise
) -> None:
    login_as(client, request.getfixturevalue(name))
    assert client.get(f"/api/v1/exercises/{exercise.pk}/invitations").status_code == 404
    response = send(
        client,
        "POST",
        f"/api/v1/exercises/{exercise.pk}/invitations",
        {"email": "friend@hmrc.example", "agency": "hmrc"},
    )
    assert response.status_code == 404
    assert not Invitation.objects.exists()


def test_an_auditor_cannot_invite(
    client: Client, login_as: Any, auditor: User, exercise: Exercise
) -> None:
    login_as(client, auditor)
    response = send(
        client,
        "POST",
        f"/api/v1/exercises/{exercise.pk}/invitations",
        {"email": "friend@hmrc.example", "agency": "hmrc"},
    )
    assert response.status_code == 404
    assert not Invitation.objects.exists()


# --- members --------------------------------------------------------------------------------------


def test_an_admin_removes_a_member_and_their_sockets_are_told(
    client: Client,
    login_as: Any,
    admin: User,
    exercise: Exercise,
    room: Room,
    uk_officer: User,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    login_as(client, admin)
    membership = Membership.objects.get(user=uk_officer)
    with django_capture_on_commit_callbacks(execute=True):
        response = send(
            client, "DELETE", f"/api/v1/exercises/{exercise.pk}/members/{uk_officer.pk}"
        )
    assert response.status_code == 200
    assert response.json()["member"]["removed_at"] is not None
    membership.refresh_from_db()
    assert membership.removed_by == admin
    assert captured_events.to_group(f"user.{uk_officer.pk}") == [
        {"type": "user.revoked", "exercise_id": exercise.pk, "room_ids": [room.pk], "code": 4403}
    ]
    again = send(client, "DELETE", f"/api/v1/exercises/{exercise.pk}/members/{uk_officer.pk}")
    assert again.status_code == 404


def test_an_admin_changes_a_role_and_adds_a_member(
    client: Client, login_as: Any, admin: User, exercise: Exercise, gz_officer: User, hmrc: Agency
) -> None:
    login_as(client, admin)
    response = send(
        client,
        "PATCH",
        f"/api/v1/exercises/{exercise.pk}/members/{gz_officer.pk}",
        {"role": "coordinator"},
    )
    assert response.status_code == 200
    assert Membership.objects.get(user=gz_officer).role == GroupRole.COORDINATOR
    bad = send(
        client, "PATCH", f"/api/v1/exercises/{exercise.pk}/members/{gz_officer.pk}", {"role": "x"}
    )
    assert bad.status_code == 400
    UserFactory(email="direct@hmrc.example", agency=hmrc)
    added = send(
        client,
        "POST",
        f"/api/v1/exercises/{exercise.pk}/members",
        {"email": "direct@hmrc.example", "role": "observer"},
    )
    assert added.status_code == 201
    listed = client.get(f"/api/v1/exercises/{exercise.pk}/members").json()["members"]
    assert {m["email"] for m in listed} == {"li.wei@gz.example", "direct@hmrc.example"}


@pytest.mark.parametrize("name", ["uk_coordinator", "gz_observer", "uk_officer"])
def test_members_cannot_remove_or_change_roles(
    request: pytest.FixtureRequest,
    client: Client,
    login_as: Any,
    name: str,
    exercise: Exercise,
    gz_officer: User,
) -> None:
    login_as(client, request.getfixturevalue(name))
    url = f"/api/v1/exercises/{exercise.pk}/members/{gz_officer.pk}"
    assert send(client, "DELETE", url).status_code == 403
    assert send(client, "PATCH", url, {"role": "observer"}).status_code == 403
    membership = Membership.objects.get(user=gz_officer)
    assert membership.removed_at is None
    assert membership.role == GroupRole.MEMBER


def test_an_outsider_cannot_touch_members_of_an_exercise_they_do_not_see(
    client: Client, login_as: Any, outsider: User, exercise: Exercise, gz_officer: User
) -> None:
    login_as(client, outsider)
    url = f"/api/v1/exercises/{exercise.pk}/members/{gz_officer.pk}"
    assert send(client, "DELETE", url).status_code == 404
    assert Membership.objects.get(user=gz_officer).removed_at is None


def test_a_wrong_method_is_405_with_allow(client: Client, login_as: Any, admin: User) -> None:
    login_as(client, admin)
    response = send(client, "PUT", "/api/v1/exercises")
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
    assert api_error(response)["code"] == "method_not_allowed"
