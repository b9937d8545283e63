"""Two clocks: each agency's local time and office hours in the room header, each person's local
time in the people list, right on both sides of the British summer-time changes."""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from liaison import clocks
from liaison.models import Room, User
from tests.conftest import sign_in

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def agency(name: str, zone: str) -> SimpleNamespace:
    return SimpleNamespace(name=name, time_zone=zone)


# --- the rule ------------------------------------------------------------------------------------


def test_a_zone_is_labelled_by_its_city_in_the_readers_language() -> None:
    with translation.override("en"):
        assert clocks.zone_city("Europe/London") == "London"
        assert clocks.zone_city("Asia/Shanghai") == "Shanghai"
        assert clocks.zone_city("America/Sao_Paulo") == "Sao Paulo"
        assert clocks.zone_city("") == "UTC"
    with translation.override("zh-hans"):
        assert clocks.zone_city("Europe/London") == "伦敦"
        assert clocks.zone_city("Asia/Shanghai") == "上海"


@pytest.mark.parametrize(
    ("moment", "zone", "open_"),
    [
        ("2026-11-30 07:59", "Europe/London", False),  # Monday, before eight
        ("2026-11-30 08:00", "Europe/London", True),
        ("2026-11-30 17:59", "Europe/London", True),
        ("2026-11-30 18:00", "Europe/London", False),
        ("2026-11-30 08:00", "Asia/Shanghai", True),  # 16:00 there
        ("2026-11-30 00:30", "Asia/Shanghai", True),  # 08:30 Monday in Guangzhou
        ("2026-11-27 11:00", "Asia/Shanghai", False),  # Friday 19:00 there, open in London
        ("2026-11-28 12:00", "Europe/London", False),  # Saturday
        ("2026-11-30 12:00", "Mars/Olympus", True),  # an unknown zone reads as UTC
    ],
)
def test_office_hours_are_eight_to_six_local_on_weekdays(
    moment: str, zone: str, open_: bool
) -> None:
    assert clocks.is_office_hours(zone, at=at(moment)) is open_


def test_one_clock_per_zone_west_to_east_naming_its_agencies() -> None:
    agencies = [
        agency("GACC Guangzhou Customs", "Asia/Shanghai"),
        agency("UK Border Force", "Europe/London"),
        agency("HM Revenue & Customs", "Europe/London"),
    ]

    with translation.override("en"):
        shown = clocks.agency_clocks(agencies, at=at("2026-11-30 08:34"))

    assert [(c.city, c.time, c.office_hours) for c in shown] == [
        ("London", "08:34", True),
        ("Shanghai", "16:34", True),
    ]
    assert shown[0].agency_names == "HM Revenue & Customs, UK Border Force"
    assert shown[1].zone == "Asia/Shanghai"
    assert clocks.agency_clocks([], at=at("2026-11-30 08:34")) == []


# --- on the room page, across the summer-time changes ---------------------------------------------

SUMMER_TIME_CHANGES = [
    # (UTC moment, London, Shanghai): London is 8 hours behind in winter, 7 in summer.
    ("2026-03-28 12:00", "12:00", "20:00"),  # Saturday before the clocks go forward
    ("2026-03-30 12:00", "13:00", "20:00"),  # Monday after: British Summer Time
    ("2026-10-24 12:00", "13:00", "20:00"),  # Saturday before the clocks go back
    ("2026-10-26 12:00", "12:00", "20:00"),  # Monday after: Greenwich Mean Time
]


def header_clocks(html: str) -> dict[str, tuple[str, str]]:
    found = re.findall(
        r'<span class="clock" data-clock-zone="([^"]+)"[^>]*>.*?'
        r'<time class="clock-time">([0-9:]+)</time> <span class="clock-hours[^"]*">([^<]+)</span>',
        html,
    )
    return {zone: (time, hours) for zone, time, hours in found}


def person_time(html: str, user: User) -> str:
    block = html.split(f'data-person="{user.pk}"', 1)[1].split("</li>", 1)[0]
    match = re.search(r'class="person-time" data-clock-zone="[^"]+"[^>]*>([0-9:]+)<', block)
    assert match is not None
    return match.group(1)


@pytest.mark.django_db
@pytest.mark.parametrize(("moment", "london", "shanghai"), SUMMER_TIME_CHANGES)
def test_the_room_header_shows_each_agencys_time_on_both_sides_of_the_change(
    time_machine: Any,
    uk_officer: User,
    gz_officer: User,
    room: Room,
    moment: str,
    london: str,
    shanghai: str,
) -> None:
    time_machine.move_to(at(moment), tick=False)

    for reader in (uk_officer, gz_officer):
        html = sign_in(Client(), reader).get(f"/rooms/{room.pk}/").content.decode()

        clocks_shown = header_clocks(html)
        assert clocks_shown["Europe/London"][0] == london
        assert clocks_shown["Asia/Shanghai"][0] == shanghai
        # Each person's local time, whoever reads.
        assert person_time(html, uk_officer) == london
        assert person_time(html, gz_officer) == shanghai
        assert 'data-office-opens="8"' in html
        assert 'data-office-closes="18"' in html


@pytest.mark.django_db
def test_the_header_says_whether_offices_are_open_in_the_readers_language(
    time_machine: Any, uk_officer: User, gz_officer: User, room: Room
) -> None:
    # Monday 2026-11-30 17:30 UTC: 17:30 in London (open), 01:30 Tuesday in Guangzhou (closed).
    time_machine.move_to(at("2026-11-30 17:30"), tick=False)

    html = sign_in(Client(), uk_officer).get(f"/rooms/{room.pk}/").content.decode()
    assert header_clocks(html) == {
        "Europe/London": ("17:30", "office hours"),
        "Asia/Shanghai": ("01:30", "out of hours"),
    }
    assert ">London</span>" in html
    assert "GACC Guangzhou Customs · Asia/Shanghai" in html

    gz_officer.language = "zh-hans"
    gz_officer.save(update_fields=["language"])
    html = sign_in(Client(), gz_officer).get(f"/rooms/{room.pk}/").content.decode()
    assert header_clocks(html) == {
        "Europe/London": ("17:30", "工作时间"),
        "Asia/Shanghai": ("01:30", "非工作时间"),
    }
    assert ">伦敦</span>" in html
    assert ">上海</span>" in html
