"""Session policy: tracked sessions, idle timeout and absolute lifetime over HTTP and open
WebSockets, revocation, logging out everywhere, password changes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from config.asgi import application
from liaison import events
from liaison.models import AuditEvent, Room, User, UserSession
from liaison.services import sessions
from tests.security_support import sign_in_with_both_factors

IDLE = dt.timedelta(minutes=30)
LIFETIME = dt.timedelta(hours=12)


@pytest.fixture
def clock(time_machine: Any) -> Any:
    time_machine.move_to("2026-03-02 09:00:00+00:00", tick=False)
    return time_machine


def row_of(client: Client) -> UserSession:
    return UserSession.objects.get(session_key=client.session.session_key)


def problem_of(user: User, client: Client) -> str | None:
    return sessions.socket_session_problem(user_id=user.pk, session_key=client.session.session_key)


# --- tracking -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signing_in_tracks_the_session_with_address_and_browser(
    client: Client, uk_officer: User, password: str
) -> None:
    sign_in_with_both_factors(
        client, uk_officer, password, REMOTE_ADDR="198.51.100.20", HTTP_USER_AGENT="Firefox/128.0"
    )
    row = row_of(client)
    assert row.user == uk_officer
    assert row.ip == "198.51.100.20"
    assert row.user_agent == "Firefox/128.0"
    assert row.ended_at is None


@pytest.mark.django_db
def test_activity_is_recorded_at_most_once_a_minute(
    client: Client, uk_officer: User, login_as: Any, clock: Any
) -> None:
    login_as(client, uk_officer)
    signed_in_at = row_of(client).last_seen_at
    clock.shift(30)
    client.get("/account/security/")
    assert row_of(client).last_seen_at == signed_in_at
    clock.shift(31)
    client.get("/account/security/")
    assert row_of(client).last_seen_at == signed_in_at + dt.timedelta(seconds=61)


# --- idle timeout and absolute lifetime over HTTP ---------------------------------------------


@pytest.mark.django_db
def test_an_idle_session_is_signed_out_and_sent_to_sign_in(
    client: Client, uk_officer: User, login_as: Any, clock: Any
) -> None:
    login_as(client, uk_officer)
    session_key = client.session.session_key
    clock.shift(IDLE - dt.timedelta(seconds=5))
    assert client.get("/account/security/").status_code == 200
    clock.shift(IDLE)
    response = client.get("/account/security/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Faccount%2Fsecurity%2F"
    row = UserSession.objects.get(session_key=session_key)
    assert row.ended_at is not None
    assert row.end_reason == sessions.IDLE_TIMEOUT[:32]
    assert not Session.objects.filter(session_key=session_key).exists()
    expired = AuditEvent.objects.get(action="auth.session_expired")
    assert expired.actor == uk_officer
    assert expired.details["reason"] == sessions.IDLE_TIMEOUT
    follow = client.get("/login/")
    assert b"inactivity" in follow.content


@pytest.mark.django_db
def test_an_idle_api_session_gets_401_session_expired(
    client: Client, uk_officer: User, login_as: Any, clock: Any
) -> None:
    login_as(client, uk_officer)
    clock.shift(IDLE + dt.timedelta(seconds=1))
    response = client.get("/api/v1/session")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "session_expired"


@pytest.mark.django_db
def test_an_active_session_still_ends_after_its_absolute_lifetime(
    client: Client, uk_officer: User, login_as: Any, clock: Any, settings: Any
) -> None:
    # Django's own expiry moves forward whenever the session data changes; the policy does not.
    settings.SESSION_COOKIE_AGE = 48 * 3600
    login_as(client, uk_officer)
    elapsed = dt.timedelta(0)
    step = dt.timedelta(minutes=25)
    while elapsed + step < LIFETIME:
        clock.shift(step)
        elapsed += step
        assert client.get("/account/security/").status_code == 200
    clock.shift(LIFETIME - elapsed)
    response = client.get("/account/security/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert (
        AuditEvent.objects.get(action="auth.session_expired").details["reason"]
        == sessions.LIFETIME_EXCEEDED
    )


# --- the socket check -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_socket_check_follows_the_policy(
    client: Client, uk_officer: User, gz_officer: User, login_as: Any, clock: Any
) -> None:
    login_as(client, uk_officer)
    assert problem_of(uk_officer, client) is None
    assert sessions.socket_session_problem(user_id=gz_officer.pk, session_key=None) == (
        sessions.NO_SESSION
    )
    assert (
        sessions.socket_session_problem(
            user_id=gz_officer.pk, session_key=client.session.session_key
        )
        == sessions.OTHER_USER
    )
    clock.shift(IDLE)
    assert problem_of(uk_officer, client) == sessions.IDLE_TIMEOUT


@pytest.mark.django_db
def test_the_socket_check_enforces_the_absolute_lifetime(
    client: Client, uk_officer: User, login_as: Any, clock: Any, settings: Any
) -> None:
    settings.LIAISON_SESSION_IDLE_SECONDS = 24 * 3600
    settings.SESSION_COOKIE_AGE = 48 * 3600
    login_as(client, uk_officer)
    clock.shift(LIFETIME - dt.timedelta(seconds=1))
    assert problem_of(uk_officer, client) is None
    clock.shift(1)
    assert problem_of(uk_officer, client) == sessions.LIFETIME_EXCEEDED


@pytest.mark.django_db
def test_the_socket_check_needs_a_verified_second_factor(
    client: Client, uk_officer: User, login_as: Any
) -> None:
    login_as(client, uk_officer)
    session = client.session
    del session[DEVICE_ID_SESSION_KEY]
    session.save()
    assert problem_of(uk_officer, client) == sessions.NOT_VERIFIED


@pytest.mark.django_db
def test_the_socket_check_refuses_ended_revoked_and_disabled_sessions(
    client: Client, uk_officer: User, login_as: Any, clock: Any
) -> None:
    login_as(client, uk_officer)
    key = client.session.session_key
    clock.shift(5)
    User.objects.filter(pk=uk_officer.pk).update(sessions_valid_after=timezone.now())
    assert problem_of(uk_officer, client) == sessions.SESSIONS_REVOKED

    login_as(client, uk_officer)
    User.objects.filter(pk=uk_officer.pk).update(is_active=False)
    assert problem_of(uk_officer, client) in {sessions.ACCOUNT_DISABLED, sessions.SESSION_ENDED}
    User.objects.filter(pk=uk_officer.pk).update(is_active=True)

    UserSession.objects.filter(session_key=client.session.session_key).update(
        ended_at=timezone.now()
    )
    assert problem_of(uk_officer, client) == sessions.SESSION_ENDED
    Session.objects.filter(session_key=key).delete()
    assert sessions.socket_session_problem(user_id=uk_officer.pk, session_key=key) == (
        sessions.SESSION_GONE
    )


@pytest.mark.django_db
def test_a_password_changed_elsewhere_voids_the_socket_session(
    client: Client, uk_officer: User, login_as: Any
) -> None:
    login_as(client, uk_officer)
    uk_officer.set_password("another-long-password-77")
    uk_officer.save()
    assert problem_of(uk_officer, client) == sessions.CREDENTIALS_CHANGED


@pytest.mark.django_db
def test_touching_a_session_keeps_it_alive_but_never_revives_it(
    client: Client, uk_officer: User, login_as: Any, clock: Any
) -> None:
    login_as(client, uk_officer)
    key = client.session.session_key
    clock.shift(IDLE - dt.timedelta(minutes=1))
    sessions.touch_session(key)
    clock.shift(IDLE - dt.timedelta(minutes=1))
    assert problem_of(uk_officer, client) is None
    clock.shift(IDLE)
    sessions.touch_session(key)
    assert problem_of(uk_officer, client) == sessions.IDLE_TIMEOUT


@pytest.mark.django_db
def test_the_socket_deadline_is_the_earlier_of_idle_and_lifetime(
    client: Client, uk_officer: User, login_as: Any, clock: Any
) -> None:
    login_as(client, uk_officer)
    row = row_of(client)
    assert sessions.session_deadline(row) == timezone.now() + IDLE
    # Active until an idle period before the end of its lifetime: the lifetime comes first.
    clock.shift(LIFETIME - dt.timedelta(minutes=10))
    row.last_seen_at = timezone.now()
    assert sessions.session_deadline(row) == row.created_at + LIFETIME


# --- ending sessions from the security page ---------------------------------------------------


@pytest.mark.django_db
def test_the_security_page_lists_the_sessions_and_marks_this_one(
    client: Client, uk_officer: User, login_as: Any, password: str
) -> None:
    other = Client(HTTP_USER_AGENT="Mozilla/5.0 (Windows NT 10.0) Firefox/128.0")
    sign_in_with_both_factors(other, uk_officer, password)
    login_as(client, uk_officer)
    page = client.get("/account/security/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="session') == 2
    assert "this session" in html
    assert "Firefox on Windows" in html
    assert other.session.session_key not in html
    assert "Signed in" in html  # recent sign-ins from the audit log
    assert 'class="recovery-codes-left">0<' in html


@pytest.mark.django_db
def test_an_officer_revokes_another_of_their_sessions(
    client: Client,
    uk_officer: User,
    login_as: Any,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    other = login_as(Client(), uk_officer)
    login_as(client, uk_officer)
    target = row_of(other)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/account/security/sessions/{target.pk}/revoke/")
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.end_reason == "revoked"
    assert other.get("/account/security/").status_code == 302
    assert client.get("/account/security/").status_code == 200
    revoked = AuditEvent.objects.get(action="auth.session_revoked")
    assert revoked.actor == uk_officer
    assert events.session_ended(session_key=target.session_key) in captured_events.to_group(
        events.user_group(uk_officer.pk)
    )


@pytest.mark.django_db
def test_nobody_revokes_someone_elses_session(
    client: Client, uk_officer: User, gz_officer: User, login_as: Any
) -> None:
    theirs = login_as(Client(), gz_officer)
    login_as(client, uk_officer)
    target = row_of(theirs)
    response = client.post(f"/account/security/sessions/{target.pk}/revoke/")
    assert response.status_code == 404
    target.refresh_from_db()
    assert target.ended_at is None
    assert AuditEvent.objects.filter(action="access.denied", actor=uk_officer).exists()
    assert theirs.get("/account/security/").status_code == 200


@pytest.mark.django_db
def test_revoking_this_session_signs_out(client: Client, uk_officer: User, login_as: Any) -> None:
    login_as(client, uk_officer)
    row = row_of(client)
    response = client.post(f"/account/security/sessions/{row.pk}/revoke/")
    assert response["Location"] == "/login/"
    row.refresh_from_db()
    assert row.end_reason == "logout"


@pytest.mark.django_db
def test_logging_out_everywhere_ends_every_other_session(
    client: Client,
    uk_officer: User,
    login_as: Any,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    others = [login_as(Client(), uk_officer) for _ in range(2)]
    other_keys = [other.session.session_key for other in others]
    login_as(client, uk_officer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/account/security/sessions/end-others/")
    assert response.status_code == 302
    for other in others:
        assert other.get("/account/security/").status_code == 302
    assert client.get("/account/security/").status_code == 200
    assert not Session.objects.filter(session_key__in=other_keys).exists()
    assert AuditEvent.objects.get(action="auth.logout_everywhere").details["ended"] == 2
    sent = captured_events.to_group(events.user_group(uk_officer.pk))
    for key in other_keys:
        assert events.session_ended(session_key=key) in sent
    assert events.session_ended(session_key=client.session.session_key) not in sent


@pytest.mark.django_db
def test_signing_out_ends_the_tracked_session(
    client: Client, uk_officer: User, login_as: Any
) -> None:
    login_as(client, uk_officer)
    row = row_of(client)
    client.post("/logout/")
    row.refresh_from_db()
    assert row.end_reason == "logout"
    assert not Session.objects.filter(session_key=row.session_key).exists()


# --- password changes -------------------------------------------------------------------------


@pytest.mark.django_db
def test_changing_the_password_keeps_this_session_and_ends_the_others(
    client: Client, uk_officer: User, login_as: Any, password: str
) -> None:
    other = login_as(Client(), uk_officer)
    login_as(client, uk_officer)
    old_key = client.session.session_key
    new_password = "harbour-crane-lantern-19"
    response = client.post(
        "/account/security/password/",
        {
            "current_password": password,
            "new_password": new_password,
            "new_password_again": new_password,
        },
    )
    assert response.status_code == 302
    uk_officer.refresh_from_db()
    assert uk_officer.check_password(new_password)
    assert client.session.session_key != old_key
    assert client.get("/account/security/").status_code == 200
    assert row_of(client).ended_at is None
    assert other.get("/account/security/").status_code == 302
    changed = AuditEvent.objects.get(action="auth.password_changed")
    assert changed.details["sessions_ended"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("new_password", "message"),
    [
        ("short-pw-1", "at least 12 characters"),
        ("password1234", "too common"),
        ("987654321098", "entirely numeric"),
        ("olivia.hughes.hmrc", "too similar"),
    ],
)
def test_a_new_password_must_pass_the_password_rules(
    client: Client, uk_officer: User, login_as: Any, password: str, new_password: str, message: str
) -> None:
    login_as(client, uk_officer)
    response = client.post(
        "/account/security/password/",
        {
            "current_password": password,
            "new_password": new_password,
            "new_password_again": new_password,
        },
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    uk_officer.refresh_from_db()
    assert uk_officer.check_password(password)


@pytest.mark.django_db
def test_a_wrong_current_password_is_refused_and_counted(
    client: Client, uk_officer: User, login_as: Any
) -> None:
    login_as(client, uk_officer)
    response = client.post(
        "/account/security/password/",
        {
            "current_password": "not-my-password-0",
            "new_password": "harbour-crane-lantern-19",
            "new_password_again": "harbour-crane-lantern-19",
        },
    )
    assert response.status_code == 400
    assert b"current password is not correct" in response.content
    assert AuditEvent.objects.filter(
        action="auth.login_failed", actor_label=uk_officer.email
    ).exists()


# --- open WebSockets --------------------------------------------------------------------------


async def closed_with(communicator: WebsocketCommunicator, timeout: float = 5) -> int | None:
    """Read until the server closes the socket; the close code."""
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return output.get("code")


async def pong(communicator: WebsocketCommunicator) -> None:
    """Wait for the answer to a ping (other frames, like presence, may come first)."""
    while (await communicator.receive_json_from(timeout=10))["type"] != "pong":
        pass


async def open_socket(user: User, room: Room, ws_headers: Any) -> tuple[WebsocketCommunicator, str]:
    headers = await database_sync_to_async(ws_headers)(user)
    cookie = dict(headers)[b"cookie"].decode()
    session_key = cookie.split("=", 1)[1]
    communicator = WebsocketCommunicator(application, f"/ws/rooms/{room.pk}/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator, session_key


@pytest.mark.django_db(transaction=True)
async def test_an_idle_session_closes_its_open_socket_with_4401(
    uk_officer: User, room: Room, ws_headers: Any, time_machine: Any, settings: Any
) -> None:
    settings.LIAISON_WS_SESSION_CHECK_SECONDS = 0.2
    communicator, _ = await open_socket(uk_officer, room, ws_headers)
    time_machine.move_to(timezone.now() + IDLE + dt.timedelta(seconds=5))
    assert await closed_with(communicator) == 4401
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_absolute_lifetime_closes_an_active_socket_with_4401(
    uk_officer: User, room: Room, ws_headers: Any, time_machine: Any, settings: Any
) -> None:
    settings.LIAISON_WS_SESSION_CHECK_SECONDS = 0.2
    settings.LIAISON_SESSION_IDLE_SECONDS = 24 * 3600
    communicator, _ = await open_socket(uk_officer, room, ws_headers)
    time_machine.move_to(timezone.now() + LIFETIME + dt.timedelta(seconds=5))
    assert await closed_with(communicator) == 4401
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_frames_the_officer_sends_keep_the_session_alive_but_pings_do_not(
    uk_officer: User, room: Room, ws_headers: Any, time_machine: Any
) -> None:
    communicator, session_key = await open_socket(uk_officer, room, ws_headers)
    start = timezone.now()

    def last_seen() -> dt.datetime:
        return UserSession.objects.get(session_key=session_key).last_seen_at

    time_machine.move_to(start + dt.timedelta(minutes=20))
    await communicator.send_json_to({"type": "ping"})
    await pong(communicator)
    assert await database_sync_to_async(last_seen)() < start + dt.timedelta(minutes=1)

    await communicator.send_json_to({"type": "typing"})
    await communicator.send_json_to({"type": "ping"})
    await pong(communicator)
    assert await database_sync_to_async(last_seen)() >= start + dt.timedelta(minutes=20)
    time_machine.move_to(start + dt.timedelta(minutes=45))
    problem = await database_sync_to_async(sessions.socket_session_problem)(
        user_id=uk_officer.pk, session_key=session_key
    )
    assert problem is None
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_logging_out_everywhere_closes_the_other_sessions_sockets(
    uk_officer: User, room: Room, ws_headers: Any, login_as: Any
) -> None:
    communicator, _ = await open_socket(uk_officer, room, ws_headers)
    client = await database_sync_to_async(login_as)(Client(), uk_officer)
    response = await database_sync_to_async(client.post)("/account/security/sessions/end-others/")
    assert response.status_code == 302
    assert await closed_with(communicator) == 4401
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_socket_of_this_session_stays_open_when_logging_out_elsewhere(
    uk_officer: User, room: Room, ws_headers: Any, login_as: Any, settings: Any
) -> None:
    settings.LIAISON_WS_SESSION_CHECK_SECONDS = 0.2
    communicator, session_key = await open_socket(uk_officer, room, ws_headers)
    other = await database_sync_to_async(login_as)(Client(), uk_officer)

    def end_others() -> int:
        actor = User.objects.get(pk=uk_officer.pk)
        return sessions.end_other_sessions(actor=actor, keep_session_key=session_key, ip=None)

    assert await database_sync_to_async(end_others)() == 1
    response = await database_sync_to_async(other.get)("/account/security/")
    assert response.status_code == 302
    await communicator.send_json_to({"type": "ping"})
    await pong(communicator)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_signing_out_closes_that_sessions_sockets(
    uk_officer: User, room: Room, ws_headers: Any
) -> None:
    communicator, session_key = await open_socket(uk_officer, room, ws_headers)

    def sign_out() -> None:
        client = Client()
        client.cookies["sessionid"] = session_key
        client.post("/logout/")

    await database_sync_to_async(sign_out)()
    assert await closed_with(communicator) == 4401
    await communicator.disconnect()
