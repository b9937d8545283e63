"""The right landing for every role: an admin on Provisioning, an auditor on the audit workspace,
an officer on their exercises, a newly joined officer in the exercise's first room with a short
welcome; an admin who opens a room is told why they cannot read it, while officers keep one
404 for a room they may not see and a room that does not exist."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison.models import AuditEvent, Exercise, Room, User
from liaison.services import invitations as invitation_service
from tests.conftest import sign_in
from tests.factories import RoomFactory, UserFactory
from tests.security_support import current_code

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Nansha-container-check-2026"
NOT_A_MEMBER_YET = "You are not a member of any exercise yet"
WELCOME = "Welcome to CFE-TEST-WASTE"


def without_tokens(response: Any) -> str:
    """The page as text, less the per-request CSRF and request ids."""
    return re.sub(r'value="[A-Za-z0-9]{64}"', "", response.content.decode())


# --- where each role lands ------------------------------------------------------------------------


def test_an_admin_lands_on_provisioning(admin: User, exercise: Exercise) -> None:
    client = sign_in(Client(), admin)

    response = client.get("/", follow=True)

    assert response.redirect_chain == [("/manage/", 302)]
    assert "CFE-TEST-WASTE" in response.content.decode()
    assert NOT_A_MEMBER_YET not in response.content.decode()


def test_an_auditor_lands_on_the_audit_workspace(auditor: User, exercise: Exercise) -> None:
    client = sign_in(Client(), auditor)

    response = client.get("/", follow=True)

    assert response.redirect_chain == [("/audit/", 302)]
    assert "CFE-TEST-WASTE" in response.content.decode()
    assert NOT_A_MEMBER_YET not in response.content.decode()


def test_signing_in_takes_each_role_to_its_landing(
    admin: User, auditor: User, uk_officer: User, password: str
) -> None:
    from tests.security_support import sign_in_with_both_factors

    for user, landing in ((admin, "/manage/"), (auditor, "/audit/"), (uk_officer, "/")):
        client = Client()
        response = sign_in_with_both_factors(client, user, password)
        assert response["Location"] == "/"
        final = client.get("/", follow=True)
        assert final.status_code == 200
        assert final.request["PATH_INFO"] == landing, user.email


def test_an_officer_lands_on_their_exercises(uk_officer: User, room: Room) -> None:
    response = sign_in(Client(), uk_officer).get("/")

    assert response.status_code == 200
    assert f'href="/rooms/{room.pk}/"' in response.content.decode()


def test_an_officer_of_no_exercise_is_told_how_to_join(hmrc: Any) -> None:
    newcomer = UserFactory(email="new@hmrc.example", agency=hmrc)

    response = sign_in(Client(), newcomer).get("/")

    assert response.status_code == 200
    assert NOT_A_MEMBER_YET in response.content.decode()


# --- a new officer's first landing ----------------------------------------------------------------


def test_a_new_officer_lands_in_the_first_room_with_a_welcome_once(
    admin: User, exercise: Exercise, room: Room, lane_room: Room, gacc: Any
) -> None:
    issued = invitation_service.create_invitation(
        actor=admin, exercise=exercise, email="zhang.min@gz.example", agency=gacc
    )
    client = Client()
    joined = client.post(
        f"/invite/{issued.token}/",
        {"display_name": "Zhang Min", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert joined["Location"] == "/"

    # First the authenticator (two-factor is mandatory), then the room.
    assert client.get("/")["Location"].startswith("/account/2fa/setup/")
    client.get("/account/2fa/setup/")
    device = TOTPDevice.objects.get(user__email="zhang.min@gz.example", confirmed=False)
    assert client.post("/account/2fa/setup/", {"code": current_code(device)}).status_code == 200

    landing = client.get("/")
    assert landing["Location"] == f"/rooms/{room.pk}/"
    page = client.get(landing["Location"]).content.decode()
    assert WELCOME in page
    assert 'id="chat-welcome"' in page
    assert "/account/profile/" in page
    # Once: the next visit is an ordinary one, and home is home again.
    assert WELCOME not in client.get(f"/rooms/{room.pk}/").content.decode()
    assert client.get("/").status_code == 200


def test_an_officer_who_joins_another_exercise_is_welcomed_in_its_first_room(
    admin: User, uk_officer: User, other_exercise: Exercise, hmrc: Any
) -> None:
    other_exercise.agencies.add(hmrc)
    first = RoomFactory(exercise=other_exercise, name="general", title="General")
    RoomFactory(exercise=other_exercise, name="felixstowe", title="Felixstowe")
    issued = invitation_service.create_invitation(
        actor=admin, exercise=other_exercise, email=uk_officer.email, agency=hmrc
    )
    client = sign_in(Client(), uk_officer)

    assert client.post(f"/invite/{issued.token}/")["Location"] == "/"
    assert client.get("/")["Location"] == f"/rooms/{first.pk}/"
    assert "Welcome to CFE-TEST-OTHER" in client.get(f"/rooms/{first.pk}/").content.decode()


def test_a_welcome_for_an_exercise_without_rooms_leaves_the_officer_at_home(
    uk_officer: User, exercise: Exercise
) -> None:
    client = sign_in(Client(), uk_officer)
    session = client.session
    session["liaison_welcome_exercise"] = exercise.pk
    session.save()

    assert client.get("/").status_code == 200
    assert "liaison_welcome_exercise" not in client.session


# --- rooms an admin or an auditor is no member of -------------------------------------------------


def test_an_admin_opening_a_room_is_told_why_and_sent_to_provisioning(
    admin: User, room: Room
) -> None:
    response = sign_in(Client(), admin).get(f"/rooms/{room.pk}/")

    assert response.status_code == 403
    html = response.content.decode()
    assert "You are not a member of this room" in html
    assert "General is a room of exercise CFE-TEST-WASTE" in html
    assert f'href="/manage/exercises/{room.exercise_id}/"' in html
    assert "Not found" not in html
    assert 'id="chat"' not in html  # nothing of the conversation
    denied = AuditEvent.objects.get(action="access.denied")
    assert (denied.actor_id, denied.target_type, denied.target_id) == (
        admin.pk,
        "room",
        str(room.pk),
    )


def test_an_admin_asking_for_a_room_that_does_not_exist_gets_not_found(admin: User) -> None:
    response = sign_in(Client(), admin).get("/rooms/999999/")

    assert response.status_code == 404
    assert "You are not a member of this room" not in response.content.decode()


def test_an_admin_sees_the_explanation_in_chinese(admin: User, room: Room) -> None:
    admin.language = "zh-hans"
    admin.save(update_fields=["language"])

    html = sign_in(Client(), admin).get(f"/rooms/{room.pk}/").content.decode()

    assert "You are not a member" not in html
    assert "CFE-TEST-WASTE" in html


def test_an_auditor_reads_the_room_and_is_told_why_it_is_read_only(
    auditor: User, room: Room
) -> None:
    response = sign_in(Client(), auditor).get(f"/rooms/{room.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "You read this room as an auditor" in html
    assert f'href="/audit/rooms/{room.pk}/"' in html
    # An auditor keeps no read marker: everything counts as read, no "New messages" line.
    assert f'data-last-read-seq="{room.last_seq}"' in html


def test_for_an_officer_a_forbidden_room_and_a_missing_one_stay_the_same_404(
    outsider: User, room: Room
) -> None:
    client = sign_in(Client(), outsider)

    forbidden = client.get(f"/rooms/{room.pk}/")
    missing = client.get("/rooms/999999/")

    assert forbidden.status_code == missing.status_code == 404
    assert without_tokens(forbidden) == without_tokens(missing)
    assert b"You are not a member of this room" not in forbidden.content
