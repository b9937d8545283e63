"""The home page, and where each role lands after signing in.

An administrator lands on Provisioning and an auditor on the audit workspace: neither belongs to
exercises, so a list of "my exercises" would only ever be empty for them. An officer lands on
their exercises, except just after joining one, when the exercise's first room opens with a
short welcome.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from liaison.models import Exercise, Role, Room
from liaison.selectors import exercises_for, first_room, managed_exercises

# The exercise an officer has just joined, until its first room has welcomed them.
WELCOME_SESSION_KEY = "liaison_welcome_exercise"
ROLE_LANDINGS = {Role.ADMIN: "manage", Role.AUDITOR: "audit-index"}


def remember_welcome(request: HttpRequest, exercise: Exercise) -> None:
    """The officer joined ``exercise``: their next landing is its first room, with a welcome
    (after setting up two-factor authentication, for a new account)."""
    request.session[WELCOME_SESSION_KEY] = exercise.pk


def take_welcome(request: HttpRequest, room: Room) -> bool:
    """Whether this room page should welcome the reader to its exercise (once)."""
    if request.session.get(WELCOME_SESSION_KEY) != room.exercise_id:
        return False
    del request.session[WELCOME_SESSION_KEY]
    return True


def _welcome_room(request: HttpRequest) -> Room | None:
    exercise_id = request.session.get(WELCOME_SESSION_KEY)
    if not isinstance(exercise_id, int):
        return None
    room = first_room(user=request.user, exercise_id=exercise_id)
    if room is None:
        request.session.pop(WELCOME_SESSION_KEY, None)
    return room


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """My exercises and their rooms (dates in my time zone, via UserTimezoneMiddleware)."""
    user = request.user
    if user.role in ROLE_LANDINGS:
        return redirect(ROLE_LANDINGS[user.role])
    welcome = _welcome_room(request)
    if welcome is not None:
        return redirect(reverse("room", args=[welcome.pk]))
    return render(
        request,
        "liaison/home.html",
        {
            "exercises": list(exercises_for(user).distinct()),
            "coordinates": managed_exercises(user).exists(),
        },
    )
