"""Session validity, shared by HTTP middleware and WebSocket consumers.

A session is valid while its row exists and has not expired, and it began after the user's
``sessions_valid_after`` mark (set by "log out everywhere" and admin resets).
"""

from __future__ import annotations

from django.contrib.sessions.models import Session
from django.utils import timezone

from liaison.models import User


def socket_session_problem(*, user_id: int, session_key: str | None) -> str | None:
    """``None`` if the socket's session is still good, else a short reason (close with 4401)."""
    if not session_key:
        return "no session"
    session = Session.objects.filter(
        session_key=session_key, expire_date__gt=timezone.now()
    ).first()
    if session is None:
        return "session expired"
    user = User.objects.filter(pk=user_id, is_active=True).only("sessions_valid_after").first()
    if user is None:
        return "account disabled"
    return None
