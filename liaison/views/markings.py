"""An exercise's handling markings, set by an administrator over the API or on the exercise's
provisioning page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from liaison import access, schemas
from liaison.errors import Invalid
from liaison.services import markings
from liaison.views.base import api_endpoint, client_ip, page, parse_json


@api_endpoint("GET", "PUT")
def exercise_markings(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """GET: the markings (anyone who may see the exercise). PUT ``{"markings": [...],
    "default": "...", "observer_download_limit": "..."}``: administrators only, audited."""
    exercise, _membership = access.access_exercise(request.user, exercise_id)
    if request.method == "PUT":
        body = schemas.parse(schemas.ExerciseMarkings, parse_json(request))
        exercise = markings.set_markings(
            actor=request.user,
            exercise=exercise,
            markings=body.markings,
            default=body.default,
            observer_download_limit=body.observer_download_limit,
            ip=client_ip(request),
        )
    return JsonResponse(
        {
            "exercise": exercise.pk,
            "markings": markings.exercise_markings(exercise),
            "default": exercise.default_marking,
            "observer_download_limit": exercise.observer_download_limit or None,
        }
    )


@login_required
@require_POST
@page
def manage_markings(request: HttpRequest, exercise_id: int) -> HttpResponse:
    """The provisioning page's markings form (administrators); back to the page either way."""
    exercise, _membership = access.access_exercise(request.user, exercise_id)
    names = [name for name in request.POST.get("markings", "").split(",") if name.strip()]
    try:
        markings.set_markings(
            actor=request.user,
            exercise=exercise,
            markings=names,
            default=request.POST.get("default", ""),
            observer_download_limit=request.POST.get("observer_download_limit", ""),
            ip=client_ip(request),
        )
    except Invalid as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, _("Handling markings saved."))
    return redirect(reverse("manage-exercise", args=[exercise.pk]) + "#markings")
