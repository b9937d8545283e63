"""Accessibility in real headless Chromium: axe-core on the five pages officers, administrators
and auditors use (sign-in, home, room, provisioning, audit) in English and Chinese, on a desktop
and on a phone (menu and drawers open too), with no serious or critical violation; and the
keyboard: a skip link, the composer reached by Tab, Enter sends and the focus stays there, a
click on Send gives it back, provisioning works without a mouse, and a screen reader hears
new messages from the others through a polite live region.

axe-core is injected as an inline script, which the pages' Content-Security-Policy refuses:
these contexts alone are opened with ``bypass_csp``.
"""

from __future__ import annotations

from typing import Any

import pytest

from liaison.models import Exercise, Room, User
from tests.browser_support import (
    DESKTOP,
    LANGUAGES,
    PHONE,
    axe_violations,
    converse,
    open_page,
    speaks,
)
from tests.conftest import LiveServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live_server,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def conversation(room: Room, lane_room: Room, uk_officer: User, gz_officer: User) -> Room:
    converse(
        room,
        (gz_officer, "Container MSKU 1234567 cleared at Nansha."),
        (uk_officer, "Thanks. Felixstowe will hold the sister box."),
        (gz_officer, "舱单已上传，请英方确认。"),
    )
    return room


def focused(page: Any) -> str:
    """The focused element, as ``tag#id`` (or its text when it has no id)."""
    return page.evaluate(
        """() => {
          const node = document.activeElement;
          return node.id ? `${node.tagName.toLowerCase()}#${node.id}` : `${node.tagName.toLowerCase()} ${node.textContent.trim().slice(0, 40)}`;
        }"""
    )


def tab_until(page: Any, target: str, *, limit: int = 40) -> list[str]:
    """Press Tab until ``target`` (``tag#id``) has focus; the focus stops on the way."""
    stops: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stops.append(focused(page))
        if stops[-1] == target:
            return stops
    raise AssertionError(f"{target} not reached by Tab: {stops}")


@pytest.mark.parametrize("language", LANGUAGES)
def test_axe_finds_no_serious_violation_on_the_five_pages(
    conversation: Room,
    browser: Any,
    asgi_server: LiveServer,
    admin: User,
    auditor: User,
    uk_officer: User,
    exercise: Exercise,
    language: str,
) -> None:
    for user in (admin, auditor, uk_officer):
        speaks(user, language)
    pages = {
        "sign-in": (None, "/login/"),
        "home": (uk_officer, "/"),
        "room": (uk_officer, f"/rooms/{conversation.pk}/"),
        "provisioning": (admin, "/manage/"),
        "provisioning exercise": (admin, f"/manage/exercises/{exercise.pk}/"),
        "audit": (auditor, "/audit/"),
        "audit trail": (auditor, "/audit/trail/"),
    }
    found: dict[str, list[str]] = {}
    for name, (user, path) in pages.items():
        for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            context, page = open_page(
                browser, asgi_server, user, path, size=size, language=language, bypass_csp=True
            )
            assert page.locator("html").get_attribute("lang") == language
            views = {"": axe_violations(page)}
            if size is PHONE and user is not None:
                page.locator(".topbar-toggle").click()
                views["menu open"] = axe_violations(page)
                page.keyboard.press("Escape")
            if size is PHONE and name == "room":
                for drawer in ("rooms", "people"):
                    page.locator(f".chat-{drawer}-toggle").click()
                    views[f"{drawer} drawer open"] = axe_violations(page)
                    page.keyboard.press("Escape")
            for view, violations in views.items():
                if violations:
                    found[f"{name}, {size_name} {view}".strip()] = violations
            context.close()
    assert found == {}, "\n".join(f"{where}: {v}" for where, vs in found.items() for v in vs)


