"""Liaison on a phone, in real headless Chromium at 390×844 (and the room on a desktop too).

An officer at the quay holds the room in one hand: nothing scrolls sideways, the composer is on
the screen however long the conversation, the top bar is one line with a Menu button for the
rest, rooms and people open as drawers, and every control is at least a fingertip (44 px)
across. In English and in Chinese, whose labels are longer or shorter. The journeys also write
screenshots of the room, phone and desktop, in both languages, to var/screenshots/.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from liaison.models import Exercise, Room, User
from tests.browser_support import (
    DESKTOP,
    LANGUAGES,
    PHONE,
    converse,
    open_page,
    screenshot,
    sideways_overflow,
    small_targets,
    speaks,
)
from tests.conftest import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live_server,
    pytest.mark.django_db(transaction=True),
]

# What an officer taps on the room page, and in its menu and drawers.
ROOM_CONTROLS = (
    ".topbar .brand, .topbar-toggle, .chat-drawer-toggle, #chat-input, .chat-attach, #chat-send"
)
MENU_CONTROLS = ".topbar-menu a, .topbar-menu button"
ROOMS_CONTROLS = "#chat-rooms-drawer a, #chat-rooms-drawer button"
PEOPLE_CONTROLS = "#chat-people-drawer button"
# Every page's own buttons and fields (check boxes are tapped through their whole label line).
PAGE_CONTROLS = (
    ".topbar .brand, .topbar-toggle, .topbar .language-switch button, main button, main .button, "
    'main select, main input:not([type="checkbox"]):not([type="radio"]):not([type="hidden"])'
)


# A morning on the Felixstowe–Nansha lane: more than a phone shows at once, in both languages
# (message text is never translated), with one long unbroken reference, the kind of line that
# pushes a page sideways.
SCRIPT = (
    ("gz", "早上好。MSKU 7712034 已在南沙港查验，申报为废塑料颗粒（HS 3915）。"),
    ("uk", "Morning Li Wei. Thanks, is that the box on the CMA CGM Tage?"),
    ("gz", "Yes, sailed 12 November, due Felixstowe on the 3rd."),
    ("coord", "Both lanes report by 16:00 London time, please."),
    ("uk", "Noted. We will hold the sister container TGHU 5520981 for a joint inspection."),
    ("gz", "Manifest: https://customs.example/manifests/" + "NANSHA-FXT-2026-" * 6),
    ("uk", "Got it. The weights match the export declaration."),
    ("gz", "样品照片今天下午上传。"),
    ("coord", "Please add the photos to the exercise record when they arrive."),
    ("uk", "Border Force has a slot at 09:30 tomorrow for the examination."),
    ("gz", "好的，我们明早 8 点（北京时间）前确认收货人信息。"),
    ("uk", "Thank you. I will post the examination result here."),
    ("gz", "Thanks Olivia. 舱单已上传，请英方确认。"),
)


@pytest.fixture
def conversation(
    room: Room, lane_room: Room, uk_officer: User, gz_officer: User, uk_coordinator: User
) -> Room:
    """The general room with ``SCRIPT`` in it."""
    cast = {"uk": uk_officer, "gz": gz_officer, "coord": uk_coordinator}
    converse(room, *((cast[who], body) for who, body in SCRIPT))
    return room


def reader_and_other(language: str, london: User, guangzhou: User) -> tuple[User, User, str]:
    """Who reads the room in ``language`` (London in English, Guangzhou in Chinese, each in
    their own time zone), the other officer, and the reader's browser time zone."""
    reader, other = (london, guangzhou) if language == "en" else (guangzhou, london)
    speaks(reader, language)
    return reader, other, reader.time_zone if reader.time_zone != "UTC" else "Europe/London"


def composer_bottom(page: Any) -> float:
    return page.locator("#chat-composer").evaluate("node => node.getBoundingClientRect().bottom")


def viewport_height(page: Any) -> int:
    return page.evaluate("() => window.innerHeight")


def document_width(page: Any) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


