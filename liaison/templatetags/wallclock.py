"""Template filters for the wall clocks of other people: ``{{ zone|local_clock }}`` is the
time it is now in that zone ("16:34"), ``{{ zone|office_hours }}`` whether offices there are
open (see ``liaison.clocks``)."""

from __future__ import annotations

from django import template

from liaison import clocks

register = template.Library()


@register.filter
def local_clock(zone: str) -> str:
    return clocks.clock_text(str(zone or "UTC"))


@register.filter
def office_hours(zone: str) -> bool:
    return clocks.is_office_hours(str(zone or "UTC"))