def test_keyboard_only_chat_tab_to_the_composer_enter_sends_focus_stays(
    conversation: Room, browser: Any, asgi_server: LiveServer, uk_officer: User
) -> None:
    from playwright.sync_api import expect

    context, page = open_page(
        browser, asgi_server, uk_officer, f"/rooms/{conversation.pk}/", size=DESKTOP
    )
    # The first stop is the skip link, which leads past the top bar and the room list.
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    expect(page.locator(".skip-link")).to_be_in_viewport()
    page.keyboard.press("Enter")
    stops = tab_until(page, "textarea#chat-input", limit=12)
    assert "a # General" not in stops  # the sidebar was skipped

    page.keyboard.type("Seal number 88231 confirmed.")
    page.keyboard.press("Enter")
    mine = page.locator("#chat-messages > li.msg.mine .msg-body", has_text="Seal number 88231")
    expect(mine).to_have_count(1)
    expect(page.locator("#chat-input")).to_be_focused()
    expect(page.locator("#chat-input")).to_have_value("")

    # Shift+Enter is a new line, not a send.
    page.keyboard.type("Line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    expect(page.locator("#chat-input")).to_have_value("Line one\nline two")

    # Sent with the Send button (Tab to it, then Space): the focus comes back to the composer.
    tab_until(page, "button#chat-send", limit=4)
    page.keyboard.press("Space")
    expect(
        page.locator("#chat-messages > li.msg.mine .msg-body", has_text="line two")
    ).to_have_count(1)
    expect(page.locator("#chat-input")).to_be_focused()
    # ...and with a click on it, likewise.
    page.locator("#chat-input").fill("By the mouse.")
    page.locator("#chat-send").click()
    expect(
        page.locator("#chat-messages > li.msg.mine .msg-body", has_text="By the mouse.")
    ).to_have_count(1)
    expect(page.locator("#chat-input")).to_be_focused()
    assert page.problems == []  # type: ignore[attr-defined]
    context.close()


def test_keyboard_only_on_a_phone_drawers_open_and_close_from_the_keyboard(
    conversation: Room, browser: Any, asgi_server: LiveServer, uk_officer: User, lane_room: Room
) -> None:
    from playwright.sync_api import expect

    context, page = open_page(browser, asgi_server, uk_officer, f"/rooms/{conversation.pk}/")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    tab_until(page, "button Rooms", limit=3)
    page.keyboard.press("Enter")
    expect(page.locator(".chat-rooms-toggle")).to_have_attribute("aria-expanded", "true")
    expect(page.locator('#chat-rooms-drawer a[aria-current="page"]')).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(".chat-rooms-toggle")).to_be_focused()
    expect(page.locator(".chat-rooms-toggle")).to_have_attribute("aria-expanded", "false")
    # Tabbing on skips the closed drawers and reaches the composer; Enter sends from there.
    stops = tab_until(page, "textarea#chat-input", limit=8)
    assert not any("Felixstowe" in stop for stop in stops), stops
    page.keyboard.type("From the quay.")
    page.keyboard.press("Enter")
    expect(
        page.locator("#chat-messages > li.msg.mine .msg-body", has_text="From the quay.")
    ).to_have_count(1)
    expect(page.locator("#chat-input")).to_be_focused()
    # The menu from the keyboard: Shift+Tab back to it, Enter opens, Escape closes.
    page.locator(".topbar-toggle").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".topnav a").first).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator(".topbar-toggle")).to_be_focused()
    context.close()


def test_keyboard_only_provisioning_adds_a_room_in_tab_order(
    browser: Any, asgi_server: LiveServer, admin: User, exercise: Exercise
) -> None:
    from playwright.sync_api import expect

    context, page = open_page(
        browser, asgi_server, admin, f"/manage/exercises/{exercise.pk}/", size=DESKTOP
    )
    tab_until(page, "input#id_name")
    page.keyboard.type("tilbury-huangpu")
    page.keyboard.press("Tab")
    assert focused(page) == "input#id_title"
    page.keyboard.type("Tilbury–Huangpu")
    page.keyboard.press("Tab")
    assert focused(page) == "input#id_topic"
    page.keyboard.press("Tab")
    assert focused(page).startswith("button ")
    page.keyboard.press("Enter")
    expect(page.locator("#rooms .room-list")).to_contain_text("#tilbury-huangpu")
    assert Room.objects.filter(exercise=exercise, name="tilbury-huangpu").exists()
    context.close()


def test_a_screen_reader_hears_new_messages_from_the_others_only(
    conversation: Room,
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
) -> None:
    from playwright.sync_api import expect

    speaks(gz_officer, "zh-hans")
    london, olivia = open_page(browser, asgi_server, uk_officer, f"/rooms/{conversation.pk}/")
    guangzhou, li_wei = open_page(browser, asgi_server, gz_officer, f"/rooms/{conversation.pk}/")
    announcer = olivia.locator("#chat-announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    # Loading the room announces nothing: the history is not read aloud.
    expect(announcer).to_have_text("")
    assert olivia.locator("#chat-messages").get_attribute("aria-live") is None

    li_wei.locator("#chat-input").fill("Seals intact.")
    li_wei.locator("#chat-input").press("Enter")
    expect(announcer).to_have_text("New message from Li Wei: Seals intact.")
    # The sender is not told about their own message; in Chinese the sentence is Chinese.
    expect(li_wei.locator("#chat-announcer")).to_have_text("")
    olivia.locator("#chat-input").fill("Noted.")
    olivia.locator("#chat-input").press("Enter")
    expect(li_wei.locator("#chat-announcer")).to_contain_text("Olivia Hughes")
    expect(li_wei.locator("#chat-announcer")).to_contain_text("Noted.")
    expect(li_wei.locator("#chat-announcer")).not_to_contain_text("New message")
    expect(announcer).to_have_text("New message from Li Wei: Seals intact.")
    london.close()
    guangzhou.close()
