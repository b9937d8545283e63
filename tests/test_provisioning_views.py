"""The provisioning pages under /manage/ and the officer's home page."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

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
from tests.factories import ExerciseFactory, MembershipFactory, RoomFactory
from tests.groups_support import AuditWatch

pytestmark = pytest.mark.django_db


def detail(exercise: Exercise) -> str:
    return f"/manage/exercises/{exercise.pk}/"


def without_csrf(content: bytes) -> bytes:
    """The page without its per-render CSRF token."""
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def assert_no_inline_code(content: bytes) -> None:
    text = content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", text), "inline <script>"
    assert "style=" not in text
    assert " on" + "click=" not in text


# --- who gets in ----------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client: Client, exercise: Exercise) -> None:
    for url in ["/manage/", detail(exercise), "/manage/exercises/new/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_an_admin_sees_every_exercise(
    client: Client, login_as: Any, admin: User, exercise: Exercise, other_exercise: Exercise
) -> None:
    login_as(client, admin)
    response = client.get("/manage/")
    assert response.status_code == 200
    assert b"CFE-TEST-WASTE" in response.content
    assert b"CFE-TEST-OTHER" in response.content
    assert b"New exercise" in response.content
    assert_no_inline_code(response.content)


@pytest.mark.parametrize("name", ["uk_officer", "gz_observer", "auditor", "removed_coordinator"])
def test_provisioning_is_refused_to_officers_observers_auditors_and_removed_members(
    request: pytest.FixtureRequest, client: Client, login_as: Any, name: str
) -> None:
    login_as(client, request.getfixturevalue(name))
    response = client.get("/manage/")
    assert response.status_code == 403
    assert AuditEvent.objects.filter(action="access.denied").exists()


def test_a_coordinator_sees_only_their_own_exercise(
    client: Client,
    login_as: Any,
    uk_coordinator: User,
    exercise: Exercise,
    other_exercise: Exercise,
) -> None:
    login_as(client, uk_coordinator)
    response = client.get("/manage/")
    assert response.status_code == 200
    assert b"CFE-TEST-WASTE" in response.content
    assert b"CFE-TEST-OTHER" not in response.content
    assert b"New exercise" not in response.content
    page = client.get(detail(exercise))
    assert page.status_code == 200
    assert b"Invite an officer" in page.content
    assert b"Add a room" not in page.content
    assert b"/close/" not in page.content


def test_another_exercises_id_in_the_url_is_a_404_not_data(
    client: Client,
    login_as: Any,
    uk_coordinator: User,
    exercise: Exercise,
    other_exercise: Exercise,
) -> None:
    login_as(client, uk_coordinator)
    missing = client.get("/manage/exercises/999999/")
    for url in [
        detail(other_exercise),
        f"{detail(other_exercise)}edit/",
    ]:
        response = client.get(url)
        assert response.status_code == 404
        assert b"CFE-TEST-OTHER" not in response.content
        assert without_csrf(response.content) == without_csrf(missing.content)
    response = client.post(
        f"{detail(other_exercise)}invitations/",
        {"email": "x@ukbf.example", "agency": other_exercise.agencies.get().pk, "role": "member"},
    )
    assert response.status_code == 404
    assert not Invitation.objects.exists()
    denied = AuditEvent.objects.filter(action="access.denied", actor=uk_coordinator)
    assert denied.filter(target_id=str(other_exercise.pk)).count() == 3


@pytest.mark.parametrize("name", ["uk_officer", "gz_observer", "outsider"])
def test_members_and_outsiders_get_404_for_the_manage_page_of_an_exercise(
    request: pytest.FixtureRequest, client: Client, login_as: Any, name: str, exercise: Exercise
) -> None:
    login_as(client, request.getfixturevalue(name))
    assert client.get(detail(exercise)).status_code == 404


def test_an_invitation_or_membership_of_another_exercise_is_a_404(
    client: Client,
    login_as: Any,
    admin: User,
    exercise: Exercise,
    other_exercise: Exercise,
    outsider: User,
    ukbf: Agency,
) -> None:
    foreign = invitations.create_invitation(
        actor=admin, exercise=other_exercise, email="far@ukbf.example", agency=ukbf
    ).invitation
    foreign_membership = Membership.objects.get(user=outsider)
    login_as(client, admin)
    response = client.post(f"{detail(exercise)}invitations/{foreign.pk}/revoke/")
    assert response.status_code == 404
    response = client.post(f"{detail(exercise)}members/{foreign_membership.pk}/remove/")
    assert response.status_code == 404
    response = client.post(
        f"{detail(exercise)}members/{foreign_membership.pk}/role/", {"role": "observer"}
    )
    assert response.status_code == 404
    foreign.refresh_from_db()
    foreign_membership.refresh_from_db()
    assert foreign.state == "pending"
    assert foreign_membership.removed_at is None
    assert foreign_membership.role == GroupRole.MEMBER


# --- exercises ------------------------------------------------------------------------------------


def test_an_admin_creates_an_exercise_with_times_read_in_their_time_zone(
    client: Client, login_as: Any, admin: User, hmrc: Agency, gacc: Agency
) -> None:
    login_as(client, admin)  # Europe/London: British Summer Time in July
    assert client.get("/manage/exercises/new/").status_code == 200
    watch = AuditWatch()
    response = client.post(
        "/manage/exercises/new/",
        {
            "code": "cfe-2026-07",
            "title": "Plastic waste",
            "commodity_focus": "Plastic scrap",
            "hs_codes": "3915, 3915.10 4707",
            "lanes": "Felixstowe–Nansha sea lane\nSouthampton–Yantian",
            "agencies": [hmrc.pk, gacc.pk],
            "starts_at": "2026-07-01T09:00",
            "ends_at": "2026-09-30T18:00",
            "retention_days": "730",
        },
    )
    exercise = Exercise.objects.get(code="CFE-2026-07")
    assert response.status_code == 302
    assert response["Location"] == detail(exercise)
    assert exercise.starts_at == dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)
    assert exercise.hs_codes == ["3915", "391510", "4707"]
    assert exercise.lanes == ["Felixstowe–Nansha sea lane", "Southampton–Yantian"]
    assert exercise.status == ExerciseStatus.DRAFT
    assert list(exercise.rooms.values_list("name", flat=True)) == ["general"]
    watch.only("exercise.created", actor=admin, target=exercise, exercise=exercise)


def test_the_create_form_names_what_is_wrong(
    client: Client, login_as: Any, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    login_as(client, admin)
    response = client.post(
        "/manage/exercises/new/",
        {
            "code": "CFE-TEST-WASTE",
            "title": "Duplicate",
            "agencies": [hmrc.pk],
            "starts_at": "2026-07-01T09:00",
            "ends_at": "2026-06-01T09:00",
            "retention_days": "365",
        },
    )
    assert response.status_code == 400
    assert b"must end after it starts" in response.content
    response = client.post(
        "/manage/exercises/new/",
        {
            "code": "CFE-TEST-WASTE",
            "title": "Duplicate",
            "agencies": [hmrc.pk],
            "starts_at": "2026-07-01T09:00",
            "ends_at": "2026-08-01T09:00",
            "retention_days": "365",
        },
    )
    assert response.status_code == 400
    assert b"already exists" in response.content
    assert Exercise.objects.count() == 1


def test_officers_cannot_open_the_create_form(
    client: Client, login_as: Any, uk_coordinator: User
) -> None:
    login_as(client, uk_coordinator)
    assert client.get("/manage/exercises/new/").status_code == 403


def test_an_admin_edits_an_exercise(
    client: Client, login_as: Any, admin: User, exercise: Exercise
) -> None:
    login_as(client, admin)
    page = client.get(f"{detail(exercise)}edit/")
    assert page.status_code == 200
    assert b'value="CFE-TEST-WASTE"' in page.content
    form = {
        "code": exercise.code,
        "title": "Solid waste CFE, phase 2",
        "commodity_focus": exercise.commodity_focus,
        "hs_codes": " ".join(exercise.hs_codes),
        "lanes": "\n".join(exercise.lanes),
        "agencies": list(exercise.agencies.values_list("pk", flat=True)),
        "starts_at": timezone.localtime(exercise.starts_at).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": timezone.localtime(exercise.ends_at).strftime("%Y-%m-%dT%H:%M"),
        "retention_days": "400",
    }
    response = client.post(f"{detail(exercise)}edit/", form)
    assert response.status_code == 302
    exercise.refresh_from_db()
    assert exercise.title == "Solid waste CFE, phase 2"
    assert exercise.retention_days == 400
    assert AuditEvent.objects.filter(action="exercise.updated").count() == 1


def test_an_admin_adds_a_room(
    client: Client, login_as: Any, admin: User, exercise: Exercise, room: Room
) -> None:
    login_as(client, admin)
    response = client.post(
        f"{detail(exercise)}rooms/", {"name": "felixstowe-nansha", "title": "Sea lane"}
    )
    assert response.status_code == 302
    assert exercise.rooms.filter(name="felixstowe-nansha").exists()
    response = client.post(f"{detail(exercise)}rooms/", {"name": "Bad Name!"})
    assert response.status_code == 400
    assert b"lower-case letters" in response.content


def test_a_coordinator_cannot_add_rooms_or_change_the_status(
    client: Client, login_as: Any, uk_coordinator: User, exercise: Exercise
) -> None:
    login_as(client, uk_coordinator)
    assert client.post(f"{detail(exercise)}rooms/", {"name": "side"}).status_code == 403
    assert client.post(f"{detail(exercise)}close/").status_code == 403
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.ACTIVE
    assert not Room.objects.filter(name="side").exists()
    assert AuditEvent.objects.filter(action="access.denied", actor=uk_coordinator).count() == 2


def test_an_admin_activates_closes_and_archives(
    client: Client, login_as: Any, admin: User, hmrc: Agency
) -> None:
    exercise = ExerciseFactory(
        code="CFE-RUN", status=ExerciseStatus.DRAFT, created_by=admin, agencies=[hmrc]
    )
    login_as(client, admin)
    for action, status in [("activate", "active"), ("close", "closed"), ("archive", "archived")]:
        response = client.post(f"{detail(exercise)}{action}/")
        assert response.status_code == 302
        exercise.refresh_from_db()
        assert exercise.status == status
    assert client.get(f"{detail(exercise)}activate/").status_code == 405


def test_a_closed_exercise_shows_no_forms_and_refuses_edits(
    client: Client, login_as: Any, admin: User, exercise: Exercise, uk_officer: User
) -> None:
    Exercise.objects.filter(pk=exercise.pk).update(status=ExerciseStatus.CLOSED)
    login_as(client, admin)
    page = client.get(detail(exercise))
    assert page.status_code == 200
    assert b"read-only" in page.content
    assert b"Invite an officer" not in page.content
    assert b"/remove/" not in page.content
    response = client.get(f"{detail(exercise)}edit/")
    assert response.status_code == 409
    membership = Membership.objects.get(user=uk_officer)
    response = client.post(f"{detail(exercise)}members/{membership.pk}/remove/", follow=True)
    assert b"read-only" in response.content
    membership.refresh_from_db()
    assert membership.removed_at is None


# --- invitations and members ----------------------------------------------------------------------


def test_an_admin_invites_and_sees_the_link_exactly_once(
    client: Client, login_as: Any, admin: User, exercise: Exercise, gacc: Agency
) -> None:
    login_as(client, admin)
    response = client.post(
        f"{detail(exercise)}invitations/",
        {"email": "zhang.min@gz.example", "agency": gacc.pk, "role": "observer"},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    match = re.search(rb"http://testserver/invite/([A-Za-z0-9_-]{43})/", response.content)
    assert match is not None
    token = match.group(1).decode()
    invitation = Invitation.objects.get()
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert invitation.role == GroupRole.OBSERVER
    assert_no_inline_code(response.content)
    page = client.get(detail(exercise))
    assert token.encode() not in page.content
    assert b"zhang.min@gz.example" in page.content
    assert b"badge pending" in page.content


def test_the_invitation_can_also_be_emailed(
    client: Client, login_as: Any, admin: User, exercise: Exercise, gacc: Agency, mailoutbox: Any
) -> None:
    login_as(client, admin)
    response = client.post(
        f"{detail(exercise)}invitations/",
        {"email": "zhang.min@gz.example", "agency": gacc.pk, "role": "member", "send_email": "on"},
    )
    assert b"also e-mailed" in response.content
    assert len(mailoutbox) == 1
    assert "/invite/" in mailoutbox[0].body


def test_a_coordinator_invites_through_the_page_but_not_as_coordinator(
    client: Client, login_as: Any, uk_coordinator: User, exercise: Exercise, gacc: Agency
) -> None:
    login_as(client, uk_coordinator)
    page = client.get(detail(exercise))
    assert (
        b'value="coordinator"'
        not in page.content.split(b"Invite an officer")[1].split(b"</form>")[0]
    )
    response = client.post(
        f"{detail(exercise)}invitations/",
        {"email": "boss@gz.example", "agency": gacc.pk, "role": "coordinator"},
    )
    assert response.status_code == 400
    assert not Invitation.objects.exists()
    response = client.post(
        f"{detail(exercise)}invitations/",
        {"email": "zhang.min@gz.example", "agency": gacc.pk, "role": "member"},
    )
    assert response.status_code == 200
    assert Invitation.objects.get().created_by == uk_coordinator


def test_an_invitation_to_a_member_is_a_form_error(
    client: Client, login_as: Any, admin: User, exercise: Exercise, uk_officer: User, hmrc: Agency
) -> None:
    login_as(client, admin)
    response = client.post(
        f"{detail(exercise)}invitations/",
        {"email": uk_officer.email, "agency": hmrc.pk, "role": "member"},
    )
    assert response.status_code == 400
    assert b"already a member" in response.content


def test_invitations_are_listed_by_state(
    client: Client, login_as: Any, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    def issue(email: str) -> invitations.IssuedInvitation:
        return invitations.create_invitation(
            actor=admin, exercise=exercise, email=email, agency=hmrc
        )

    issue("pending@hmrc.example")
    accepted = issue("accepted@hmrc.example")
    invitations.accept_invitation(
        token=accepted.token, display_name="Accepted One", password="Felixstowe-docks-2026"
    )
    revoked = issue("revoked@hmrc.example")
    invitations.revoke_invitation(actor=admin, invitation=revoked.invitation)
    expired = issue("expired@hmrc.example")
    Invitation.objects.filter(pk=expired.invitation.pk).update(
        expires_at=timezone.now() - dt.timedelta(hours=1)
    )
    login_as(client, admin)
    page = client.get(detail(exercise)).content
    for state in ["pending", "accepted", "revoked", "expired"]:
        assert f"{state}@hmrc.example".encode() in page
        assert f"{state.capitalize()} (1)".encode() in page
    only_expired = client.get(f"{detail(exercise)}?state=expired").content
    assert b"expired@hmrc.example" in only_expired
    assert b"pending@hmrc.example" not in only_expired


def test_an_admin_revokes_an_invitation_through_the_page(
    client: Client, login_as: Any, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invitations.create_invitation(
        actor=admin, exercise=exercise, email="x@hmrc.example", agency=hmrc
    )
    login_as(client, admin)
    response = client.post(f"{detail(exercise)}invitations/{issued.invitation.pk}/revoke/")
    assert response.status_code == 302
    assert Invitation.objects.get().state == "revoked"
    again = client.post(
        f"{detail(exercise)}invitations/{issued.invitation.pk}/revoke/", follow=True
    )
    assert b"already revoked" in again.content


def test_an_admin_removes_a_member_and_changes_a_role(
    client: Client,
    login_as: Any,
    admin: User,
    exercise: Exercise,
    uk_officer: User,
    gz_officer: User,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    login_as(client, admin)
    olivia = Membership.objects.get(user=uk_officer)
    li = Membership.objects.get(user=gz_officer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{detail(exercise)}members/{olivia.pk}/remove/")
    assert response.status_code == 302
    olivia.refresh_from_db()
    assert olivia.removed_by == admin
    assert captured_events.to_group(f"user.{uk_officer.pk}")[0]["type"] == "user.revoked"
    response = client.post(f"{detail(exercise)}members/{li.pk}/role/", {"role": "observer"})
    assert response.status_code == 302
    li.refresh_from_db()
    assert li.role == GroupRole.OBSERVER
    page = client.get(detail(exercise)).content
    assert b"Removed" in page
    assert_no_inline_code(page)


def test_a_coordinator_cannot_remove_members(
    client: Client, login_as: Any, uk_coordinator: User, exercise: Exercise, gz_officer: User
) -> None:
    login_as(client, uk_coordinator)
    membership = Membership.objects.get(user=gz_officer)
    assert client.post(f"{detail(exercise)}members/{membership.pk}/remove/").status_code == 403
    membership.refresh_from_db()
    assert membership.removed_at is None


# --- the officer's home ---------------------------------------------------------------------------


def test_home_lists_my_exercises_and_rooms_in_my_time_zone(
    client: Client, login_as: Any, admin: User, gz_officer: User, gacc: Agency
) -> None:
    planned = ExerciseFactory(
        code="CFE-TZ",
        title="Time zones",
        created_by=admin,
        agencies=[gacc],
        starts_at=dt.datetime(2026, 7, 1, 0, 30, tzinfo=dt.UTC),
        ends_at=dt.datetime(2026, 8, 1, 0, 30, tzinfo=dt.UTC),
    )
    lane = RoomFactory(exercise=planned, name="felixstowe-nansha")
    MembershipFactory(exercise=planned, user=gz_officer)
    login_as(client, gz_officer)  # Asia/Shanghai, UTC+8
    content = client.get("/").content.decode()
    assert "CFE-TZ" in content
    assert "1 Jul 2026 08:30 CST" in content
    assert f'href="/rooms/{lane.pk}/"' in content
    assert "CFE-TEST-WASTE" in content
    assert "/manage/" not in content.split("</header>")[1]
    assert_no_inline_code(content.encode())


def test_home_shows_nothing_of_exercises_i_do_not_belong_to(
    client: Client, login_as: Any, outsider: User, exercise: Exercise, room: Room
) -> None:
    login_as(client, outsider)
    content = client.get("/").content
    assert b"CFE-TEST-OTHER" in content
    assert b"CFE-TEST-WASTE" not in content
    assert f"/rooms/{room.pk}/".encode() not in content


def test_home_forgets_an_exercise_once_archived(
    client: Client, login_as: Any, exercise: Exercise, uk_officer: User
) -> None:
    login_as(client, uk_officer)
    assert b"CFE-TEST-WASTE" in client.get("/").content
    Exercise.objects.filter(pk=exercise.pk).update(status=ExerciseStatus.ARCHIVED)
    assert b"CFE-TEST-WASTE" not in client.get("/").content


def test_home_links_admins_to_provisioning_and_auditors_to_the_audit_log(
    client: Client, login_as: Any, admin: User, auditor: User, uk_coordinator: User
) -> None:
    # Admins and auditors land on their own workspace (tests/test_landing.py has the rest).
    login_as(client, admin)
    assert client.get("/")["Location"] == "/manage/"
    assert b'href="/manage/"' in client.get("/manage/").content.split(b"</header>")[0]
    login_as(client, auditor)
    assert client.get("/")["Location"] == "/audit/"
    assert b'href="/audit/"' in client.get("/audit/").content.split(b"</header>")[0]
    login_as(client, uk_coordinator)
    assert b'href="/manage/"' in client.get("/").content.split(b"</header>")[1]
