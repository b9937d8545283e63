"""Typed domain errors. Services raise them; views map them to HTTP, consumers to error frames.

A ``detail`` is translated into the language active where the error is raised (the reader's:
the request's, or the socket's), so services pass ``gettext(...)`` text; ``default_detail`` is
the translatable text used when none is given.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _


class LiaisonError(Exception):
    """Base for every error a user may be told about. ``detail`` is safe to show."""

    code = "invalid"
    http_status = 400

    default_detail = _("The request is malformed or breaks a rule.")

    def __init__(self, detail: str = "", *, field: str | None = None) -> None:
        self.detail = str(detail or self.default_detail)
        super().__init__(self.detail)
        self.field = field


class Invalid(LiaisonError):
    """The request is malformed or breaks a rule."""

    code = "invalid"
    http_status = 400
    default_detail = _("The request is malformed or breaks a rule.")


class PermissionDenied(LiaisonError):
    """You are not allowed to do this."""

    code = "forbidden"
    http_status = 403
    default_detail = _("You are not allowed to do this.")


class NotFound(LiaisonError):
    """Not found."""

    code = "not_found"
    http_status = 404
    default_detail = _("Not found.")


class Conflict(LiaisonError):
    """The request conflicts with the current state."""

    code = "conflict"
    http_status = 409
    default_detail = _("The request conflicts with the current state.")


class TooLarge(LiaisonError):
    """Too large."""

    code = "too_large"
    http_status = 413
    default_detail = _("Too large.")


class RoomClosed(LiaisonError):
    """This exercise is closed: its rooms are read-only."""

    code = "room_closed"
    http_status = 409
    default_detail = _("This exercise is closed: its rooms are read-only.")


class AccessDenied(NotFound):
    """Not found.

    Raised by the ``access_*`` fetchers when an object is missing *or* the user may not see it:
    the caller cannot tell which, so nothing leaks. Entry points record it as a denied access.
    """

    def __init__(self, detail: str = "", *, target_type: str = "", target_id: str = "") -> None:
        super().__init__(detail or _("Not found."))
        self.target_type = target_type
        self.target_id = target_id


class GrantOutdated(LiaisonError):
    """The room's access epoch moved since the caller's grant was read: read it again.

    Never shown to a user: the socket re-reads its grant and retries, or closes.
    """

    code = "unavailable"
    http_status = 503
