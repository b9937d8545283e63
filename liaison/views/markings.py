"""An exercise's handling markings, set by an administrator over the API."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from liaison import access, schemas
from liaison.services import markings
from liaison.views.base import api_endpoint, client_ip, parse_json


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
