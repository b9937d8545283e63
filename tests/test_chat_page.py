"""The room page: who may open it, what it tells the script, and that it stays CSP-clean."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils import timezone

from liaison.models import AuditEvent, ExerciseStatus, Membership, Room, User
from tests.conftest import sign_in
from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db


class PageScan(HTMLParser):
    """Collects what the strict CSP would refuse, and the chat root's data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inline_scripts = 0
        self.script_sources: list[str] = []
        self.handler_attributes: list[str] = []
        self.style_attributes = 0
        self.style_elements = 0
        self.chat: dict[str, str] = {}
        self.ids: dict[str, dict[str, str | None]] = {}
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on"):
                self.handler_attributes.append(f"{tag}[{name}]")
            if name == "style":
                self.style_attributes += 1
        if values.get("id"):
            self.ids[str(values["id"])] = values
        if tag == "style":
            self.style_elements += 1
        if tag == "script":
            if values.get("src"):
                self.script_sources.append(str(values["src"]))
            else:
                self.inline_scripts += 1
        if values.get("id") == "chat":
            self.chat = {k[5:]: v or "" for k, v in attrs if k.startswith("data-")}


def scan(response) -> PageScan:
    parser = PageScan()
    parser.feed(response.content.decode())
    return parser


def room_url(room: Room) -> str:
    return f"/rooms/{room.pk}/"


def test_the_room_page_renders_for_a_member(uk_officer: User, room: Room, lane_room: Room) -> None:
    response = sign_in(Client(), uk_officer).get(room_url(room))

    assert response.status_code == 200
    page = scan(response)
    assert page.chat["room-id"] == str(room.pk)
    assert page.chat["user-id"] == str(uk_officer.pk)
    assert page.chat["time-zone"] == "Europe/London"
    assert page.chat["can-post"] == "true"
    assert page.chat["ws-path"] == f"/ws/rooms/{room.pk}/"
    assert page.chat["last-seq"] == "0"
    assert page.chat["csrf-token"]
    assert page.chat["login-url"] == f"/login/?next=/rooms/{room.pk}/"
    assert page.chat["attachments-url"] == f"/api/v1/rooms/{room.pk}/attachments"
    html = response.content.decode()
    assert "CFE-TEST-WASTE" in html
    assert f'href="/rooms/{lane_room.pk}/"' in html  # the sidebar lists the other room
    assert f'data-unread-for="{lane_room.pk}"' in html
    assert "Olivia Hughes" in html
    assert page.ids["chat-input"].get("disabled") is None


def test_the_sidebar_lists_only_the_readers_own_exercises(
    uk_officer: User, outsider: User, room: Room, other_exercise
) -> None:
    foreign_room = RoomFactory(exercise=other_exercise, name="general", title="Elsewhere")

    response = sign_in(Client(), uk_officer).get(room_url(room))

    assert f'href="/rooms/{foreign_room.pk}/"' not in response.content.decode()
    assert "Sam Outsider" not in response.content.decode()


def test_the_people_list_names_each_current_member_with_agency_and_zone(
    uk_officer: User, gz_officer: User, gz_observer: User, room: Room
) -> None:
    response = sign_in(Client(), uk_officer).get(room_url(room))

    page = scan(response)
    html = response.content.decode()
    assert f'data-person="{gz_officer.pk}"' in html
    assert "GACC Guangzhou Customs" in html
    assert 'data-time-zone="Asia/Shanghai"' in html
    assert "Observer" in html  # roles other than plain member are labelled
    assert page.chat["time-zone"] == "Europe/London"


def test_the_reader_time_zone_is_their_own(gz_officer: User, room: Room) -> None:
    response = sign_in(Client(), gz_officer).get(room_url(room))

    assert scan(response).chat["time-zone"] == "Asia/Shanghai"


def test_an_auditor_reads_the_room_with_the_composer_disabled(
    auditor: User, room: Room, lane_room: Room
) -> None:
    response = sign_in(Client(), auditor).get(room_url(room))

    assert response.status_code == 200
    page = scan(response)
    assert page.chat["can-post"] == "false"
    assert "disabled" in page.ids["chat-input"]
    assert "disabled" in page.ids["chat-send"]
    assert "Auditors have read-only access." in response.content.decode()
    assert f'href="/rooms/{lane_room.pk}/"' in response.content.decode()


