"""The exercises API under /api/v1/exercises: exercises, their rooms, invitations and members
(the HTML pages for the same are views/provisioning.py). Session authentication; CSRF is
enforced for unsafe methods by Django's middleware (nothing here is exempt). Errors are
``{"error": {"code", "detail"}}``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext

from liaison import access, selectors
from liaison.errors import AccessDenied, Invalid
from liaison.models import Agency, Exercise, GroupRole, Invitation, Membership, User
from liaison.payloads import (
    exercise_payload,
    invitation_payload,
    membership_payload,
    room_payload,
)
from liaison.services import exercises as exercise_service
from liaison.services import invitations as invitation_service
from liaison.services import memberships as membership_service
from liaison.services import rooms as room_service
from liaison.views.base import api_endpoint, client_ip, parse_json
from liaison.views.limits import limit_requests

# --- request parsing ------------------------------------------------------------------------------


def _body(request: HttpRequest, allowed: set[str]) -> dict[str, Any]:
    data = parse_json(request)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise Invalid(
            gettext("Unknown field(s): %(values)s. Allowed: %(values2)s.")
            % {"values": ", ".join(unknown), "values2": ", ".join(sorted(allowed))},
            field=unknown[0],
        )
    return data


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(gettext("%(name)s must be a string.") % {"name": name}, field=name)
    if required and not value.strip():
        raise Invalid(gettext("%(name)s is required.") % {"name": name}, field=name)
    return value


def _strings(data: dict[str, Any], name: str, *, split: bool = True) -> list[str]:
    """A list of strings; a single string is split on commas and spaces (if ``split``)."""
    value = data.get(name, [])
    if isinstance(value, str):
        return [item for item in value.replace(",", " ").split() if item] if split else [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Invalid(gettext("%(name)s must be a list of strings.") % {"name": name}, field=name)
    return value


def _when(data: dict[str, Any], name: str) -> dt.datetime:
    value = data.get(name)
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise Invalid(
            gettext("%(name)s must be an ISO 8601 date and time, like 2026-07-01T08:00:00Z.")
            % {"name": name},
            field=name,
        )
    if timezone.is_naive(parsed):
        raise Invalid(
            gettext("%(name)s needs a time zone offset (Z or +08:00).") % {"name": name}, field=name
        )
    return parsed


def _whole(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(gettext("%(name)s must be a whole number.") % {"name": name}, field=name)
    return value


def _agencies(codes: list[str]) -> list[Agency]:
    found = {agency.code: agency for agency in Agency.objects.filter(code__in=codes)}
    missing = [code for code in codes if code not in found]
    if missing:
        raise Invalid(
            gettext("Unknown agency code(s): %(values)s.") % {"values": ", ".join(missing)},
            field="agencies",
        )
    return [found[code] for code in dict.fromkeys(codes)]


def _agency(code: str) -> Agency:
    agency = Agency.objects.filter(code=code).first()
    if agency is None:
        raise Invalid(
            gettext("Unknown agency code %(code)s.") % {"code": repr(code[:32])}, field="agency"
        )
    return agency


EXERCISE_FIELDS = {
    "code",
    "title",
    "commodity_focus",
    "hs_codes",
    "lanes",
    "agencies",
    "starts_at",
    "ends_at",
    "retention_days",
}


# Chosen at creation only: PATCH refuses it like any unknown field.
CREATE_ONLY_FIELDS = {"history_visibility"}


def _exercise_arguments(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    readers = {
        "code": lambda: _text(data, "code", required=True),
        "title": lambda: _text(data, "title", required=True),
        "commodity_focus": lambda: _text(data, "commodity_focus"),
        "hs_codes": lambda: _strings(data, "hs_codes"),
        "lanes": lambda: _strings(data, "lanes", split=False),
        "agencies": lambda: _agencies(_strings(data, "agencies")),
        "starts_at": lambda: _when(data, "starts_at"),
        "ends_at": lambda: _when(data, "ends_at"),
        "retention_days": lambda: _whole(data, "retention_days"),
        "history_visibility": lambda: _text(data, "history_visibility", required=True),
    }
    required = {"code", "title", "agencies", "starts_at", "ends_at"}
    for name, read in readers.items():
        if name in data:
            arguments[name] = read()
        elif not partial and name in required:
            raise Invalid(gettext("%(name)s is required.") % {"name": name}, field=name)
    return arguments


def _detail(user: User, exercise: Exercise) -> dict[str, Any]:
    exercise = Exercise.objects.prefetch_related("agencies", "rooms").get(pk=exercise.pk)
    body = exercise_payload(exercise, role=selectors.exercise_roles(user).get(exercise.pk))
    with_email = access.sees_member_emails(user, exercise)
    body["members"] = [
        membership_payload(membership, with_email=with_email)
        for membership in selectors.current_memberships(exercise)
    ]
    return body


# --- endpoints ------------------------------------------------------------------------------------


@api_endpoint("GET", "POST")
def exercises(request: HttpRequest) -> HttpResponse:
    """GET: the exercises I may see, with their rooms. POST (admins): create one."""
    user = request.user
    if request.method == "GET":
        roles = selectors.exercise_roles(user)
        return JsonResponse(
            {
                "exercises": [
                    exercise_payload(exercise, role=roles.get(exercise.pk))
                    for exercise in selectors.exercises_for(user)
                ]
            }
        )
    access.require_admin(user)
    data = _body(request, EXERCISE_FIELDS | CREATE_ONLY_FIELDS)
    exercise = exercise_service.create_exercise(
        actor=user, ip=client_ip(request), **_exercise_arguments(data, partial=False)
    )
    return JsonResponse({"exercise": _detail(user, exercise)}, status=201)


@api_endpoint("GET", "PATCH")
def exercise(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """GET: one exercise I may see, with rooms and members. PATCH (admins): change it."""
    user = request.user
    found, _ = access.access_exercise(user, exercise_id)
    if request.method == "PATCH":
        data = _body(request, EXERCISE_FIELDS)
        if not data:
            raise Invalid(gettext("Send at least one field to change."))
        found = exercise_service.update_exercise(
            actor=user,
            exercise=found,
            ip=client_ip(request),
            **_exercise_arguments(data, partial=True),
        )
    return JsonResponse({"exercise": _detail(user, found)})


TRANSITIONS = {
    "activate": exercise_service.activate_exercise,
    "close": exercise_service.close_exercise,
    "archive": exercise_service.archive_exercise,
}


@api_endpoint("POST")
def exercise_transition(request: HttpRequest, exercise_id: int, action: str) -> HttpResponse:
    """POST activate | close | archive (admins)."""
    found, _ = access.access_exercise(request.user, exercise_id)
    service = TRANSITIONS.get(action)
    if service is None:
        raise AccessDenied(target_type="exercise", target_id=str(exercise_id))
    _body(request, set())
    found = service(actor=request.user, exercise=found, ip=client_ip(request))
    return JsonResponse({"exercise": _detail(request.user, found)})


@api_endpoint("POST")
def rooms(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """POST (admins): add a room."""
    found, _ = access.access_exercise(request.user, exercise_id)
    data = _body(request, {"name", "title", "topic"})
    room = room_service.add_room(
        actor=request.user,
        exercise=found,
        name=_text(data, "name", required=True),
        title=_text(data, "title"),
        topic=_text(data, "topic"),
        ip=client_ip(request),
    )
    return JsonResponse({"room": room_payload(room)}, status=201)


@api_endpoint("GET", "POST")
@limit_requests("invitation.create", methods=["POST"])
def invitations(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """GET: the exercise's invitations (``?state=pending``). POST: invite an officer; the
    response carries the token and link, this once."""
    found = access.access_managed_exercise(request.user, exercise_id)
    if request.method == "GET":
        state = request.GET.get("state") or None
        return JsonResponse(
            {
                "invitations": [
                    invitation_payload(invitation)
                    for invitation in invitation_service.invitations_of(found, state=state)
                ]
            }
        )
    data = _body(request, {"email", "agency", "role", "ttl_hours", "send_email"})
    send_email = data.get("send_email", False)
    if not isinstance(send_email, bool):
        raise Invalid(gettext("send_email must be true or false."), field="send_email")
    issued = invitation_service.create_invitation(
        actor=request.user,
        exercise=found,
        email=_text(data, "email", required=True),
        agency=_agency(_text(data, "agency", required=True)),
        role=_text(data, "role") or GroupRole.MEMBER,
        ttl_hours=_whole(data, "ttl_hours") if "ttl_hours" in data else None,
        send_email=send_email,
        base_url=request.build_absolute_uri("/"),
        ip=client_ip(request),
    )
    return JsonResponse(
        {
            "invitation": invitation_payload(issued.invitation),
            "token": issued.token,
            "url": issued.url,
            "emailed": issued.emailed,
            "email_error": issued.email_error or None,
        },
        status=201,
    )


@api_endpoint("POST")
def invitation_revoke(request: HttpRequest, exercise_id: int, invitation_id: int) -> HttpResponse:
    """POST: revoke a pending invitation (the row stays, marked revoked)."""
    found = access.access_managed_exercise(request.user, exercise_id)
    invitation = (
        Invitation.objects.select_related("exercise", "agency", "created_by")
        .filter(pk=invitation_id, exercise=found)
        .first()
    )
    if invitation is None:
        raise AccessDenied(target_type="invitation", target_id=str(invitation_id))
    _body(request, set())
    invitation = invitation_service.revoke_invitation(
        actor=request.user, invitation=invitation, ip=client_ip(request)
    )
    return JsonResponse({"invitation": invitation_payload(invitation)})


@api_endpoint("GET", "POST")
def members(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """GET: current members. POST (admins): add an existing officer directly."""
    user = request.user
    found, _ = access.access_exercise(user, exercise_id)
    if request.method == "GET":
        with_email = access.sees_member_emails(user, found)
        return JsonResponse(
            {
                "members": [
                    membership_payload(membership, with_email=with_email)
                    for membership in selectors.current_memberships(found)
                ]
            }
        )
    access.require_admin(user)
    data = _body(request, {"email", "role"})
    email = _text(data, "email", required=True).strip().lower()
    officer = User.objects.filter(email=email).first()
    if officer is None:
        raise Invalid(
            gettext("No account uses the e-mail address %(email)s.") % {"email": email[:254]},
            field="email",
        )
    membership = membership_service.add_member(
        actor=user,
        exercise=found,
        user=officer,
        role=_text(data, "role") or GroupRole.MEMBER,
        ip=client_ip(request),
    )
    return JsonResponse({"member": membership_payload(membership, with_email=True)}, status=201)


@api_endpoint("PATCH", "DELETE")
def member(request: HttpRequest, exercise_id: int, user_id: int) -> HttpResponse:
    """PATCH {"role"}: change a member's role. DELETE: remove the member (the row is kept with
    ``removed_at``; their open sockets close). Admins only."""
    found, _ = access.access_exercise(request.user, exercise_id)
    membership = (
        Membership.objects.select_related("user", "user__agency", "exercise")
        .filter(exercise=found, user_id=user_id, removed_at__isnull=True)
        .first()
    )
    if membership is None:
        raise AccessDenied(target_type="membership", target_id=f"{found.pk}:{user_id}")
    if request.method == "DELETE":
        membership = membership_service.remove_member(
            actor=request.user, membership=membership, ip=client_ip(request)
        )
    else:
        data = _body(request, {"role"})
        membership = membership_service.change_role(
            actor=request.user,
            membership=membership,
            role=_text(data, "role", required=True),
            ip=client_ip(request),
        )
    return JsonResponse({"member": membership_payload(membership, with_email=True)})
