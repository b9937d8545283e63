"""Typed domain errors. Services raise them; views map them to HTTP, consumers to error frames."""

from __future__ import annotations


class LiaisonError(Exception):
    """Base for every error a user may be told about. ``detail`` is safe to show."""

    code = "invalid"
    http_status = 400

    def __init__(self, detail: str = "", *, field: str | None = None) -> None:
        super().__init__(detail or self.__class__.__doc__ or self.code)
        self.detail = detail or (self.__class__.__doc__ or self.code).strip()
        self.field = field


class Invalid(LiaisonError):
    """The request is malformed or breaks a rule."""

    code = "invalid"
    http_status = 400


class PermissionDenied(LiaisonError):
    """You are not allowed to do this."""

    code = "forbidden"
    http_status = 403


class NotFound(LiaisonError):
    """Not found."""

    code = "not_found"
    http_status = 404


class Conflict(LiaisonError):
    """The request conflicts with the current state."""

    code = "conflict"
    http_status = 409


class TooLarge(LiaisonError):
    """Too large."""

    code = "too_large"
    http_status = 413


class RoomClosed(LiaisonError):
    """This exercise is closed: its rooms are read-only."""

    code = "room_closed"
    http_status = 409


class AccessDenied(NotFound):
    """Not found.

    Raised by the ``access_*`` fetchers when an object is missing *or* the user may not see it:
    the caller cannot tell which, so nothing leaks. Entry points record it as a denied access.
    """

    def __init__(self, detail: str = "", *, target_type: str = "", target_id: str = "") -> None:
        super().__init__(detail or "Not found.")
        self.target_type = target_type
        self.target_id = target_id
