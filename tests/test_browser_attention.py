"""Work in the room through real Chromium: London asks Guangzhou to acknowledge, Guangzhou is
notified on the desktop and acknowledges, London sees who acknowledged and when without a
reload; a reply shows its parent; a mention raises the other officer's count on the home page;
an image opens in the viewer."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from PIL import Image

from liaison.models import AckRequest, Room, User
from liaison.services import messaging
from tests.conftest import LiveServer, sign_in
from tests.test_browser_chat import TIMEOUT_MS, message, open_room, send

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live_server,
    pytest.mark.django_db(transaction=True),
]

# Records every desktop notification the page creates (headless Chromium shows none).
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notifications = [];
  class Recording extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push(title);
    }
  }
  Object.defineProperty(Recording, "permission", { get: () => Real.permission });
  Recording.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recording;
})();
"""


def eventually(page: Any, script: str, timeout: float = TIMEOUT_MS / 1000) -> Any:
    """Poll ``script`` until it is truthy (``wait_for_function`` needs eval, which the CSP
    forbids)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value or time.monotonic() > deadline:
            assert value, f"{script} stayed falsy"
            return value
        time.sleep(0.05)


def signed_in_context(browser: Any, server: LiveServer, user: User) -> Any:
    client = sign_in(Client(), user)
    context = browser.new_context(base_url=server.url, timezone_id="UTC", locale="en-GB")
    context.set_default_timeout(TIMEOUT_MS)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": server.url,
            }
        ]
    )
    return context


def test_an_acknowledgement_request_travels_and_comes_back_acknowledged(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
    lane_room: Room,
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    guangzhou = signed_in_context(browser, asgi_server, gz_officer)
    guangzhou.grant_permissions(["notifications"], origin=asgi_server.url)
    guangzhou.add_init_script(RECORD_NOTIFICATIONS)
    li_wei = guangzhou.new_page()
    li_wei.goto(f"/rooms/{lane_room.pk}/")
    expect(li_wei.locator("#chat-status")).to_have_attribute("data-state", "online")
    expect(li_wei.locator("#notify-toggle")).to_have_text("Desktop notifications are on")

    # London writes, asks GACC Guangzhou to acknowledge within 4 hours.
    expect(olivia.locator(".chat-draft-ack-within")).to_be_disabled()
    olivia.locator(".chat-draft-ack").check()
    olivia.locator(".chat-draft-ack-from").select_option(label="GACC Guangzhou Customs")
    olivia.locator(".chat-draft-ack-within").select_option(label="within 4 hours")
    send(olivia, "Please hold MSKU4417702 at Nansha.")
    sent = message(olivia, "Please hold MSKU4417702 at Nansha.")
    expect(sent.locator(".msg-ack-status")).to_have_text("waiting for Li Wei")
    asked = AckRequest.objects.get()
    assert asked.due_at - asked.created_at == dt.timedelta(hours=4)
    expect(olivia.locator(".chat-draft-ack-within")).to_be_disabled()  # until asked again

    # Guangzhou, in another room, is notified on the desktop and sees the room's counts move.
    eventually(li_wei, "() => window.__notifications.length > 0")
    notes = li_wei.evaluate("window.__notifications")
    assert notes == ["Olivia Hughes asks you to acknowledge a message in #General"], notes
    expect(li_wei.locator(f'[data-unread-for="{room.pk}"]')).to_have_text("1")

    # Guangzhou opens the room and acknowledges; London's badge turns without a reload.
    li_wei.goto(f"/rooms/{room.pk}/")
    request = message(li_wei, "Please hold MSKU4417702 at Nansha.")
    request.locator(".msg-ack-button").click()
    expect(request.locator(".msg-ack-button")).to_have_count(0)
    expect(sent.locator(".msg-ack-status")).to_have_text(
        re.compile(r"^acknowledged by Li Wei \d\d:\d\d · all acknowledged$")
    )
    expect(sent.locator(".msg-ack")).to_have_class(re.compile(r"\bis-complete\b"))

    # Guangzhou replies; both see the quoted parent.
    request.locator(".msg-reply-button").click()
    expect(li_wei.locator("#chat-reply-bar")).to_contain_text("Replying to Olivia Hughes")
    send(li_wei, "Received — will hold the container.")
    for page in (olivia, li_wei):
        reply = message(page, "Received — will hold the container.")
        expect(reply.locator(".msg-reply")).to_contain_text("In reply to Olivia Hughes")
        expect(reply.locator(".msg-reply-excerpt")).to_have_text(
            "Please hold MSKU4417702 at Nansha."
        )
    assert olivia.problems == []  # type: ignore[attr-defined]
    london.close()
    guangzhou.close()


def test_a_mention_raises_the_other_officers_count_on_the_home_page_within_a_second(
    browser: Any, asgi_server: LiveServer, uk_officer: User, gz_officer: User, room: Room
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    guangzhou = signed_in_context(browser, asgi_server, gz_officer)
    home = guangzhou.new_page()
    home.goto("/")
    badge = home.locator(f'[data-unread-for="{room.pk}"]')
    eventually(home, "() => document.body.dataset.attention === 'live'")

    # Li Wei has no room open: offline in the exercise, with when he was last seen.
    olivia.reload()
    expect(olivia.locator("#chat-status")).to_have_attribute("data-state", "online")
    expect(
        olivia.locator(f'#chat-people li[data-person="{gz_officer.pk}"] .person-last-seen')
    ).to_have_text(re.compile(r"^last seen "))
    olivia.locator("#chat-input").fill("Could @Li")
    expect(olivia.locator(".mention-suggestion").first).to_contain_text("@Li Wei")
    olivia.locator("#chat-input").press("Enter")
    expect(olivia.locator("#chat-input")).to_have_value("Could @Li Wei ")
    olivia.locator("#chat-input").type("check the seal?")
    started = time.monotonic()
    olivia.locator("#chat-input").press("Enter")
    expect(badge).to_have_text("@1 · 1", timeout=1000)
    assert time.monotonic() - started < 1.5
    expect(home).to_have_title(re.compile(r"^\(1@ · 1\) "))
    sent = message(olivia, "Could @Li Wei check the seal?")
    expect(sent.locator("mark.mention")).to_have_text("@Li Wei")
    london.close()
    guangzhou.close()


def test_an_image_opens_in_the_viewer(
    browser: Any, asgi_server: LiveServer, uk_officer: User, gz_officer: User, room: Room
) -> None:
    from playwright.sync_api import expect

    from liaison.services import attachments

    buffer = io.BytesIO()
    Image.new("RGB", (1200, 800), (40, 90, 160)).save(buffer, "PNG")
    upload = attachments.upload_attachment(
        uploader=uk_officer,
        room_id=room.pk,
        filename="xray-MSKU4417702.png",
        declared_type="image/png",
        chunks=[buffer.getvalue()],
    )
    messaging.send_message(
        sender=uk_officer, room_id=room.pk, client_id="x", body="", attachment_ids=[upload.pk]
    )
    guangzhou, li_wei = open_room(browser, asgi_server, gz_officer, room)
    li_wei.locator("a.attachment-thumb-link").click()
    viewer = li_wei.locator(".lightbox")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".lightbox-caption")).to_have_text("xray-MSKU4417702.png")
    eventually(li_wei, "() => document.querySelector('.lightbox-image').naturalWidth === 1200")
    before = float(viewer.get_attribute("data-scale"))
    viewer.locator(".lightbox-zoom-in").click()
    assert float(viewer.get_attribute("data-scale")) > before
    viewer.locator(".lightbox-actual").click()
    expect(viewer).to_have_attribute("data-scale", "1.000")
    li_wei.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    # From the keyboard: into the list, up to the message, R to answer it.
    li_wei.locator("#chat-log").focus()
    li_wei.keyboard.press("ArrowUp")
    expect(li_wei.locator("#msg-1")).to_be_focused()
    li_wei.keyboard.press("r")
    expect(li_wei.locator("#chat-reply-bar")).to_contain_text("Replying to Olivia Hughes")
    expect(li_wei.locator("#chat-input")).to_be_focused()
    # 1 on a message in focus marks it seen; a click on the mark takes it back.
    li_wei.locator("#chat-log").focus()
    li_wei.keyboard.press("ArrowUp")
    li_wei.keyboard.press("1")
    seen = li_wei.locator('#msg-1 .msg-reaction[data-emoji="\u2713"]')
    expect(seen).to_have_attribute("aria-pressed", "true")
    expect(seen.locator(".msg-reaction-count")).to_have_text("1")
    li_wei.locator("#msg-1").hover()
    seen.click()
    expect(li_wei.locator("#msg-1 .msg-reaction-count")).to_have_count(0)
    guangzhou.close()


def test_an_officer_finds_a_container_from_an_earlier_day_and_lands_on_it(
    browser: Any, asgi_server: LiveServer, uk_officer: User, gz_officer: User, room: Room
) -> None:
    import datetime as dt

    from playwright.sync_api import expect

    from liaison.models import Message

    messaging.send_message(
        sender=uk_officer,
        room_id=room.pk,
        client_id="old",
        body="MSKU4417702 loaded at Felixstowe.",
    )
    Message.objects.filter(room=room, seq=1).update(
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    )
    for index in range(70):
        messaging.send_message(
            sender=gz_officer, room_id=room.pk, client_id=f"n{index}", body=f"update {index}"
        )
    context = signed_in_context(browser, asgi_server, gz_officer)
    page = context.new_page()
    page.goto("/search/")
    page.locator("#search-q").fill("MSKU 441770-2")
    page.locator("#search-q").press("Enter")
    hit = page.locator(".search-result-link")
    expect(hit).to_have_text("MSKU4417702 loaded at Felixstowe.")
    hit.click()
    expect(page).to_have_url(re.compile(rf"/rooms/{room.pk}/#msg-1$"))
    target = page.locator("#msg-1")
    expect(target).to_be_visible()
    expect(target).to_be_in_viewport()
    context.close()
