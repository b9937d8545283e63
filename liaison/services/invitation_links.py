"""The invitation link: its token digest, its URL, and the e-mail that carries it."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.core.mail import send_mail

from liaison.models import Exercise, Invitation, User

TOKEN_BYTES = 32


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def invitation_url(token: str, *, base_url: str | None = None) -> str:
    base = (base_url or settings.LIAISON_BASE_URL).rstrip("/")
    return f"{base}/invite/{token}/"


def send_invitation_email(
    *, invitation: Invitation, exercise: Exercise, actor: User, url: str
) -> None:
    """The invitee learns the link only from this message (or from whoever is told it)."""
    expires = invitation.expires_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    send_mail(
        subject=f"Invitation to exercise {exercise.code} on Liaison",
        message=(
            f"{actor.display_name} invites you to the liaison exercise {exercise.code} "
            f"({exercise.title}) as {invitation.get_role_display().lower()}.\n\n"
            f"Open this link to join (it works once, for {invitation.email} only, "
            f"until {expires}):\n\n{url}\n\n"
            "If you did not expect this invitation, ignore this message."
        ),
        from_email=None,
        recipient_list=[invitation.email],
        fail_silently=False,
    )