def topbar_is_one_line(page: Any) -> bool:
    """Every visible item of the top bar sits on the same line."""
    return page.evaluate(
        """() => {
          const bar = document.querySelector(".topbar");
          const items = [...bar.querySelectorAll("a, button")].filter((n) => n.getClientRects().length);
          const menu = bar.querySelector(".topbar-menu");
          const tops = items.filter((n) => !menu.contains(n) || getComputedStyle(menu).position !== "absolute")
            .map((n) => n.getBoundingClientRect()).map((b) => b.top + b.height / 2);
          return bar.getBoundingClientRect().height <= 64 && Math.max(...tops) - Math.min(...tops) < 12;
        }"""
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_room_fits_a_phone_with_the_composer_on_screen(
    conversation: Room,
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    language: str,
) -> None:
    from playwright.sync_api import expect

    reader, _other, zone = reader_and_other(language, uk_officer, gz_officer)
    context, page = open_page(
        browser, asgi_server, reader, f"/rooms/{conversation.pk}/", time_zone=zone
    )
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("#chat-messages > li.msg")).to_have_count(len(SCRIPT))

    # The conversation scrolls inside the list; the page itself does not scroll at all.
    assert page.locator("#chat-log").evaluate("n => n.scrollHeight > n.clientHeight")
    assert document_width(page) <= PHONE["width"], sideways_overflow(page)
    assert sideways_overflow(page) == []
    assert page.evaluate("() => document.documentElement.scrollHeight") <= viewport_height(page)
    assert 0 < composer_bottom(page) <= viewport_height(page)
    expect(page.locator("#chat-input")).to_be_in_viewport()
    expect(page.locator("#chat-send")).to_be_in_viewport()
    # ...and the newest message is what the officer sees above it.
    expect(page.locator("#chat-messages > li.msg").last).to_be_in_viewport()

    # One line of top bar: the brand and Menu; the rest waits behind it.
    assert topbar_is_one_line(page)
    expect(page.locator(".topbar-toggle")).to_be_visible()
    expect(page.locator(".topnav")).to_be_hidden()
    assert small_targets(page, ROOM_CONTROLS) == []
    screenshot(page, f"room-phone-{language}")

    # Writing a long line keeps the composer on screen and the page narrow.
    page.locator("#chat-input").fill("Hold for inspection " * 30)
    assert composer_bottom(page) <= viewport_height(page)
    assert document_width(page) <= PHONE["width"]
    page.locator("#chat-input").fill("")

    # The menu: opens under the bar, every item fingertip-sized, Escape closes it and gives
    # focus back to the Menu button.
    toggle = page.locator(".topbar-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".topnav")).to_be_visible()
    expect(page.locator(".topbar-menu .language-switch")).to_be_visible()
    assert small_targets(page, MENU_CONTROLS) == []
    assert document_width(page) <= PHONE["width"]
    screenshot(page, f"room-phone-menu-{language}")
    page.keyboard.press("Escape")
    expect(page.locator(".topnav")).to_be_hidden()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_be_focused()

    context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_rooms_and_people_open_as_drawers_on_a_phone(
    conversation: Room,
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    lane_room: Room,
    language: str,
) -> None:
    from playwright.sync_api import expect

    reader, other, zone = reader_and_other(language, uk_officer, gz_officer)
    context, page = open_page(
        browser, asgi_server, reader, f"/rooms/{conversation.pk}/", time_zone=zone
    )
    rooms, people = page.locator("#chat-rooms-drawer"), page.locator("#chat-people-drawer")
    rooms_toggle, people_toggle = (
        page.locator(".chat-rooms-toggle"),
        page.locator(".chat-people-toggle"),
    )
    expect(rooms).not_to_be_in_viewport()
    expect(people).not_to_be_in_viewport()
    expect(page.locator(f'#chat-rooms-drawer a[href="/rooms/{lane_room.pk}/"]')).to_be_hidden()

    # Rooms: the drawer slides in, focus lands on the room the officer is in.
    rooms_toggle.click()
    expect(rooms_toggle).to_have_attribute("aria-expanded", "true")
    expect(rooms).to_be_in_viewport()
    expect(page.locator('#chat-rooms-drawer a[aria-current="page"]')).to_be_focused()
    assert small_targets(page, ROOMS_CONTROLS) == []
    assert document_width(page) <= PHONE["width"]
    screenshot(page, f"room-phone-rooms-{language}")
    page.keyboard.press("Escape")
    expect(rooms_toggle).to_have_attribute("aria-expanded", "false")
    expect(rooms_toggle).to_be_focused()
    expect(page.locator('#chat-rooms-drawer a[aria-current="page"]')).to_be_hidden()

    # People: the same from the other side; its Close button closes it too.
    people_toggle.click()
    expect(people).to_be_in_viewport()
    expect(people.locator(f'li[data-person="{other.pk}"]')).to_be_visible()
    assert small_targets(page, PEOPLE_CONTROLS) == []
    screenshot(page, f"room-phone-people-{language}")
    people.locator("[data-panel-close]").click()
    expect(people_toggle).to_have_attribute("aria-expanded", "false")
    expect(people_toggle).to_be_focused()
    expect(people.locator(f'li[data-person="{other.pk}"]')).to_be_hidden()

    # A tap beside an open drawer closes it; a room in the drawer opens that room.
    rooms_toggle.click()
    expect(rooms).to_be_in_viewport()
    page.mouse.click(PHONE["width"] - 10, PHONE["height"] // 2)
    expect(rooms_toggle).to_have_attribute("aria-expanded", "false")
    rooms_toggle.click()
    page.locator(f'#chat-rooms-drawer a[href="/rooms/{lane_room.pk}/"]').click()
    expect(page).to_have_url(re.compile(f"/rooms/{lane_room.pk}/$"))
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "online")
    assert page.problems == []  # type: ignore[attr-defined]
    context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_fits_a_phone(
    browser: Any,
    asgi_server: LiveServer,
    admin: User,
    auditor: User,
    uk_officer: User,
    uk_coordinator: User,
    gz_officer: User,
    exercise: Exercise,
    room: Room,
    language: str,
) -> None:
    """Sign-in, home, provisioning (the list and an exercise with its tables), the audit
    workspace: nothing wider than the screen, one line of top bar, fingertip-sized controls.
    A wide table scrolls inside itself and can be reached from the keyboard."""
    for user in (admin, auditor, uk_officer):
        speaks(user, language)
    pages = [
        (None, "/login/"),
        (uk_officer, "/"),
        (admin, "/manage/"),
        (admin, f"/manage/exercises/{exercise.pk}/"),
        (auditor, "/audit/"),
        (auditor, f"/audit/exercises/{exercise.pk}/"),
        (auditor, "/audit/trail/"),
    ]
    for user, path in pages:
        context, page = open_page(browser, asgi_server, user, path, language=language)
        where = f"{path} ({language})"
        assert page.locator("html").get_attribute("lang") == language, where
        assert document_width(page) <= PHONE["width"], (where, sideways_overflow(page))
        assert topbar_is_one_line(page), where
        assert small_targets(page, PAGE_CONTROLS) == [], where
        wide = page.locator("table[data-scroll-stop]")
        for index in range(wide.count()):
            expect_tab_stop = wide.nth(index).get_attribute("tabindex")
            assert expect_tab_stop == "0", where
        assert page.problems == [], where  # type: ignore[attr-defined]
        context.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_room_on_a_desktop(
    conversation: Room,
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    language: str,
) -> None:
    """The wide layout keeps its sidebar and inline top bar; the phone's buttons are gone."""
    from playwright.sync_api import expect

    reader, _other, zone = reader_and_other(language, uk_officer, gz_officer)
    context, page = open_page(
        browser, asgi_server, reader, f"/rooms/{conversation.pk}/", size=DESKTOP, time_zone=zone
    )
    expect(page.locator("#chat-messages > li.msg")).to_have_count(len(SCRIPT))
    expect(page.locator(".topbar-toggle")).to_be_hidden()
    expect(page.locator(".chat-drawer-toggle")).to_have_count(2)
    for toggle in page.locator(".chat-drawer-toggle").all():
        expect(toggle).to_be_hidden()
    expect(page.locator(".topnav")).to_be_visible()
    expect(page.locator("#chat-rooms-drawer")).to_be_in_viewport()
    expect(page.locator("#chat-people-drawer")).to_be_in_viewport()
    assert topbar_is_one_line(page)
    assert document_width(page) <= DESKTOP["width"]
    assert 0 < composer_bottom(page) <= viewport_height(page)
    expect(page.locator("#chat-messages > li.msg").last).to_be_in_viewport()
    screenshot(page, f"room-desktop-{language}")
    context.close()
