"""Bearings on the real room page (a real daphne server, real Chromium): a London officer comes
back to a room with sixty unread messages from Guangzhou. The list says which day each stretch
was written, folds Li Wei's run of messages under one name, draws the "New messages" line
before the first she has not read, and offers to jump there; each agency's clock is in the
header and each person's local time in the people list."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import time_machine
from django.db import connections
from django.utils import timezone

from liaison.models import ReadMarker, Room, User
from liaison.services import messaging
from tests.conftest import LiveServer
from tests.test_browser_chat import open_room

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live_server,
    pytest.mark.django_db(transaction=True),
]

LONDON = zoneinfo.ZoneInfo("Europe/London")


def write(sender: User, room: Room, at: dt.datetime, number: int) -> None:
    """A message stored at ``at``, sent from a thread of its own (this one runs the browser's
    event loop, and the service publishes to the channel layer)."""

    def store() -> None:
        with time_machine.travel(at, tick=False):
            messaging.send_message(
                sender=sender, room_id=room.pk, client_id=f"c-{number}", body=f"Update {number}"
            )
        connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(store).result()


def test_a_returning_officer_finds_days_runs_and_the_first_unread_message(
    browser: Any, asgi_server: LiveServer, uk_officer: User, gz_officer: User, room: Room
) -> None:
    from playwright.sync_api import expect

    today = timezone.now().astimezone(LONDON).replace(hour=0, minute=0, second=0, microsecond=0)
    for number in range(1, 11):  # yesterday afternoon, every few minutes: read
        write(gz_officer, room, today - dt.timedelta(hours=12, minutes=-10 * number), number)
    for number in range(11, 71):  # today, a run a few seconds apart: unread
        write(gz_officer, room, today + dt.timedelta(minutes=1, seconds=5 * number), number)
    ReadMarker.objects.create(user=uk_officer, room=room, last_read_seq=10)

    context, olivia = open_room(browser, asgi_server, uk_officer, room)

    messages = olivia.locator("#chat-messages > li.msg")
    expect(messages).to_have_count(61)  # from the last one she read, not only the newest page
    separators = olivia.locator("#chat-messages > li.day-separator")
    expect(separators).to_have_text(["Yesterday", "Today"])
    line = olivia.locator("#chat-messages > li.unread-line")
    expect(line).to_have_count(1)
    expect(line).to_have_text("New messages")
    # The line sits right before message 11, after today's separator.
    assert line.evaluate("node => node.nextElementSibling.dataset.seq") == "11"
    assert line.evaluate("node => node.previousElementSibling.className") == "day-separator"
    # One name for a run: the first message after the line shows Li Wei, the next ones fold.
    assert messages.nth(1).get_attribute("class") == "msg"
    expect(messages.nth(2)).to_have_class(re.compile(r"\bgrouped\b"))
    folded = messages.nth(2).locator(".msg-sender")
    assert folded.bounding_box()["width"] <= 1  # visually hidden...
    expect(folded).to_have_text("Li Wei")  # ...but still read out
    # Yesterday's messages, ten minutes apart, are not a run.
    assert "grouped" not in (messages.nth(0).get_attribute("class") or "")

    # She is at the newest message; the first unread one is above: a button takes her there.
    jump = olivia.locator("#chat-jump-unread")
    expect(jump).to_be_visible()
    jump.click()
    expect(jump).to_be_hidden()
    top = olivia.evaluate(
        "() => document.querySelector('.unread-line').getBoundingClientRect().top"
        " - document.getElementById('chat-log').getBoundingClientRect().top"
    )
    assert -5 <= top <= 60
    expect(olivia.locator("#chat-messages > li.msg[data-seq='11']")).to_be_focused()

    # The header's clocks and the people's local times are there, and current.
    clocks = olivia.locator("#chat-clocks .clock")
    expect(clocks).to_have_count(2)
    expect(clocks.nth(0).locator(".clock-city")).to_have_text("London")
    expect(clocks.nth(1).locator(".clock-city")).to_have_text("Shanghai")
    now = timezone.now()
    shanghai = now.astimezone(zoneinfo.ZoneInfo("Asia/Shanghai"))
    shown = clocks.nth(1).locator(".clock-time").inner_text()
    assert shown in {
        shanghai.strftime("%H:%M"),
        (shanghai + dt.timedelta(minutes=1)).strftime("%H:%M"),
    }
    person = olivia.locator(f'#chat-people li[data-person="{gz_officer.pk}"] .person-time')
    expect(person).to_have_text(shown)
    assert olivia.problems == []  # type: ignore[attr-defined]
    context.close()


def test_no_new_messages_line_when_everything_was_read(
    browser: Any, asgi_server: LiveServer, uk_officer: User, gz_officer: User, room: Room
) -> None:
    from playwright.sync_api import expect

    for number in (1, 2):
        write(gz_officer, room, timezone.now(), number)
    ReadMarker.objects.create(user=uk_officer, room=room, last_read_seq=2)

    context, olivia = open_room(browser, asgi_server, uk_officer, room)

    expect(olivia.locator("#chat-messages > li.msg")).to_have_count(2)
    expect(olivia.locator("#chat-messages > li.day-separator")).to_have_text(["Today"])
    expect(olivia.locator(".unread-line")).to_have_count(0)
    expect(olivia.locator("#chat-jump-unread")).to_be_hidden()
    context.close()
