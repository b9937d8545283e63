"""Wall clocks across the twinning: what time it is for each agency of an exercise, whether
its office is open, and a short city label for a time zone. No database, no request: the room
page renders these once and the chat client (static/liaison/chat/clocks.js) keeps them current
with the same rule.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Office hours, local time: weekdays (Monday is 0) from the start hour up to the end hour.
OFFICE_OPENS = 8
OFFICE_CLOSES = 18
OFFICE_DAYS = frozenset(range(5))

# The cities of the zones customs liaison work meets most, as a reader of each language names
# them; any other zone is labelled by the last part of its name ("America/Sao_Paulo": "Sao Paulo").
CITY_NAMES = {
    "UTC": _("UTC"),
    "Europe/London": _("London"),
    "Europe/Dublin": _("Dublin"),
    "Europe/Brussels": _("Brussels"),
    "Europe/Amsterdam": _("Amsterdam"),
    "Europe/Paris": _("Paris"),
    "Europe/Berlin": _("Berlin"),
    "Europe/Madrid": _("Madrid"),
    "Europe/Rome": _("Rome"),
    "Asia/Shanghai": _("Shanghai"),
    "Asia/Hong_Kong": _("Hong Kong"),
    "Asia/Singapore": _("Singapore"),
    "Asia/Tokyo": _("Tokyo"),
    "Asia/Seoul": _("Seoul"),
    "Asia/Dubai": _("Dubai"),
    "America/New_York": _("New York"),
}


def zone_info(name: str) -> zoneinfo.ZoneInfo:
    """The zone called ``name``, or UTC for a blank or unknown name (a page never fails on it)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def zone_city(name: str) -> str:
    """A short label for a time zone, in the active language: "London" for Europe/London."""
    if name in CITY_NAMES:
        return str(CITY_NAMES[name])
    return (name or "UTC").rsplit("/", 1)[-1].replace("_", " ")


def local_time(zone: str, *, at: dt.datetime | None = None) -> dt.datetime:
    """``at`` (now by default) on the wall clocks of ``zone``."""
    return (at or timezone.now()).astimezone(zone_info(zone))


def clock_text(zone: str, *, at: dt.datetime | None = None) -> str:
    """The local time in ``zone`` as a 24-hour "HH:MM", the way both languages show it."""
    return local_time(zone, at=at).strftime("%H:%M")


def is_office_hours(zone: str, *, at: dt.datetime | None = None) -> bool:
    """Whether offices in ``zone`` are open at ``at``: 08:00 to 18:00 local, Monday to Friday."""
    local = local_time(zone, at=at)
    return local.weekday() in OFFICE_DAYS and OFFICE_OPENS <= local.hour < OFFICE_CLOSES


@dataclass(frozen=True)
class AgencyClock:
    """One clock of the room header: a time zone and the agencies of the exercise in it."""

    zone: str
    city: str
    time: str
    office_hours: bool
    agencies: list[str] = field(default_factory=list)
    offset_minutes: int = 0

    @property
    def agency_names(self) -> str:
        return ", ".join(self.agencies)


def agency_clocks(
    agencies: Iterable[object], *, at: dt.datetime | None = None
) -> list[AgencyClock]:
    """One clock per time zone among ``agencies`` (objects with ``name`` and ``time_zone``),
    west to east, each naming the agencies it stands for."""
    moment = at or timezone.now()
    names: dict[str, list[str]] = {}
    for agency in agencies:
        zone = str(getattr(agency, "time_zone", "") or "UTC")
        names.setdefault(zone, []).append(str(getattr(agency, "name", "")))
    clocks = []
    for zone, agency_names in names.items():
        local = local_time(zone, at=moment)
        offset = local.utcoffset() or dt.timedelta(0)
        clocks.append(
            AgencyClock(
                zone=zone,
                city=zone_city(zone),
                time=local.strftime("%H:%M"),
                office_hours=is_office_hours(zone, at=moment),
                agencies=sorted(agency_names),
                offset_minutes=int(offset.total_seconds() // 60),
            )
        )
    return sorted(clocks, key=lambda clock: (clock.offset_minutes, clock.city))
