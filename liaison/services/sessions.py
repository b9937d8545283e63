"""Session policy, shared by HTTP middleware and WebSocket consumers.

Every signed-in browser or API session has a ``UserSession`` row, created at login (the
``user_logged_in`` signal). A session is good while:

- its row exists and has not been ended (logout, revocation, "log out everywhere", expiry);
- it is younger than ``LIAISON_SESSION_ABSOLUTE_SECONDS`` (absolute lifetime, default 12 h);
- it saw activity within ``LIAISON_SESSION_IDLE_SECONDS`` (idle timeout, default 30 min);
- it began after the user's ``sessions_valid_after`` mark (admin resets) and the account is
  active;
- for sockets, additionally: it is still in Django's session store, belongs to that user, carries
  the user's current password hash, and its second factor was verified.

Activity: every HTTP request counts, and so do the WebSocket frames a person causes (sending,
editing, reading, typing, asking for history), as in Slack or Mattermost where an active chat
keeps the session alive. Keep-alive ``ping`` frames do not count, so an unattended open tab still
times out. Consumers report activity with ``touch_session(session_key)``; writes happen at most
once a minute per session.
"""

from __future__ import annotations

import datetime as dt
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from liaison import audit, events
from liaison.errors import AccessDenied
from liaison.models import User, UserSession
from liaison.services import revocation, twofactor

# At most one ``last_seen_at`` write per session per this interval.
TOUCH_INTERVAL = dt.timedelta(seconds=60)

# Reasons a session is no longer good (returned by the checks, stored as ``end_reason``).
NO_SESSION = "no session"
SESSION_GONE = "session expired"
SESSION_ENDED = "session ended"
IDLE_TIMEOUT = "session idle too long"
LIFETIME_EXCEEDED = "session lifetime exceeded"
SESSIONS_REVOKED = "session revoked"
ACCOUNT_DISABLED = "account disabled"
NOT_VERIFIED = "second factor not verified"
OTHER_USER = "session belongs to another user"
CREDENTIALS_CHANGED = "password changed"


def idle_limit() -> dt.timedelta:
    return dt.timedelta(seconds=settings.LIAISON_SESSION_IDLE_SECONDS)


def absolute_limit() -> dt.timedelta:
    return dt.timedelta(seconds=settings.LIAISON_SESSION_ABSOLUTE_SECONDS)


def session_store(session_key: str | None = None) -> SessionBase:
    """A session object of the configured engine (database by default)."""
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


# --- the policy -------------------------------------------------------------------------------


def tracked_session_problem(
    row: UserSession | None, *, user: User, now: dt.datetime | None = None
) -> str | None:
    """``None`` if the tracked session satisfies the policy, else the reason it does not."""
    now = now or timezone.now()
    if row is None or row.user_id != user.pk:
        return SESSION_ENDED
    if row.ended_at is not None:
        return SESSION_ENDED
    if now - row.created_at >= absolute_limit():
        return LIFETIME_EXCEEDED
    if now - row.last_seen_at >= idle_limit():
        return IDLE_TIMEOUT
    if not user.is_active:
        return ACCOUNT_DISABLED
    if user.sessions_valid_after is not None and row.created_at < user.sessions_valid_after:
        return SESSIONS_REVOKED
    return None


def session_deadline(row: UserSession) -> dt.datetime:
    """When this session lapses if nothing more happens (idle timeout or absolute lifetime)."""
    return min(row.created_at + absolute_limit(), row.last_seen_at + idle_limit())


def check_http_session(*, user: User, session_key: str | None) -> str | None:
    """The HTTP side of the policy, run by ``SessionPolicyMiddleware`` on every request of a
    signed-in user: a reason to end the session, or ``None`` (and the activity is recorded)."""
    if not session_key:
        return NO_SESSION
    now = timezone.now()
    row = UserSession.objects.filter(session_key=session_key).first()
    problem = tracked_session_problem(row, user=user, now=now)
    if problem is None and now - row.last_seen_at >= TOUCH_INTERVAL:
        UserSession.objects.filter(pk=row.pk).update(last_seen_at=now)
    return problem


def socket_session_problem(*, user_id: int, session_key: str | None) -> str | None:
    """``None`` if the socket's session is still good, else a short reason (close with 4401)."""
    return socket_session(user_id=user_id, session_key=session_key)[0]


