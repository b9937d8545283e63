"""Both ends of the twinning at once, in real Chromium: a Guangzhou officer whose saved
language is Chinese and a London officer in English share a room; each sees the interface in
their own language and the other's local time; switching language keeps the conversation."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from liaison.models import Room, User
from tests.conftest import LiveServer
from tests.test_browser_chat import message, open_room, send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _clock(zone: str) -> set[str]:
    """The wall clock in ``zone`` now and a minute either side (the test may straddle one)."""
    now = dt.datetime.now(ZoneInfo(zone))
    return {(now + dt.timedelta(minutes=m)).strftime("%H:%M") for m in (-1, 0, 1)}


def test_a_chinese_and_an_english_officer_share_a_room_each_in_their_language(
    browser: Any, asgi_server: LiveServer, uk_officer: User, gz_officer: User, room: Room
) -> None:
    from playwright.sync_api import expect

    User.objects.filter(pk=gz_officer.pk).update(language="zh-hans", time_zone="Asia/Shanghai")
    User.objects.filter(pk=uk_officer.pk).update(language="en", time_zone="Europe/London")
    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    guangzhou, li_wei = open_room(browser, asgi_server, gz_officer, room)

    # Each page in its reader's language, whatever the browser's locale.
    expect(olivia.locator("html")).to_have_attribute("lang", "en")
    expect(li_wei.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(olivia.locator(".language-switch button[aria-pressed=true]")).to_have_attribute(
        "value", "en"
    )
    expect(li_wei.locator(".language-switch button[aria-pressed=true]")).to_have_attribute(
        "value", "zh-hans"
    )
    assert "Send" in olivia.locator("#chat-send").inner_text()
    assert "Send" not in li_wei.locator("#chat-send").inner_text()

    # Each sees the other's local time in the people list.
    li_in_london = olivia.locator(f'#chat-people li[data-person="{gz_officer.pk}"] .person-time')
    olivia_in_guangzhou = li_wei.locator(
        f'#chat-people li[data-person="{uk_officer.pk}"] .person-time'
    )
    assert li_in_london.inner_text().strip() in _clock("Asia/Shanghai")
    assert olivia_in_guangzhou.inner_text().strip() in _clock("Europe/London")

    # They talk; the text is the record, never translated.
    send(olivia, "Container MSKU4417702 loaded at Felixstowe.")
    expect(message(li_wei, "Container MSKU4417702 loaded at Felixstowe.")).to_have_count(1)
    send(li_wei, "收到，南沙将查验该集装箱。")
    expect(message(olivia, "收到，南沙将查验该集装箱。")).to_have_count(1)

    # Li Wei switches to English in the header: the page changes, the conversation stays.
    li_wei.locator('.language-switch button[value="en"]').click()
    expect(li_wei.locator("html")).to_have_attribute("lang", "en")
    expect(li_wei.locator("#chat-status")).to_have_attribute("data-state", "online")
    assert "Send" in li_wei.locator("#chat-send").inner_text()
    expect(message(li_wei, "Container MSKU4417702 loaded at Felixstowe.")).to_have_count(1)
    expect(message(li_wei, "收到，南沙将查验该集装箱。")).to_have_count(1)
    assert User.objects.get(pk=gz_officer.pk).language == "en"  # the choice is saved

    assert olivia.problems == []  # type: ignore[attr-defined]
    assert li_wei.problems == []  # type: ignore[attr-defined]
    london.close()
    guangzhou.close()
