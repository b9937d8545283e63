"""The invitation link /invite/<token>/: a new officer creates an account and joins; an existing
officer signs in and joins. Every unusable link gets the same page, which names nothing."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from liaison.errors import Invalid
from liaison.forms import NewOfficerForm
from liaison.models import Membership
from liaison.services import invitations as invitation_service
from liaison.services.invitations import InvitationRefused, SignInRequired
from liaison.views.base import client_ip
from liaison.views.home import remember_welcome
from liaison.views.limits import limit_requests

# One status and one text for unknown, used, revoked and expired links alike.
INVALID_LINK_STATUS = 404
SIGN_IN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _private(response: HttpResponse) -> HttpResponse:
    """The token is in the URL: keep the page out of every cache."""
    add_never_cache_headers(response)
    return response


def _invalid_link(request: HttpRequest) -> HttpResponse:
    return _private(
        render(
            request,
            "liaison/invite/invalid.html",
            {"detail": invitation_service.INVALID_LINK_DETAIL},
            status=INVALID_LINK_STATUS,
        )
    )


def _refused(request: HttpRequest, refusal: InvitationRefused) -> HttpResponse:
    if refusal.is_opaque:
        return _invalid_link(request)
    return _private(
        render(request, "liaison/invite/refused.html", {"detail": refusal.detail}, status=403)
    )


def _sign_in_first(request: HttpRequest) -> HttpResponse:
    return redirect(f"{reverse('login')}?{urlencode({'next': request.path})}")


def _joined(request: HttpRequest, membership: Membership) -> HttpResponse:
    exercise = membership.exercise
    messages.success(
        request,
        _("You joined exercise %(code)s (%(title)s).")
        % {"code": exercise.code, "title": exercise.title},
    )
    remember_welcome(request, exercise)
    return redirect("/")


@require_http_methods(["GET", "POST"])
@limit_requests("invitation.link", by="ip", html=True)
def accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitation_service.find_usable_invitation(token)
    if request.method == "GET" and invitation is None:
        return _invalid_link(request)
    ip = client_ip(request)

    if request.user.is_authenticated:
        if request.method == "GET":
            if request.user.email.lower() != invitation.email.lower():
                return _private(
                    render(
                        request,
                        "liaison/invite/refused.html",
                        {
                            "detail": "This invitation was sent to a different e-mail address "
                            "than the one you are signed in with. Sign out, then open the link "
                            "again."
                        },
                        status=403,
                    )
                )
            return _private(render(request, "liaison/invite/join.html", {"invitation": invitation}))
        try:
            membership = invitation_service.accept_invitation(token=token, user=request.user, ip=ip)
        except InvitationRefused as refusal:
            return _refused(request, refusal)
        return _joined(request, membership)

    if invitation is not None and invitation_service.account_exists_for(invitation):
        return _sign_in_first(request)
    form = NewOfficerForm(request.POST or None)
    if request.method == "POST" and (invitation is None or form.is_valid()):
        # An unusable link still goes to the service, which audits the refused attempt.
        data = form.cleaned_data if invitation is not None else {}
        try:
            membership = invitation_service.accept_invitation(
                token=token,
                display_name=data.get("display_name", ""),
                password=data.get("password1", ""),
                ip=ip,
            )
        except InvitationRefused as refusal:
            return _refused(request, refusal)
        except SignInRequired:
            return _sign_in_first(request)
        except Invalid as error:
            form.add_service_error(error)
        else:
            login(request, membership.user, backend=SIGN_IN_BACKEND)
            return _joined(request, membership)
    return _private(
        render(
            request,
            "liaison/invite/new_officer.html",
            {"invitation": invitation, "form": form},
            status=400 if request.method == "POST" else 200,
        )
    )
