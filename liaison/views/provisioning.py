"""Provisioning pages under /manage/: admins run exercises; coordinators invite to their own.

Thin: parse a form, call a service, render or redirect. Rules and refusals come from the
services; an exercise id the user may not manage is a 404 like a missing one.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from liaison import access, selectors
from liaison.errors import AccessDenied, Conflict, Invalid, PermissionDenied
from liaison.forms import (
    ExerciseForm,
    InvitationForm,
    NewExerciseForm,
    RoleForm,
    RoomForm,
    add_service_error,
)
from liaison.models import Exercise, GroupRole, Invitation, Membership
from liaison.services import accounts as account_service
from liaison.services import exercises as exercise_service
from liaison.services import invitations as invitation_service
from liaison.services import memberships as membership_service
from liaison.services import retention as retention_service
from liaison.services import rooms as room_service
from liaison.views.base import client_ip, page
from liaison.views.limits import limit_requests

# Refusals a person can fix on the form or by reading the message; the rest go to the error page.
FIXABLE = (Invalid, Conflict)


def _detail_url(exercise: Exercise, anchor: str = "") -> str:
    return f"/manage/exercises/{exercise.pk}/" + (f"#{anchor}" if anchor else "")


def _invitation_in(exercise: Exercise, invitation_id: int) -> Invitation:
    invitation = (
        Invitation.objects.select_related("exercise").filter(pk=invitation_id, exercise=exercise)
    ).first()
    if invitation is None:
        raise AccessDenied(target_type="invitation", target_id=str(invitation_id))
    return invitation


def _membership_in(exercise: Exercise, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("exercise", "user").filter(
            pk=membership_id, exercise=exercise
        )
    ).first()
    if membership is None:
        raise AccessDenied(target_type="membership", target_id=str(membership_id))
    return membership


def _detail_context(request: HttpRequest, exercise: Exercise, **forms: Any) -> dict[str, Any]:
    user = request.user
    is_admin = user.is_admin
    state = request.GET.get("state") or None
    if state not in (None, *invitation_service.INVITATION_STATES):
        state = None
    invitations = invitation_service.invitations_of(exercise)
    counts = dict.fromkeys(invitation_service.INVITATION_STATES, 0)
    for invitation in invitations:
        counts[invitation.state] += 1
    members = list(selectors.current_memberships(exercise))
    return {
        "exercise": exercise,
        "is_admin": is_admin,
        "writable": exercise.is_writable,
        "rooms": exercise.rooms.order_by("name"),
        "agencies": exercise.agencies.order_by("name"),
        "members": members,
        "removed_members": exercise.memberships.filter(removed_at__isnull=False)
        .select_related("user", "user__agency", "removed_by")
        .order_by("-removed_at"),
        "invitations": [i for i in invitations if state is None or i.state == state],
        "invitation_counts": counts,
        "invitation_state": state,
        "invitation_states": invitation_service.INVITATION_STATES,
        "role_choices": GroupRole.choices,
        "room_form": forms.get("room_form") or RoomForm(),
        "invite_form": forms.get("invite_form")
        or InvitationForm(exercise=exercise, allow_coordinator=is_admin),
        "next_action": {
            "draft": "activate",
            "active": "close",
            "closed": "archive",
        }.get(exercise.status),
        "life": retention_service.life_of(exercise),
        "reason_max": retention_service.REASON_MAX,
    }


@login_required
@require_GET
@page
def exercise_list(request: HttpRequest) -> HttpResponse:
    exercises = list(selectors.managed_exercises(request.user))
    if not request.user.is_admin and not exercises:
        raise PermissionDenied(
            _("Only administrators and exercise coordinators can open provisioning.")
        )
    return render(
        request,
        "liaison/manage/exercise_list.html",
        {
            "exercises": exercises,
            "lives": [retention_service.life_of(exercise) for exercise in exercises],
            "is_admin": request.user.is_admin,
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
@page
def exercise_create(request: HttpRequest) -> HttpResponse:
    access.require_admin(request.user)
    form = NewExerciseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            exercise = exercise_service.create_exercise(
                actor=request.user, ip=client_ip(request), **form.service_arguments()
            )
        except FIXABLE as error:
            add_service_error(form, error)
        else:
            messages.success(
                request, _("Exercise %(code)s created as a draft.") % {"code": exercise.code}
            )
            return redirect(_detail_url(exercise))
    return render(
        request,
        "liaison/manage/exercise_form.html",
        {"form": form, "exercise": None},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_GET
@page
def exercise_detail(request: HttpRequest, exercise_id: int) -> HttpResponse:
    exercise = access.access_managed_exercise(request.user, exercise_id)
    return render(
        request, "liaison/manage/exercise_detail.html", _detail_context(request, exercise)
    )


@login_required
@require_http_methods(["GET", "POST"])
@page
def exercise_edit(request: HttpRequest, exercise_id: int) -> HttpResponse:
    exercise = access.access_managed_exercise(request.user, exercise_id)
    access.require_admin(request.user)
    exercise_service.require_writable(exercise)
    form = ExerciseForm(request.POST or None, initial=ExerciseForm.initial_for(exercise))
    if request.method == "POST" and form.is_valid():
        try:
            exercise_service.update_exercise(
                actor=request.user,
                exercise=exercise,
                ip=client_ip(request),
                **form.service_arguments(),
            )
        except FIXABLE as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Exercise %(code)s updated.") % {"code": exercise.code})
            return redirect(_detail_url(exercise))
    return render(
        request,
        "liaison/manage/exercise_form.html",
        {"form": form, "exercise": exercise},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
@page
def room_create(request: HttpRequest, exercise_id: int) -> HttpResponse:
    exercise = access.access_managed_exercise(request.user, exercise_id)
    form = RoomForm(request.POST)
    if form.is_valid():
        try:
            room = room_service.add_room(
                actor=request.user, exercise=exercise, ip=client_ip(request), **form.cleaned_data
            )
        except FIXABLE as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Room %(name)s added.") % {"name": room.name})
            return redirect(_detail_url(exercise, "rooms"))
    return render(
        request,
        "liaison/manage/exercise_detail.html",
        _detail_context(request, exercise, room_form=form),
        status=400,
    )


@login_required
@require_POST
@page
@limit_requests("invitation.create", html=True)
def invitation_create(request: HttpRequest, exercise_id: int) -> HttpResponse:
    exercise = access.access_managed_exercise(request.user, exercise_id)
    form = InvitationForm(request.POST, exercise=exercise, allow_coordinator=request.user.is_admin)
    if form.is_valid():
        data = form.cleaned_data
        try:
            issued = invitation_service.create_invitation(
                actor=request.user,
                exercise=exercise,
                email=data["email"],
                agency=data["agency"],
                role=data["role"],
                send_email=data["send_email"],
                base_url=request.build_absolute_uri("/"),
                ip=client_ip(request),
            )
        except FIXABLE as error:
            add_service_error(form, error)
        else:
            # The only time the link is shown: rendered, never stored, never cached.
            response = render(
                request,
                "liaison/manage/invitation_created.html",
                {"exercise": exercise, "issued": issued, "invitation": issued.invitation},
            )
            add_never_cache_headers(response)
            return response
    return render(
        request,
        "liaison/manage/exercise_detail.html",
        _detail_context(request, exercise, invite_form=form),
        status=400,
    )


@login_required
@require_POST
@page
def invitation_revoke(request: HttpRequest, exercise_id: int, invitation_id: int) -> HttpResponse:
    exercise = access.access_managed_exercise(request.user, exercise_id)
    invitation = _invitation_in(exercise, invitation_id)
    try:
        invitation_service.revoke_invitation(
            actor=request.user, invitation=invitation, ip=client_ip(request)
        )
    except FIXABLE as error:
        messages.error(request, error.detail)
    else:
        messages.success(
            request, _("The invitation for %(email)s was revoked.") % {"email": invitation.email}
        )
    return redirect(_detail_url(exercise, "invitations"))


@login_required
@require_POST
@page
def member_remove(request: HttpRequest, exercise_id: int, membership_id: int) -> HttpResponse:
    exercise = access.access_managed_exercise(request.user, exercise_id)
    membership = _membership_in(exercise, membership_id)
    try:
        membership_service.remove_member(
            actor=request.user, membership=membership, ip=client_ip(request)
        )
    except FIXABLE as error:
        messages.error(request, error.detail)
    else:
        messages.success(
            request,
            _("%(display_name)s was removed.") % {"display_name": membership.user.display_name},
        )
    return redirect(_detail_url(exercise, "members"))


@login_required
@require_POST
@page
def member_role(request: HttpRequest, exercise_id: int, membership_id: int) -> HttpResponse:
    exercise = access.access_managed_exercise(request.user, exercise_id)
    membership = _membership_in(exercise, membership_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        raise Invalid(_("Choose a role: coordinator, member or observer."), field="role")
    try:
        membership_service.change_role(
            actor=request.user,
            membership=membership,
            role=form.cleaned_data["role"],
            ip=client_ip(request),
        )
    except FIXABLE as error:
        messages.error(request, error.detail)
    else:
        messages.success(
            request,
            _("%(display_name)s is now %(role)s.")
            % {
                "display_name": membership.user.display_name,
                "role": GroupRole(form.cleaned_data["role"]).label.lower(),
            },
        )
    return redirect(_detail_url(exercise, "members"))


@login_required
@require_POST
@page
def member_reset_two_factor(
    request: HttpRequest, exercise_id: int, membership_id: int
) -> HttpResponse:
    """An administrator resets a member who lost their authenticator (the sign-in page sends
    them here); the member enrols again at their next sign-in."""
    exercise = access.access_managed_exercise(request.user, exercise_id)
    membership = _membership_in(exercise, membership_id)
    account_service.reset_two_factor(
        actor=request.user, user=membership.user, ip=client_ip(request)
    )
    messages.success(
        request,
        _(
            "Two-factor authentication of %(display_name)s was reset: they set it up again "
            "at their next sign-in."
        )
        % {"display_name": membership.user.display_name},
    )
    return redirect(_detail_url(exercise, "members"))


TRANSITION_SERVICES = {
    "activate": exercise_service.activate_exercise,
    "close": exercise_service.close_exercise,
    "archive": exercise_service.archive_exercise,
}


@login_required
@require_POST
@page
def exercise_transition(request: HttpRequest, exercise_id: int, action: str) -> HttpResponse:
    exercise = access.access_managed_exercise(request.user, exercise_id)
    service = TRANSITION_SERVICES.get(action)
    if service is None:
        raise AccessDenied(target_type="exercise", target_id=str(exercise_id))
    try:
        exercise = service(actor=request.user, exercise=exercise, ip=client_ip(request))
    except FIXABLE as error:
        messages.error(request, error.detail)
    else:
        messages.success(
            request,
            _("Exercise %(code)s is now %(status)s.")
            % {"code": exercise.code, "status": exercise.get_status_display().lower()},
        )
    return redirect(_detail_url(exercise))


@login_required
@require_POST
@page
def exercise_legal_hold(request: HttpRequest, exercise_id: int, action: str) -> HttpResponse:
    """An administrator puts the exercise under legal hold (with a reason) or lifts it."""
    exercise = access.access_managed_exercise(request.user, exercise_id)
    try:
        if action == "set":
            exercise = retention_service.set_legal_hold(
                actor=request.user,
                exercise=exercise,
                reason=request.POST.get("reason", ""),
                ip=client_ip(request),
            )
            done = _("Exercise %(code)s is under legal hold: nothing destroys its content.")
        else:
            exercise = retention_service.lift_legal_hold(
                actor=request.user, exercise=exercise, ip=client_ip(request)
            )
            done = _("The legal hold on %(code)s was lifted: its retention applies again.")
    except FIXABLE as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, done % {"code": exercise.code})
    return redirect(_detail_url(exercise, "life"))


@login_required
@require_POST
@page
def exercise_waive_export(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """An administrator lets the exercise be shredded without a signed export (with a reason)."""
    exercise = access.access_managed_exercise(request.user, exercise_id)
    try:
        exercise = retention_service.waive_export(
            actor=request.user,
            exercise=exercise,
            reason=request.POST.get("reason", ""),
            ip=client_ip(request),
        )
    except FIXABLE as error:
        messages.error(request, error.detail)
    else:
        messages.success(
            request,
            _(
                "The signed export of %(code)s was waived: it is shredded when its retention "
                "ends, without one."
            )
            % {"code": exercise.code},
        )
    return redirect(_detail_url(exercise, "life"))