def socket_session(
    *, user_id: int, session_key: str | None
) -> tuple[str | None, UserSession | None]:
    """The socket's session check and, when it passes, its tracked row with the person and
    their agency (the socket's deadlines come from it, so a caller needs no second read).

    Consumers call it when a deadline is due. It only reads; the session itself is ended by the
    next HTTP request or by whoever revokes it. A socket's admission reads the same rows with
    its room in one statement (``realtime/standing.py``) and applies the same rule.
    """
    if not session_key:
        return NO_SESSION, None
    data = session_store(session_key).load()
    row = (
        UserSession.objects.filter(session_key=session_key)
        .select_related("user", "user__agency")
        .first()
    )
    problem = socket_session_problem_of(data=data, row=row, user_id=user_id)
    return problem, row if problem is None else None


def socket_session_problem_of(
    *,
    data: dict[str, Any],
    row: UserSession | None,
    user_id: int | None,
    confirmed_totp_ids: set[int] | None = None,
) -> str | None:
    """The rule of a socket's session, for rows already read: ``None`` if the session data and
    its tracked ``row`` (with ``row.user``) are still good for ``user_id`` (``None``: whoever
    the session belongs to). ``confirmed_totp_ids``: the person's confirmed authenticators, when
    the caller read them with the rest."""
    if not data:
        return SESSION_GONE
    owner = str(data.get(SESSION_KEY))
    if user_id is not None and owner != str(user_id):
        return OTHER_USER
    if row is None or str(row.user_id) != owner:
        return SESSION_ENDED
    user = row.user
    problem = tracked_session_problem(row, user=user)
    if problem is not None:
        return problem
    if data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return SESSION_ENDED
    if not constant_time_compare(str(data.get(HASH_SESSION_KEY, "")), user.get_session_auth_hash()):
        return CREDENTIALS_CHANGED
    verified = twofactor.session_is_verified(
        user=user, session_data=data, confirmed_totp_ids=confirmed_totp_ids
    )
    if not verified:
        return NOT_VERIFIED
    return None


def decode_session(session_key: str, session_data: str) -> dict[str, Any]:
    """A session's stored data, decoded as the session engine would (``{}`` if tampered)."""
    return session_store(session_key).decode(session_data)


def touch_session(session_key: str | None) -> None:
    """Record activity on a session (an HTTP request, or a WebSocket frame the person caused).

    At most one write a minute; never revives a session that already lapsed or ended.
    """
    if not session_key:
        return
    now = timezone.now()
    UserSession.objects.filter(
        session_key=session_key,
        ended_at__isnull=True,
        last_seen_at__lt=now - TOUCH_INTERVAL,
        last_seen_at__gt=now - idle_limit(),
        created_at__gt=now - absolute_limit(),
    ).update(last_seen_at=now)


# --- starting and ending sessions ---------------------------------------------------------------


def start_session(
    *, user: User, session_key: str, ip: str | None, user_agent: str = ""
) -> UserSession:
    """Track a session that has just signed in (called on ``user_logged_in``)."""
    now = timezone.now()
    with transaction.atomic():
        row, _ = UserSession.objects.update_or_create(
            session_key=session_key,
            defaults={
                "user": user,
                "ip": ip or None,
                "user_agent": (user_agent or "")[:300],
                "created_at": now,
                "last_seen_at": now,
                "ended_at": None,
                "end_reason": "",
            },
        )
    return row


def rekey_session(*, old_key: str | None, new_key: str | None) -> None:
    """Follow a session whose key was rotated (second factor verified, password changed)."""
    if not old_key or not new_key or old_key == new_key:
        return
    UserSession.objects.filter(session_key=old_key).update(session_key=new_key)


def _end(row: UserSession, *, reason: str, now: dt.datetime) -> None:
    """Mark one session ended, drop it from the session store and close its sockets.

    Call inside a transaction; the close event leaves after commit.
    """
    if row.ended_at is None:
        row.ended_at = now
        row.end_reason = reason[:32]
        row.save(update_fields=["ended_at", "end_reason"])
    session_store().delete(row.session_key)
    revocation.narrow_person(user_id=row.user_id, recheck=False)
    events.publish_on_commit(
        events.user_group(row.user_id), events.session_ended(session_key=row.session_key)
    )


def end_session_at_logout(*, user: User, session_key: str | None) -> None:
    """The person signed out of this session (the ``auth.logout`` audit comes from the signal)."""
    if not session_key:
        return
    with transaction.atomic():
        row = (
            UserSession.objects.select_for_update()
            .filter(session_key=session_key, user=user)
            .first()
        )
        if row is not None:
            _end(row, reason="logout", now=timezone.now())


