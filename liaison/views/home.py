"""The home page: the exercises I belong to and their rooms."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from liaison.selectors import exercises_for, managed_exercises


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """My exercises and their rooms (dates in my time zone, via UserTimezoneMiddleware)."""
    user = request.user
    # Admins and auditors may see every exercise; their home lists the ones they belong to.
    mine = (
        exercises_for(user)
        if user.is_officer
        else exercises_for(user).filter(
            memberships__user=user, memberships__removed_at__isnull=True
        )
    )
    return render(
        request,
        "liaison/home.html",
        {
            "exercises": list(mine.distinct()),
            "coordinates": user.is_officer and managed_exercises(user).exists(),
        },
    )
