"""Administration never bypasses the services: the Django admin is view-only for every model
whose changes the services audit and push to open sockets (liaison/admin.py), and resetting
someone's two-factor goes through ``accounts.reset_two_factor`` from the command line
(``manage.py reset_2fa``) or the provisioning page's button, audited either way."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib import admin as django_admin
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, RequestFactory
from django_otp.plugins.otp_totp.models import TOTPDevice

from liaison.models import (
    Agency,
    AuditEvent,
    Exercise,
    GroupRole,
    Invitation,
    Membership,
    Message,
    RecoveryCode,
    Role,
    Room,
    User,
    UserSession,
)
from liaison.services import invitations, twofactor
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GUARDED_MODELS = [User, Exercise, Room, Membership, Invitation, Message, AuditEvent]


@pytest.fixture
def superuser(hmrc: Agency) -> User:
    return UserFactory(
        email="root@hmrc.example",
        display_name="Sam Super",
        agency=hmrc,
        role=Role.ADMIN,
        is_staff=True,
        is_superuser=True,
    )


@pytest.fixture
def root_client(client: Client, login_as: Any, superuser: User) -> Client:
    return login_as(client, superuser)


def audit_count() -> int:
    return AuditEvent.objects.count()


# --- the Django admin is view-only ----------------------------------------------------------------


@pytest.mark.parametrize("model", GUARDED_MODELS, ids=lambda m: m.__name__)
def test_a_superuser_may_view_but_never_add_change_or_delete(model, superuser: User) -> None:
    model_admin = django_admin.site._registry[model]
    request = RequestFactory().get("/django-admin/")
    request.user = superuser
    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert "delete_selected" not in model_admin.get_actions(request)


def test_only_reference_data_is_editable_in_the_admin(superuser: User) -> None:
    request = RequestFactory().get("/django-admin/")
    request.user = superuser
    editable = {
        model
        for model, model_admin in django_admin.site._registry.items()
        if model._meta.app_label == "liaison"
        and (
            model_admin.has_add_permission(request)
            or model_admin.has_change_permission(request)
            or model_admin.has_delete_permission(request)
        )
    }
    assert editable == {Agency}


def test_a_superuser_cannot_add_a_membership_through_the_admin(
    root_client: Client, exercise: Exercise, gz_officer: User, outsider: User
) -> None:
    before = audit_count()
    response = root_client.post(
        "/django-admin/liaison/membership/add/",
        {"exercise": exercise.pk, "user": outsider.pk, "role": GroupRole.COORDINATOR},
    )
    assert response.status_code == 403
    assert not Membership.objects.filter(exercise=exercise, user=outsider).exists()
    assert audit_count() == before


def test_a_superuser_cannot_delete_a_membership_through_the_admin(
    root_client: Client, exercise: Exercise, gz_officer: User
) -> None:
    membership = Membership.objects.get(exercise=exercise, user=gz_officer)
    url = f"/django-admin/liaison/membership/{membership.pk}/delete/"
    assert root_client.post(url, {"post": "yes"}).status_code == 403
    listing = root_client.post(
        "/django-admin/liaison/membership/",
        {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"},
    )
    assert listing.status_code in {200, 302}
    assert Membership.objects.filter(pk=membership.pk, removed_at__isnull=True).exists()


def test_a_superuser_cannot_change_a_role_or_deactivate_an_account_through_the_admin(
    root_client: Client, gz_officer: User
) -> None:
    url = f"/django-admin/liaison/user/{gz_officer.pk}/change/"
    page = root_client.get(url)
    assert page.status_code == 200  # viewing is fine
    response = root_client.post(
        url,
        {"email": gz_officer.email, "role": Role.ADMIN, "is_active": "", "is_superuser": "on"},
    )
    assert response.status_code == 403
    gz_officer.refresh_from_db()
    assert (gz_officer.role, gz_officer.is_active, gz_officer.is_superuser) == (
        Role.OFFICER,
        True,
        False,
    )
    password = root_client.post(
        f"/django-admin/liaison/user/{gz_officer.pk}/password/",
        {"password1": "Another-long-pass-1", "password2": "Another-long-pass-1"},
    )
    assert password.status_code == 403


def test_a_superuser_cannot_edit_or_delete_a_room_or_an_exercise_through_the_admin(
    root_client: Client, exercise: Exercise, room: Room
) -> None:
    for path in (
        f"/django-admin/liaison/room/{room.pk}/change/",
        f"/django-admin/liaison/room/{room.pk}/delete/",
        f"/django-admin/liaison/exercise/{exercise.pk}/change/",
        f"/django-admin/liaison/exercise/{exercise.pk}/delete/",
    ):
        assert root_client.post(path, {"name": "renamed", "post": "yes"}).status_code == 403, path
    room.refresh_from_db()
    assert room.name == "general"


def test_a_superuser_cannot_revoke_or_forge_an_invitation_through_the_admin(
    root_client: Client, admin: User, exercise: Exercise, hmrc: Agency
) -> None:
    invitation = invitations.create_invitation(
        actor=admin, exercise=exercise, email="new@hmrc.example", agency=hmrc
    ).invitation
    url = f"/django-admin/liaison/invitation/{invitation.pk}/change/"
    assert root_client.post(url, {"email": "someone.else@example.org"}).status_code == 403
    assert root_client.post("/django-admin/liaison/invitation/add/", {}).status_code == 403
    assert Invitation.objects.get(pk=invitation.pk).email == "new@hmrc.example"


# --- resetting two-factor: the command ------------------------------------------------------------


def enrolled(user: User) -> None:
    """An authenticator and recovery codes, as enrolment leaves them."""
    TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    twofactor.regenerate_recovery_codes(user=user, ip=None)


def test_reset_2fa_removes_the_second_factor_and_is_audited_under_the_actor(
    admin: User, gz_officer: User
) -> None:
    enrolled(gz_officer)
    out = StringIO()
    call_command("reset_2fa", gz_officer.email, actor=admin.email, stdout=out)
    assert "was reset by admin@hmrc.example" in out.getvalue()
    assert not TOTPDevice.objects.filter(user=gz_officer).exists()
    assert not RecoveryCode.objects.filter(user=gz_officer).exists()
    row = AuditEvent.objects.get(action="auth.2fa_reset")
    assert (row.actor_id, row.target_id) == (admin.pk, str(gz_officer.pk))
    assert row.details["devices_removed"] == 1


def test_reset_2fa_acts_as_the_first_administrator_by_default(
    admin: User, gz_officer: User
) -> None:
    call_command("reset_2fa", gz_officer.email.upper(), stdout=StringIO())
    assert AuditEvent.objects.get(action="auth.2fa_reset").actor_id == admin.pk


@pytest.mark.parametrize(
    ("email", "actor", "message"),
    [
        ("nobody@example.org", None, "No account uses"),
        ("li.wei@gz.example", "olivia@hmrc.example", "no active administrator"),
    ],
    ids=["unknown-account", "actor-not-an-admin"],
)
def test_reset_2fa_refuses_what_it_cannot_do(
    admin: User, gz_officer: User, uk_officer: User, email: str, actor: str | None, message: str
) -> None:
    enrolled(gz_officer)
    with pytest.raises(CommandError, match=message):
        call_command("reset_2fa", email, actor=actor, stdout=StringIO())
    assert TOTPDevice.objects.filter(user=gz_officer).exists()
    assert not AuditEvent.objects.filter(action="auth.2fa_reset").exists()


# --- resetting two-factor: the provisioning page's button ---------------------------------------


def reset_url(exercise: Exercise, user: User) -> str:
    membership = Membership.objects.get(exercise=exercise, user=user)
    return f"/manage/exercises/{exercise.pk}/members/{membership.pk}/reset-2fa/"


def test_an_admin_sees_a_reset_button_per_member(
    client: Client, login_as: Any, admin: User, exercise: Exercise, gz_officer: User
) -> None:
    login_as(client, admin)
    page = client.get(f"/manage/exercises/{exercise.pk}/").content.decode()
    assert f'action="{reset_url(exercise, gz_officer)}"' in page
    assert "Reset two-factor" in page


def test_the_reset_button_resets_the_member_and_is_audited(
    client: Client, login_as: Any, admin: User, exercise: Exercise, gz_officer: User
) -> None:
    enrolled(gz_officer)
    member_client = login_as(Client(), gz_officer)
    login_as(client, admin)
    response = client.post(reset_url(exercise, gz_officer), REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    assert response["Location"].endswith("#members")
    assert not TOTPDevice.objects.filter(user=gz_officer, confirmed=True).exists()
    assert not UserSession.objects.filter(user=gz_officer, ended_at__isnull=True).exists()
    row = AuditEvent.objects.get(action="auth.2fa_reset")
    assert (row.actor_id, row.target_id, row.ip) == (admin.pk, str(gz_officer.pk), "10.1.2.3")
    followed = client.get(response["Location"])
    assert "Two-factor authentication of Li Wei was reset" in followed.content.decode()
    # The member's signed-in browser is signed out.
    assert member_client.get("/").status_code == 302


def test_a_coordinator_gets_no_reset_button_and_is_refused(
    client: Client, login_as: Any, uk_coordinator: User, exercise: Exercise, gz_officer: User
) -> None:
    enrolled(gz_officer)
    login_as(client, uk_coordinator)
    page = client.get(f"/manage/exercises/{exercise.pk}/").content.decode()
    assert "reset-2fa" not in page
    assert client.post(reset_url(exercise, gz_officer)).status_code == 403
    assert TOTPDevice.objects.filter(user=gz_officer, confirmed=True).exists()
    assert not AuditEvent.objects.filter(action="auth.2fa_reset").exists()


def test_the_reset_button_only_accepts_a_post(
    client: Client, login_as: Any, admin: User, exercise: Exercise, gz_officer: User
) -> None:
    login_as(client, admin)
    assert client.get(reset_url(exercise, gz_officer)).status_code == 405