def expire_session(*, user: User, session_key: str | None, reason: str, ip: str | None) -> None:
    """The policy refused a session (idle, too old, revoked): end it and say why in the log."""
    with transaction.atomic():
        row = None
        if session_key:
            row = (
                UserSession.objects.select_for_update()
                .filter(session_key=session_key, user=user)
                .first()
            )
        if row is not None:
            _end(row, reason=reason, now=timezone.now())
        elif session_key:
            session_store().delete(session_key)
        audit.record(
            actor=user,
            action="auth.session_expired",
            target=user,
            ip=ip,
            reason=reason,
            session=row.pk if row is not None else None,
        )


def active_sessions(user: User, *, now: dt.datetime | None = None) -> QuerySet[UserSession]:
    """The user's sessions that are still good, most recently used first."""
    now = now or timezone.now()
    sessions = UserSession.objects.filter(
        user=user,
        ended_at__isnull=True,
        created_at__gt=now - absolute_limit(),
        last_seen_at__gt=now - idle_limit(),
    )
    if user.sessions_valid_after is not None:
        sessions = sessions.filter(created_at__gte=user.sessions_valid_after)
    return sessions.order_by("-last_seen_at", "-pk")


def revoke_session(*, actor: User, session_id: int, ip: str | None) -> UserSession:
    """End one of the actor's own sessions (the security page's "revoke")."""
    with transaction.atomic():
        row = (
            UserSession.objects.select_for_update()
            .filter(pk=session_id, user=actor, ended_at__isnull=True)
            .first()
        )
        if row is None:
            raise AccessDenied(target_type="usersession", target_id=str(session_id))
        _end(row, reason="revoked", now=timezone.now())
        audit.record(actor=actor, action="auth.session_revoked", target=row, ip=ip, session=row.pk)
    return row


def _end_others(*, user: User, keep_session_key: str | None, reason: str) -> int:
    now = timezone.now()
    rows = list(
        UserSession.objects.select_for_update()
        .filter(user=user, ended_at__isnull=True)
        .exclude(session_key=keep_session_key or "")
    )
    for row in rows:
        _end(row, reason=reason, now=now)
    return len(rows)


def end_other_sessions(*, actor: User, keep_session_key: str | None, ip: str | None) -> int:
    """Log out everywhere else: every other session of the actor ends and its sockets close.
    Returns how many sessions ended."""
    with transaction.atomic():
        count = _end_others(user=actor, keep_session_key=keep_session_key, reason="logout_all")
        audit.record(actor=actor, action="auth.logout_everywhere", target=actor, ip=ip, ended=count)
    return count


def end_sessions_after_password_change(*, user: User, keep_session_key: str | None) -> int:
    """A new password voids the other sessions (and their sockets). Call inside the
    password change's transaction, which records the audit event."""
    return _end_others(user=user, keep_session_key=keep_session_key, reason="password_changed")


def end_all_sessions(*, user: User, reason: str) -> int:
    """End every session of ``user`` and void any untracked one (``sessions_valid_after``).

    For admin actions (two-factor reset, disabling); call inside the action's transaction,
    which records the audit event.
    """
    now = timezone.now()
    rows = list(UserSession.objects.select_for_update().filter(user=user, ended_at__isnull=True))
    for row in rows:
        _end(row, reason=reason, now=now)
    User.objects.filter(pk=user.pk).update(sessions_valid_after=now)
    user.sessions_valid_after = now
    revocation.narrow_person(user_id=user.pk, recheck=False)
    events.publish_on_commit(events.user_group(user.pk), events.session_ended(session_key=None))
    return len(rows)


def prune_sessions(*, now: dt.datetime | None = None) -> int:
    """Delete the rows of sessions that ended, or lapsed, more than ``LIAISON_SESSION_KEEP_DAYS``
    ago, and Django's expired stored sessions. Bookkeeping, not record: sign-ins, sign-outs and
    revocations stay in the audit log. Returns how many rows went."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.LIAISON_SESSION_KEEP_DAYS)
    gone = UserSession.objects.filter(
        Q(ended_at__lt=cutoff)
        | Q(ended_at__isnull=True, created_at__lt=cutoff - absolute_limit())
        | Q(ended_at__isnull=True, last_seen_at__lt=cutoff - idle_limit())
    )
    count, _ = gone.delete()
    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
    return count
