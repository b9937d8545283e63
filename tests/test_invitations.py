"""Invitations: issued by admins and coordinators, used once, by the invited address only,
before they expire; and the /invite/<token>/ page that new and existing officers join through."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.test import Client
from django.utils import timezone

from liaison.errors import Conflict, Invalid, PermissionDenied
from liaison.models import (
    Agency,
    AuditEvent,
    Exercise,
    ExerciseStatus,
    GroupRole,
    Invitation,
    Membership,
    Role,
    User,
)
from liaison.services import invitations as service
from liaison.services.invitations import InvitationRefused, SignInRequired
from liaison.services.memberships import remove_member
from tests.factories import AgencyFactory, UserFactory
from tests.groups_support import NON_INVITERS, AuditWatch

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Nansha-container-check-2026"


def invite(
    actor: User, exercise: Exercise, agency: Agency, email: str = "new.officer@hmrc.example", **kw
) -> service.IssuedInvitation:
    return service.create_invitation(
        actor=actor, exercise=exercise, email=email, agency=agency, **kw
    )


class BrokenEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        raise ConnectionRefusedError("SMTP server unreachable")


# --- issuing --------------------------------------------------------------------------------------


def test_an_admin_invites_an_officer_and_only_the_token_hash_is_stored(
    admin: User, exercise: Exercise, hmrc: Agency, settings: Any
) -> None:
    settings.LIAISON_INVITATION_TTL_HOURS = 72
    watch = AuditWatch()
    issued = invite(admin, exercise, hmrc, email=" New.Officer@HMRC.example ")

    invitation = Invitation.objects.get()
    assert invitation.email == "new.officer@hmrc.example"
    assert invitation.agency == hmrc
    assert invitation.role == GroupRole.MEMBER
    assert invitation.created_by == admin
    assert invitation.state == "pending"
    assert len(issued.token) >= 43
    assert invitation.token_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert issued.token not in str(Invitation.objects.values().get())
    assert issued.url == f"http://127.0.0.1:8000/invite/{issued.token}/"
    assert invitation.expires_at - invitation.created_at == dt.timedelta(hours=72)
    event = watch.only("invitation.created", actor=admin, target=invitation, exercise=exercise)
    assert event.details["email"] == "new.officer@hmrc.example"
    assert issued.token not in str(event.details)


def test_the_default_lifetime_comes_from_the_settings(
    admin: User, exercise: Exercise, hmrc: Agency, settings: Any
) -> None:
    settings.LIAISON_INVITATION_TTL_HOURS = 24
    invitation = invite(admin, exercise, hmrc).invitation
    assert invitation.expires_at - invitation.created_at == dt.timedelta(hours=24)


def test_a_coordinator_invites_to_their_own_exercise(
    uk_coordinator: User, exercise: Exercise, gacc: Agency
) -> None:
    watch = AuditWatch()
    issued = invite(uk_coordinator, exercise, gacc, email="zhang@gz.example", role="observer")
    assert issued.invitation.role == GroupRole.OBSERVER
    watch.only(
        "invitation.created", actor=uk_coordinator, target=issued.invitation, exercise=exercise
    )


def test_a_coordinator_cannot_invite_a_coordinator(
    uk_coordinator: User, exercise: Exercise, gacc: Agency
) -> None:
    with pytest.raises(PermissionDenied, match="Only administrators can invite coordinators"):
        invite(uk_coordinator, exercise, gacc, role=GroupRole.COORDINATOR)
    assert not Invitation.objects.exists()


def test_a_coordinator_cannot_invite_to_another_exercise(
    uk_coordinator: User, other_exercise: Exercise, ukbf: Agency
) -> None:
    with pytest.raises(PermissionDenied):
        invite(uk_coordinator, other_exercise, ukbf)
    assert not Invitation.objects.exists()


@pytest.mark.parametrize("name", NON_INVITERS)
def test_officers_observers_auditors_outsiders_and_removed_coordinators_cannot_invite(
    request: pytest.FixtureRequest, name: str, exercise: Exercise, hmrc: Agency
) -> None:
    actor = request.getfixturevalue(name)
    with pytest.raises(PermissionDenied):
        invite(actor, exercise, hmrc)
    assert not Invitation.objects.exists()


def test_an_agency_not_taking_part_cannot_be_invited(admin: User, exercise: Exercise) -> None:
    dutch = AgencyFactory(code="nl-customs", name="Dutch Customs")
    with pytest.raises(Invalid, match="Dutch Customs does not take part") as caught:
        invite(admin, exercise, dutch, email="jan@douane.example")
    assert caught.value.field == "agency"
    assert not Invitation.objects.exists()


@pytest.mark.parametrize(
    ("email", "role", "ttl", "message"),
    [
        ("not-an-address", "member", None, "not a valid e-mail address"),
        ("ok@hmrc.example", "chief", None, "Unknown role"),
        ("ok@hmrc.example", "member", 0, "from 1 to 720 hours"),
        ("ok@hmrc.example", "member", 10_000, "from 1 to 720 hours"),
    ],
)
def test_bad_invitation_input_is_named(
    admin: User, exercise: Exercise, hmrc: Agency, email: str, role: str, ttl: Any, message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        invite(admin, exercise, hmrc, email=email, role=role, ttl_hours=ttl)


def test_inviting_a_current_member_is_a_conflict(
    admin: User, exercise: Exercise, uk_officer: User, hmrc: Agency
) -> None:
    with pytest.raises(Conflict, match="already a member"):
        invite(admin, exercise, hmrc, email=uk_officer.email)


def test_a_second_pending_invitation_to_the_same_address_is_a_conflict(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    first = invite(admin, exercise, hmrc)
    with pytest.raises(Conflict, match="pending invitation"):
        invite(admin, exercise, hmrc)
    service.revoke_invitation(actor=admin, invitation=first.invitation)
    assert invite(admin, exercise, hmrc).invitation.pk != first.invitation.pk


def test_admin_and_auditor_accounts_are_not_invited(
    admin: User, auditor: User, exercise: Exercise, hmrc: Agency
) -> None:
    with pytest.raises(Invalid, match="only officers join exercises"):
        invite(admin, exercise, hmrc, email=auditor.email)


def test_an_existing_officer_is_invited_only_with_their_own_agency(
    admin: User, exercise: Exercise, outsider: User, hmrc: Agency
) -> None:
    with pytest.raises(Invalid, match="belongs to UK Border Force"):
        invite(admin, exercise, hmrc, email=outsider.email)


def test_the_link_can_be_emailed(admin: User, exercise: Exercise, hmrc: Agency) -> None:
    issued = invite(admin, exercise, hmrc, send_email=True)
    assert issued.emailed is True
    [message] = mail.outbox
    assert message.to == ["new.officer@hmrc.example"]
    assert "CFE-TEST-WASTE" in message.subject
    assert issued.url in message.body


def test_a_failed_email_keeps_the_invitation_and_says_so(
    admin: User, exercise: Exercise, hmrc: Agency, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "tests.test_invitations.BrokenEmailBackend"
    issued = invite(admin, exercise, hmrc, send_email=True)
    assert issued.emailed is False
    assert "could not be sent" in issued.email_error
    assert Invitation.objects.get().state == "pending"


# --- revoking -------------------------------------------------------------------------------------


def test_an_admin_revokes_a_pending_invitation(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invite(admin, exercise, hmrc)
    watch = AuditWatch()
    service.revoke_invitation(actor=admin, invitation=issued.invitation)
    invitation = Invitation.objects.get()
    assert invitation.state == "revoked"
    assert invitation.revoked_by == admin
    watch.only("invitation.revoked", actor=admin, target=invitation, exercise=exercise)


def test_a_coordinator_revokes_an_invitation_to_their_exercise(
    admin: User, uk_coordinator: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invite(admin, exercise, hmrc)
    service.revoke_invitation(actor=uk_coordinator, invitation=issued.invitation)
    assert Invitation.objects.get().revoked_by == uk_coordinator


@pytest.mark.parametrize("name", NON_INVITERS)
def test_others_cannot_revoke(
    request: pytest.FixtureRequest, name: str, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invite(admin, exercise, hmrc)
    with pytest.raises(PermissionDenied):
        service.revoke_invitation(actor=request.getfixturevalue(name), invitation=issued.invitation)
    assert Invitation.objects.get().state == "pending"


def test_only_a_pending_invitation_can_be_revoked(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invite(admin, exercise, hmrc)
    service.accept_invitation(token=issued.token, display_name="New Officer", password=NEW_PASSWORD)
    with pytest.raises(Conflict, match="already accepted"):
        service.revoke_invitation(actor=admin, invitation=issued.invitation)


# --- accepting ------------------------------------------------------------------------------------


def test_a_new_officer_accepts_and_becomes_a_member(
    admin: User, exercise: Exercise, gacc: Agency
) -> None:
    issued = invite(admin, exercise, gacc, email="zhang.min@gz.example", role="observer")
    watch = AuditWatch()
    membership = service.accept_invitation(
        token=issued.token, display_name="  Zhang   Min ", password=NEW_PASSWORD, ip="10.0.0.7"
    )
    user = User.objects.get(email="zhang.min@gz.example")
    assert user.display_name == "Zhang Min"
    assert user.agency == gacc
    assert user.role == Role.OFFICER
    assert user.time_zone == "Asia/Shanghai"
    assert user.check_password(NEW_PASSWORD)
    assert membership.user == user
    assert membership.role == GroupRole.OBSERVER
    assert membership.added_by == admin
    invitation = Invitation.objects.get()
    assert invitation.state == "accepted"
    assert invitation.accepted_by == user
    event = watch.only("invitation.accepted", actor=user, target=invitation, exercise=exercise)
    assert event.details["new_account"] is True
    assert event.ip == "10.0.0.7"


def test_an_existing_officer_accepts_while_signed_in(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    officer = UserFactory(email="returning@hmrc.example", agency=hmrc)
    issued = invite(admin, exercise, hmrc, email="returning@hmrc.example")
    membership = service.accept_invitation(token=issued.token, user=officer)
    assert membership.user == officer
    assert membership.is_current
    assert AuditEvent.objects.get(action="invitation.accepted").details["new_account"] is False


def test_a_used_invitation_cannot_be_used_again(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invite(admin, exercise, hmrc)
    service.accept_invitation(token=issued.token, display_name="New Officer", password=NEW_PASSWORD)
    user = User.objects.get(email="new.officer@hmrc.example")
    watch = AuditWatch()
    with pytest.raises(InvitationRefused) as caught:
        service.accept_invitation(token=issued.token, user=user)
    assert caught.value.reason == "accepted"
    assert caught.value.detail == service.INVALID_LINK_DETAIL
    assert Membership.objects.filter(user=user).count() == 1
    event = watch.only(
        "invitation.refused", actor=user, target=issued.invitation, exercise=exercise
    )
    assert event.details["reason"] == "accepted"


def test_a_revoked_invitation_is_refused(admin: User, exercise: Exercise, hmrc: Agency) -> None:
    issued = invite(admin, exercise, hmrc)
    service.revoke_invitation(actor=admin, invitation=issued.invitation)
    with pytest.raises(InvitationRefused) as caught:
        service.accept_invitation(token=issued.token, display_name="X Y", password=NEW_PASSWORD)
    assert caught.value.reason == "revoked"
    assert not User.objects.filter(email="new.officer@hmrc.example").exists()
    assert AuditEvent.objects.filter(action="invitation.refused").count() == 1


def test_an_expired_invitation_is_refused(admin: User, exercise: Exercise, hmrc: Agency) -> None:
    issued = invite(admin, exercise, hmrc, ttl_hours=72)
    with time_machine.travel(timezone.now() + dt.timedelta(hours=72, seconds=1), tick=False):
        with pytest.raises(InvitationRefused) as caught:
            service.accept_invitation(
                token=issued.token, display_name="Late Officer", password=NEW_PASSWORD
            )
        assert caught.value.reason == "expired"
        assert Invitation.objects.get().state == "expired"
    assert not Membership.objects.filter(user__email="new.officer@hmrc.example").exists()
    assert AuditEvent.objects.get(action="invitation.refused").details["reason"] == "expired"


def test_an_invitation_still_works_just_before_it_expires(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invite(admin, exercise, hmrc, ttl_hours=72)
    with time_machine.travel(timezone.now() + dt.timedelta(hours=71, minutes=59), tick=False):
        membership = service.accept_invitation(
            token=issued.token, display_name="Prompt Officer", password=NEW_PASSWORD
        )
    assert membership.is_current


def test_an_unknown_token_is_refused_and_audited(exercise: Exercise) -> None:
    watch = AuditWatch()
    with pytest.raises(InvitationRefused) as caught:
        service.accept_invitation(token="x" * 43, display_name="Guess", password=NEW_PASSWORD)
    assert caught.value.reason == "unknown"
    event = watch.only("invitation.refused", actor=None, target=("", ""), exercise=None)
    assert event.details["reason"] == "unknown"


def test_an_email_mismatch_is_refused(
    admin: User, exercise: Exercise, hmrc: Agency, other_exercise: Exercise
) -> None:
    someone_else = UserFactory(email="someone.else@hmrc.example", agency=hmrc)
    issued = invite(admin, exercise, hmrc)
    with pytest.raises(InvitationRefused) as caught:
        service.accept_invitation(token=issued.token, user=someone_else)
    assert caught.value.reason == "email_mismatch"
    assert "different e-mail address" in caught.value.detail
    assert exercise.code not in caught.value.detail
    assert not Membership.objects.filter(user=someone_else).exists()
    assert Invitation.objects.get().state == "pending"
    event = AuditEvent.objects.get(action="invitation.refused")
    assert (event.actor, event.exercise_id) == (someone_else, exercise.pk)


def test_an_officer_of_another_agency_cannot_use_an_invitation_for_their_address(
    admin: User, exercise: Exercise, hmrc: Agency, ukbf: Agency
) -> None:
    issued = invite(admin, exercise, hmrc, email="mover@ukbf.example")
    mover = UserFactory(email="mover@ukbf.example", agency=ukbf)
    with pytest.raises(InvitationRefused) as caught:
        service.accept_invitation(token=issued.token, user=mover)
    assert caught.value.reason == "agency_mismatch"


def test_an_invitation_to_a_closed_exercise_cannot_be_accepted(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invite(admin, exercise, hmrc)
    Exercise.objects.filter(pk=exercise.pk).update(status=ExerciseStatus.CLOSED)
    with pytest.raises(InvitationRefused) as caught:
        service.accept_invitation(token=issued.token, display_name="X Y", password=NEW_PASSWORD)
    assert caught.value.reason == "exercise_closed"
    assert caught.value.detail == service.INVALID_LINK_DETAIL


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short-1", "at least 12 characters"),
        ("password1234", "too common"),
        ("839274619283746", "entirely numeric"),
    ],
)
def test_a_weak_password_is_refused_with_the_reason(
    admin: User, exercise: Exercise, hmrc: Agency, password: str, message: str
) -> None:
    issued = invite(admin, exercise, hmrc)
    with pytest.raises(Invalid, match=message) as caught:
        service.accept_invitation(token=issued.token, display_name="New Officer", password=password)
    assert caught.value.field == "password"
    assert not User.objects.filter(email="new.officer@hmrc.example").exists()
    assert Invitation.objects.get().state == "pending"
    assert not AuditEvent.objects.filter(action__startswith="invitation.re").exists()


def test_a_new_account_cannot_take_an_address_that_has_one(
    admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    UserFactory(email="returning@hmrc.example", agency=hmrc)
    issued = invite(admin, exercise, hmrc, email="returning@hmrc.example")
    with pytest.raises(SignInRequired):
        service.accept_invitation(
            token=issued.token, display_name="Impostor", password=NEW_PASSWORD
        )
    assert Invitation.objects.get().state == "pending"


def test_a_removed_member_can_be_invited_back(
    admin: User, exercise: Exercise, uk_officer: User, hmrc: Agency
) -> None:
    remove_member(actor=admin, membership=Membership.objects.get(user=uk_officer))
    issued = invite(admin, exercise, hmrc, email=uk_officer.email)
    service.accept_invitation(token=issued.token, user=uk_officer)
    assert Membership.objects.filter(user=uk_officer).count() == 2
    assert Membership.objects.filter(user=uk_officer, removed_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("new_account", [False, True])
def test_two_simultaneous_acceptances_give_exactly_one_membership(
    admin: User, exercise: Exercise, hmrc: Agency, new_account: bool
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL: SQLite serialises whole write transactions, so two acceptances "
            "can never overlap there and the row lock is not exercised"
        )
    officer = None if new_account else UserFactory(email="racer@hmrc.example", agency=hmrc)
    issued = invite(admin, exercise, hmrc, email="racer@hmrc.example")
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def accept() -> None:
        try:
            start.wait(timeout=10)
            service.accept_invitation(
                token=issued.token, user=officer, display_name="Racer", password=NEW_PASSWORD
            )
            outcomes.append("joined")
        except InvitationRefused as refusal:
            outcomes.append(refusal.reason)
        except Exception as error:  # surfaced in the assertion below
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=accept) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == ["accepted", "joined"]
    assert (
        Membership.objects.filter(exercise=exercise, user__email="racer@hmrc.example").count() == 1
    )
    assert User.objects.filter(email="racer@hmrc.example").count() == 1
    assert AuditEvent.objects.filter(action="invitation.accepted").count() == 1
    assert AuditEvent.objects.filter(action="invitation.refused").count() == 1


# --- the invitation page --------------------------------------------------------------------------


def page_of(client: Client, token: str) -> Any:
    return client.get(f"/invite/{token}/")


def test_a_new_officer_joins_through_the_page_and_is_signed_in(
    client: Client, admin: User, exercise: Exercise, room: Any, gacc: Agency
) -> None:
    issued = invite(admin, exercise, gacc, email="zhang.min@gz.example")
    response = page_of(client, issued.token)
    assert response.status_code == 200
    assert b"zhang.min@gz.example" in response.content
    assert "no-store" in response["Cache-Control"]

    response = client.post(
        f"/invite/{issued.token}/",
        {"display_name": "Zhang Min", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(email="zhang.min@gz.example")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert Membership.objects.filter(exercise=exercise, user=user).exists()


def test_the_page_names_what_is_wrong_with_a_password(
    client: Client, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invite(admin, exercise, hmrc)
    response = client.post(
        f"/invite/{issued.token}/",
        {"display_name": "New Officer", "password1": "short-1", "password2": "short-1"},
    )
    assert response.status_code == 400
    assert b"at least 12 characters" in response.content
    response = client.post(
        f"/invite/{issued.token}/",
        {"display_name": "New Officer", "password1": NEW_PASSWORD, "password2": "other-password"},
    )
    assert response.status_code == 400
    assert b"The two passwords differ" in response.content
    assert not User.objects.filter(email="new.officer@hmrc.example").exists()


def test_an_existing_officer_is_sent_to_sign_in_and_then_joins(
    client: Client, login_as: Any, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    officer = UserFactory(email="returning@hmrc.example", agency=hmrc)
    issued = invite(admin, exercise, hmrc, email="returning@hmrc.example")
    response = page_of(client, issued.token)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=%2Finvite%2F{issued.token}%2F"
    assert not Membership.objects.filter(user=officer).exists()

    login_as(client, officer)
    response = page_of(client, issued.token)
    assert response.status_code == 200
    assert b"Join CFE-TEST-WASTE" in response.content
    response = client.post(f"/invite/{issued.token}/")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert Membership.objects.filter(exercise=exercise, user=officer).exists()


def test_a_signed_in_officer_joins_with_one_click(
    client: Client, login_as: Any, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    officer = UserFactory(email="returning@hmrc.example", agency=hmrc)
    issued = invite(admin, exercise, hmrc, email=officer.email)
    login_as(client, officer)
    response = client.post(f"/invite/{issued.token}/")
    assert response.status_code == 302
    assert Membership.objects.filter(exercise=exercise, user=officer).exists()


def test_wrong_used_revoked_and_expired_links_get_one_identical_page(
    client: Client, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    used = invite(admin, exercise, hmrc, email="used@hmrc.example")
    service.accept_invitation(token=used.token, display_name="Used Link", password=NEW_PASSWORD)
    revoked = invite(admin, exercise, hmrc, email="revoked@hmrc.example")
    service.revoke_invitation(actor=admin, invitation=revoked.invitation)
    expired = invite(admin, exercise, hmrc, email="expired@hmrc.example", ttl_hours=1)
    Invitation.objects.filter(pk=expired.invitation.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )

    pages = [
        page_of(client, token)
        for token in ["not-a-real-token-" + "x" * 26, used.token, revoked.token, expired.token]
    ]
    assert {page.status_code for page in pages} == {404}
    assert len({page.content for page in pages}) == 1
    content = pages[0].content.decode()
    assert "This invitation link is not valid" in content
    for secret in ["CFE-TEST-WASTE", "Solid waste", "HM Revenue", "@hmrc.example"]:
        assert secret not in content


def test_a_post_with_a_used_link_gets_the_same_page_and_is_audited(
    client: Client, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    used = invite(admin, exercise, hmrc, email="used@hmrc.example")
    service.accept_invitation(token=used.token, display_name="Used Link", password=NEW_PASSWORD)
    unknown_page = page_of(client, "x" * 43)
    response = client.post(
        f"/invite/{used.token}/",
        {"display_name": "Second Go", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 404
    assert response.content == unknown_page.content
    assert AuditEvent.objects.get(action="invitation.refused").details["reason"] == "accepted"


def test_a_signed_in_officer_with_another_address_is_told_to_sign_out(
    client: Client, login_as: Any, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    someone_else = UserFactory(email="someone.else@hmrc.example", agency=hmrc)
    issued = invite(admin, exercise, hmrc)
    login_as(client, someone_else)
    response = page_of(client, issued.token)
    assert response.status_code == 403
    assert b"different e-mail address" in response.content
    assert b"CFE-TEST-WASTE" not in response.content
    response = client.post(f"/invite/{issued.token}/")
    assert response.status_code == 403
    assert not Membership.objects.filter(user=someone_else).exists()
    assert AuditEvent.objects.get(action="invitation.refused").details["reason"] == (
        "email_mismatch"
    )


def test_the_invitation_page_has_no_inline_script_or_style(
    client: Client, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    issued = invite(admin, exercise, hmrc)
    content = page_of(client, issued.token).content.decode()
    assert "<script>" not in content
    assert "style=" not in content
