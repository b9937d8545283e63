"""The officer's own profile (name, time zone, language, e-mail notifications) and the language
switch in the header and on the sign-in page."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from liaison.errors import Invalid
from liaison.forms import ProfileForm, add_service_error
from liaison.services import accounts
from liaison.views.base import client_ip


@cache
def time_zone_names() -> list[str]:
    """Every IANA zone name, for the searchable list (a <datalist>)."""
    return sorted(zoneinfo.available_timezones())


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user = request.user
    languages = accounts.interface_languages()
    if request.method == "POST":
        form = ProfileForm(request.POST, languages=languages)
        if form.is_valid():
            data = form.cleaned_data
            try:
                changed = accounts.update_profile(
                    user=user,
                    display_name=data["display_name"],
                    time_zone=data["time_zone"],
                    language=data["language"],
                    email_notifications=data["email_notifications"],
                    ip=client_ip(request),
                )
            except Invalid as error:
                add_service_error(form, error)
            else:
                response = redirect("profile")
                if "language" in changed:
                    _remember_language(response, user.language)
                    translation.activate(user.language or _browser_language(request))
                if changed:
                    messages.success(request, _("Your profile has been saved."))
                else:
                    messages.info(request, _("Nothing to save: your profile is unchanged."))
                return response
        status = 400
    else:
        form = ProfileForm(
            initial={
                "display_name": user.display_name,
                "time_zone": user.time_zone,
                "language": user.language,
                "email_notifications": user.email_notifications,
            },
            languages=languages,
        )
        status = 200
    return render(
        request,
        "liaison/account/profile.html",
        {"form": form, "time_zones": time_zone_names()},
        status=status,
    )


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """Switch the interface language at once: a cookie for everyone (the sign-in page too),
    and the saved choice of a signed-in user, audited."""
    language = request.POST.get("language", "")
    response = redirect(_back(request))
    if language not in accounts.interface_languages():
        return response
    if request.user.is_authenticated:
        accounts.set_language(user=request.user, language=language, ip=client_ip(request))
    _remember_language(response, language)
    return response


def _back(request: HttpRequest) -> str:
    """The page the switch was pressed on (the form carries no URL of its own, so a page with a
    secret in its address, like an invitation link, renders the same for every link)."""
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


def _browser_language(request: HttpRequest) -> str:
    return translation.get_language_from_request(request) or settings.LANGUAGE_CODE


def _remember_language(response: HttpResponse, language: str) -> None:
    """The language cookie, read by LocaleMiddleware before anyone signs in."""
    if not language:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME, path=settings.LANGUAGE_COOKIE_PATH)
        return
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE or "Lax",
    )