def test_an_observer_sees_the_composer_disabled_with_the_reason(
    gz_observer: User, room: Room
) -> None:
    response = sign_in(Client(), gz_observer).get(room_url(room))

    assert response.status_code == 200
    page = scan(response)
    assert page.chat["can-post"] == "false"
    assert "disabled" in page.ids["chat-input"]
    assert "disabled" in page.ids["chat-file"]
    assert page.ids["chat-readonly"].get("hidden") is None
    assert "Observers can read but not post in this exercise." in response.content.decode()


def test_a_closed_exercise_is_read_only_for_its_members(uk_officer: User, room: Room) -> None:
    exercise = room.exercise
    exercise.status = ExerciseStatus.CLOSED
    exercise.closed_at = timezone.now()
    exercise.save(update_fields=["status", "closed_at"])

    response = sign_in(Client(), uk_officer).get(room_url(room))

    assert response.status_code == 200
    assert scan(response).chat["can-post"] == "false"
    assert "its rooms are read-only" in response.content.decode()


def test_an_outsider_gets_not_found_and_the_attempt_is_audited(outsider: User, room: Room) -> None:
    response = sign_in(Client(), outsider).get(room_url(room))

    assert response.status_code == 404
    assert "CFE-TEST-WASTE" not in response.content.decode()
    assert AuditEvent.objects.filter(actor=outsider, target_id=str(room.pk)).exists()


def test_a_removed_member_gets_not_found(uk_officer: User, room: Room) -> None:
    Membership.objects.filter(user=uk_officer).update(removed_at=timezone.now())

    response = sign_in(Client(), uk_officer).get(room_url(room))

    assert response.status_code == 404
    assert "CFE-TEST-WASTE" not in response.content.decode()


def test_a_room_that_does_not_exist_looks_the_same_as_a_forbidden_one(
    uk_officer: User, outsider: User, room: Room
) -> None:
    missing = sign_in(Client(), uk_officer).get("/rooms/999999/")
    forbidden = sign_in(Client(), outsider).get(room_url(room))

    assert missing.status_code == forbidden.status_code == 404
    strip = re.compile(r"<header.*?</header>|<title>.*?</title>", re.S)
    assert strip.sub("", missing.content.decode()) == strip.sub("", forbidden.content.decode())


def test_an_archived_exercise_is_not_found_for_members(uk_officer: User, room: Room) -> None:
    room.exercise.status = ExerciseStatus.ARCHIVED
    room.exercise.save(update_fields=["status"])

    assert sign_in(Client(), uk_officer).get(room_url(room)).status_code == 404


def test_an_anonymous_visitor_is_sent_to_sign_in(room: Room) -> None:
    response = Client().get(room_url(room))

    assert response.status_code == 302
    assert response["Location"].startswith(f"/login/?next=/rooms/{room.pk}/")


def test_the_page_has_no_inline_script_style_or_handlers(uk_officer: User, room: Room) -> None:
    response = sign_in(Client(), uk_officer).get(room_url(room))

    page = scan(response)
    assert page.inline_scripts == 0
    assert page.handler_attributes == []
    assert page.style_attributes == 0
    assert page.style_elements == 0
    # The menus of every page, the translation catalogue (a script file), then the chat client.
    assert page.script_sources == [
        "/static/liaison/menus.js",
        "/jsi18n/",
        "/static/liaison/chat/main.js",
    ]
    assert "json_script" not in response.content.decode()
    assert "/static/liaison/chat.css" in response.content.decode()


def test_room_names_and_topics_are_escaped(uk_officer: User, exercise) -> None:
    hostile = RoomFactory(
        exercise=exercise,
        name="hostile",
        title='<script>alert("x")</script>',
        topic='<img src=x onerror="alert(1)">',
    )

    response = sign_in(Client(), uk_officer).get(room_url(hostile))

    page = scan(response)
    assert page.inline_scripts == 0
    assert page.handler_attributes == []
    assert "&lt;script&gt;" in response.content.decode()
