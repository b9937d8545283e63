"""Two officers chat through a real daphne server in real headless Chromium.

London and Guangzhou open the same room in two browser contexts, exchange messages, one drops
off the network while the other keeps writing, and comes back to every message without a
reload. Everything goes through the server: the browser pages, the WebSocket, the HTTP API.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from liaison.models import Message, ReadMarker, Room, User
from liaison.services import messaging
from tests.conftest import LiveServer, sign_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live_server,
    pytest.mark.django_db(transaction=True),
]

TIMEOUT_MS = 15_000
CSRF_TOKEN = "chatbrowsertestcsrftoken01234567"  # 32 letters and digits, Django's own format


def open_room(
    browser: Any,
    server: LiveServer,
    user: User,
    room: Room,
    *,
    browser_time_zone: str = "UTC",
) -> tuple[Any, Any]:
    """A browser context signed in as ``user`` (a verified session cookie), on the room page,
    with the socket connected."""
    from playwright.sync_api import expect

    client = sign_in(Client(), user)
    context = browser.new_context(
        base_url=server.url, timezone_id=browser_time_zone, locale="en-GB"
    )
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
    expect.set_options(timeout=TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []

    def console(entry: Any) -> None:
        # Script errors and CSP refusals count; a missing favicon does not.
        if entry.type == "error" and not entry.text.startswith("Failed to load resource"):
            problems.append(entry.text)

    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", console)
    page.problems = problems  # type: ignore[attr-defined]
    page.goto(f"/rooms/{room.pk}/")
    expect(page.locator("#chat-status")).to_have_attribute("data-state", "online")
    return context, page


def send(page: Any, text: str) -> None:
    """Type into the composer and press Enter, as an officer would."""
    page.locator("#chat-input").fill(text)
    page.locator("#chat-input").press("Enter")


def message(page: Any, text: str) -> Any:
    """The delivered message (it has a seq) whose body is exactly ``text``."""
    return page.locator("#chat-messages > li.msg").filter(
        has=page.locator(".msg-body", has_text=re.compile(f"^{re.escape(text)}$"))
    )


def bodies(page: Any) -> list[str]:
    return page.locator("#chat-messages > li.msg .msg-body").all_inner_texts()


def seqs(page: Any) -> list[int]:
    return [
        int(value)
        for value in page.locator("#chat-messages > li.msg").evaluate_all(
            "items => items.map(item => item.dataset.seq)"
        )
    ]


def test_two_officers_chat_and_the_one_who_dropped_off_misses_nothing(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    guangzhou, li_wei = open_room(browser, asgi_server, gz_officer, room)

    # Both are online, and each sees the other in the people list.
    expect(olivia.locator(f'#chat-people li[data-person="{gz_officer.pk}"]')).to_have_class(
        re.compile(r"\bonline\b")
    )
    expect(li_wei.locator(f'#chat-people li[data-person="{uk_officer.pk}"]')).to_have_class(
        re.compile(r"\bonline\b")
    )

    # A message from London reaches Guangzhou, and London sees it acknowledged.
    send(olivia, "Morning Li Wei, MSKU 123456-7 sails tonight.")
    expect(message(li_wei, "Morning Li Wei, MSKU 123456-7 sails tonight.")).to_have_count(1)
    own = message(olivia, "Morning Li Wei, MSKU 123456-7 sails tonight.")
    expect(own).to_have_attribute("data-state", "sent")
    # Once stored, a message needs no tag: "sending…" and "not sent" are the ones that matter.
    expect(own.locator(".msg-state")).to_have_count(0)
    expect(olivia.locator("#chat-outbox > li")).to_have_count(0)

    # Guangzhou types (London sees it) and answers; sender and agency are shown.
    li_wei.locator("#chat-input").press_sequentially("Rece")
    expect(olivia.locator("#chat-typing")).to_have_text("Li Wei is typing…")
    send(li_wei, "Received. Nansha will hold it for inspection.")
    reply = message(olivia, "Received. Nansha will hold it for inspection.")
    expect(reply).to_have_count(1)
    expect(reply.locator(".msg-sender")).to_have_text("Li Wei")
    expect(reply.locator(".msg-agency")).to_have_text("GACC Guangzhou Customs")

    # London drops off the network.
    london.set_offline(True)
    expect(olivia.locator("#chat-status")).to_have_attribute("data-state", "offline")
    expect(li_wei.locator(f'#chat-people li[data-person="{uk_officer.pk}"]')).not_to_have_class(
        re.compile(r"\bonline\b")
    )

    # What London writes meanwhile waits in the outbox, visibly "sending…".
    send(olivia, "Written while offline: seal 884213.")
    pending = olivia.locator("#chat-outbox > li.msg")
    expect(pending).to_have_count(1)
    expect(pending).to_have_attribute("data-state", "sending")
    expect(pending.locator(".msg-state")).to_have_text("sending…")
    client_id = pending.get_attribute("data-client-id")
    stored = olivia.evaluate(
        "key => sessionStorage.getItem(key)", f"liaison.outbox.{uk_officer.pk}.{room.pk}"
    )
    assert stored is not None
    assert client_id in stored

    # Guangzhou keeps writing.
    missed = [f"Update {n}: container {n} of 5 unloaded at berth 14." for n in range(1, 6)]
    for text in missed:
        send(li_wei, text)
        expect(message(li_wei, text)).to_have_attribute("data-state", "sent")
    for text in missed:
        expect(message(olivia, text)).to_have_count(0)

    # London comes back: no reload, every missed message appears in order, the outbox empties.
    london.set_offline(False)
    expect(olivia.locator("#chat-status")).to_have_attribute("data-state", "online")
    for text in missed:
        expect(message(olivia, text)).to_have_count(1)
    sent_later = message(olivia, "Written while offline: seal 884213.")
    expect(sent_later).to_have_attribute("data-state", "sent")
    expect(sent_later).to_have_attribute("data-client-id", client_id)
    expect(olivia.locator("#chat-outbox > li")).to_have_count(0)
    expect(message(li_wei, "Written while offline: seal 884213.")).to_have_count(1)

    # Both screens now hold the same messages, in seq order, each once.
    expected = list(Message.objects.filter(room=room).order_by("seq").values_list("seq", flat=True))
    assert len(expected) == 8
    expect(olivia.locator("#chat-messages > li.msg")).to_have_count(8)
    expect(li_wei.locator("#chat-messages > li.msg")).to_have_count(8)
    assert seqs(olivia) == expected
    assert seqs(li_wei) == expected
    assert bodies(olivia) == bodies(li_wei)
    # The resent message was stored once, under the client_id the browser chose.
    assert Message.objects.filter(room=room, sender=uk_officer, client_id=client_id).count() == 1
    assert (
        olivia.evaluate(
            "key => sessionStorage.getItem(key)", f"liaison.outbox.{uk_officer.pk}.{room.pk}"
        )
        is None
    )

    assert olivia.problems == []  # type: ignore[attr-defined]
    assert li_wei.problems == []  # type: ignore[attr-defined]
    london.close()
    guangzhou.close()


def test_a_message_the_live_stream_lost_is_fetched_when_the_next_one_jumps_ahead(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    guangzhou, li_wei = open_room(browser, asgi_server, gz_officer, room)
    send(li_wei, "First.")
    expect(message(olivia, "First.")).to_have_count(1)

    # Stored by the service in this test process: its live event never reaches the server's
    # sockets, exactly like a delivery the at-most-once channel layer dropped.
    messaging.send_message(
        sender=gz_officer, room_id=room.pk, client_id="lost-1", body="Lost on the way."
    )
    expect(message(olivia, "Lost on the way.")).to_have_count(0)

    # The next live message jumps from seq 1 to 3: the page asks for the gap and fills it.
    send(li_wei, "Third.")
    expect(message(olivia, "Third.")).to_have_count(1)
    expect(message(olivia, "Lost on the way.")).to_have_count(1)
    assert seqs(olivia) == [1, 2, 3]
    assert bodies(olivia) == ["First.", "Lost on the way.", "Third."]
    london.close()
    guangzhou.close()


def test_unread_counts_show_for_the_other_rooms_and_reading_moves_the_marker(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
    lane_room: Room,
) -> None:
    from playwright.sync_api import expect

    for n in (1, 2):
        messaging.send_message(
            sender=gz_officer, room_id=lane_room.pk, client_id=f"lane-{n}", body=f"Lane {n}"
        )
    messaging.send_message(
        sender=gz_officer, room_id=room.pk, client_id="general-1", body="Hello London."
    )

    london, olivia = open_room(browser, asgi_server, uk_officer, room)

    lane_badge = olivia.locator(f'[data-unread-for="{lane_room.pk}"]')
    expect(lane_badge).to_be_visible()
    expect(lane_badge).to_have_text("2")
    expect(olivia.locator(f'[data-unread-for="{room.pk}"]')).to_be_hidden()
    expect(message(olivia, "Hello London.")).to_have_count(1)

    # Seen on a focused page: the read marker follows, so the count is 0 next time.
    olivia.bring_to_front()
    marker = None
    for _ in range(100):
        marker = ReadMarker.objects.filter(user=uk_officer, room=room).first()
        if marker is not None and marker.last_read_seq == 1:
            break
        olivia.wait_for_timeout(100)
    assert marker is not None
    assert marker.last_read_seq == 1
    london.close()


def test_a_message_the_server_refuses_is_marked_not_sent_with_the_reason(
    browser: Any, asgi_server: LiveServer, uk_officer: User, room: Room
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)

    # Only a control character: empty once the server has cleaned it.
    send(olivia, "\u0007")
    failed = olivia.locator("#chat-outbox > li.msg")
    expect(failed).to_have_attribute("data-state", "failed")
    expect(failed.locator(".msg-state")).to_have_text("not sent")
    expect(failed.locator(".msg-failure")).to_have_text("Not accepted: The message is empty.")
    expect(olivia.locator("#chat-notice")).to_contain_text("The message is empty.")
    failed.get_by_role("button", name="Discard").click()
    expect(failed).to_have_count(0)
    assert (
        olivia.evaluate(
            "key => sessionStorage.getItem(key)", f"liaison.outbox.{uk_officer.pk}.{room.pk}"
        )
        is None
    )
    assert not Message.objects.exists()
    london.close()


def test_times_are_in_the_readers_zone_with_the_senders_local_time_on_hover(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    # Olivia's browser runs in New York, but her account says London: London wins.
    london, olivia = open_room(
        browser, asgi_server, uk_officer, room, browser_time_zone="America/New_York"
    )
    guangzhou, li_wei = open_room(browser, asgi_server, gz_officer, room)

    send(li_wei, "Inspection at 09:00 Beijing time.")
    received = message(olivia, "Inspection at 09:00 Beijing time.")
    expect(received).to_have_count(1)

    stored = Message.objects.get(room=room, seq=1).created_at
    london_time = stored.astimezone(zoneinfo.ZoneInfo("Europe/London"))
    time = received.locator("time")
    assert time.get_attribute("datetime").startswith(
        stored.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")
    )
    assert time.inner_text() == london_time.strftime("%H:%M")
    title = time.get_attribute("title")
    shanghai = stored.astimezone(zoneinfo.ZoneInfo("Asia/Shanghai")).strftime("%H:%M")
    assert "Europe/London" in title
    assert "Sender's local time: " in title
    assert shanghai in title
    assert "Asia/Shanghai" in title
    london.close()
    guangzhou.close()


def test_message_text_is_shown_as_text_and_only_web_links_are_linked(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    guangzhou, li_wei = open_room(browser, asgi_server, gz_officer, room)

    hostile = (
        '<img src=x onerror="window.pwned=1"> <b>bold</b> javascript:alert(1) '
        "see https://customs.example/manifest?id=7&x=1, or "
        "data:text/html,<script>window.pwned=2</script>"
    )
    send(li_wei, hostile)
    received = olivia.locator("#chat-messages > li.msg").first
    expect(received).to_have_attribute("data-state", "sent")

    body = received.locator(".msg-body")
    assert body.inner_text() == hostile
    assert body.locator("img, b, script").count() == 0
    links = body.locator("a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://customs.example/manifest?id=7&x=1")
    expect(links).to_have_attribute("rel", "noopener noreferrer")
    expect(links).to_have_attribute("target", "_blank")
    expect(links).to_have_text("https://customs.example/manifest?id=7&x=1")
    assert olivia.evaluate("() => window.pwned") is None
    london.close()
    guangzhou.close()


def test_an_officer_edits_and_deletes_her_message_and_the_other_sees_it(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    guangzhou, li_wei = open_room(browser, asgi_server, gz_officer, room)

    send(olivia, "Seal number 88421.")
    expect(message(li_wei, "Seal number 88421.")).to_have_count(1)
    # Only one's own messages offer editing.
    expect(message(li_wei, "Seal number 88421.").locator(".msg-edit")).to_have_count(0)

    own = message(olivia, "Seal number 88421.")
    own.hover()
    own.locator(".msg-edit").click()
    editor = own.locator(".msg-editor textarea")
    editor.fill("Seal number 884213 (corrected).")
    editor.press("Enter")
    edited = message(li_wei, "Seal number 884213 (corrected).")
    expect(edited).to_have_count(1)
    expect(edited.locator(".msg-edited")).to_have_text("edited")

    # Li Wei is offline when she deletes it; he still learns of it once back.
    guangzhou.set_offline(True)
    expect(li_wei.locator("#chat-status")).to_have_attribute("data-state", "offline")
    olivia.once("dialog", lambda dialog: dialog.accept())
    mine = message(olivia, "Seal number 884213 (corrected).")
    mine.hover()
    mine.locator(".msg-delete").click()
    expect(olivia.locator("#chat-messages > li.msg.deleted")).to_have_count(1)
    guangzhou.set_offline(False)
    gone = li_wei.locator("#chat-messages > li.msg.deleted")
    expect(gone).to_have_count(1)
    expect(gone.locator(".msg-body")).to_have_text("This message was deleted.")
    expect(li_wei.get_by_text("884213")).to_have_count(0)
    london.close()
    guangzhou.close()


def test_earlier_messages_load_on_request(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    for n in range(1, 61):
        messaging.send_message(
            sender=gz_officer, room_id=room.pk, client_id=f"seed-{n}", body=f"Manifest line {n}"
        )

    london, olivia = open_room(browser, asgi_server, uk_officer, room)

    # The newest page first, then the rest on request; the start of the room is announced.
    expect(olivia.locator("#chat-messages > li.msg")).to_have_count(50)
    assert seqs(olivia) == list(range(11, 61))
    expect(olivia.locator("#chat-start")).to_be_hidden()
    olivia.locator("#chat-load-earlier").click()
    expect(olivia.locator("#chat-messages > li.msg")).to_have_count(60)
    assert seqs(olivia) == list(range(1, 61))
    expect(olivia.locator("#chat-load-earlier")).to_be_hidden()
    expect(olivia.locator("#chat-start")).to_be_visible()
    london.close()


def test_an_observer_reads_live_but_cannot_write(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_observer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    watcher_context, chen = open_room(browser, asgi_server, gz_observer, room)

    expect(chen.locator("#chat-input")).to_be_disabled()
    expect(chen.locator("#chat-readonly")).to_have_text(
        "Observers can read but not post in this exercise."
    )
    send(olivia, "For the observers: vessel berths at 14:00.")
    expect(message(chen, "For the observers: vessel berths at 14:00.")).to_have_count(1)
    london.close()
    watcher_context.close()


def admin_api(browser: Any, server: LiveServer, admin: User) -> Any:
    """An HTTP client signed in as ``admin``, talking to the real server (so that the events a
    change publishes reach the server's open sockets)."""
    client = sign_in(Client(), admin)
    context = browser.new_context(
        base_url=server.url, extra_http_headers={"X-CSRFToken": CSRF_TOKEN}
    )
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": server.url,
            },
            {"name": settings.CSRF_COOKIE_NAME, "value": CSRF_TOKEN, "url": server.url},
        ]
    )
    return context


def test_a_removed_member_is_told_at_once_that_access_ended(
    browser: Any,
    asgi_server: LiveServer,
    admin: User,
    uk_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    provisioning = admin_api(browser, asgi_server, admin)

    response = provisioning.request.delete(
        f"/api/v1/exercises/{room.exercise_id}/members/{uk_officer.pk}"
    )
    assert response.status == 200, response.text()

    # The server closes her socket (4403) within a second; the page says why and stops.
    banner = olivia.locator("#chat-banner")
    expect(banner).to_contain_text("You no longer have access to this room.", timeout=5_000)
    expect(olivia.locator("#chat-status")).to_have_attribute("data-state", "closed")
    expect(olivia.locator("#chat-input")).to_be_disabled()
    expect(olivia.locator("#chat-send")).to_be_disabled()
    # The header's badge follows: she is no longer a member.
    expect(olivia.locator("#chat-role")).to_have_text("No longer a member")
    expect(olivia.locator("#chat-role")).to_have_class("badge closed")
    # And the disabled Send button looks disabled.
    cursor = olivia.locator("#chat-send").evaluate("node => getComputedStyle(node).cursor")
    assert cursor == "not-allowed"
    london.close()
    provisioning.close()


def test_closing_the_exercise_makes_the_open_room_read_only(
    browser: Any,
    asgi_server: LiveServer,
    admin: User,
    uk_officer: User,
    room: Room,
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    send(olivia, "Final report filed.")
    expect(message(olivia, "Final report filed.")).to_have_attribute("data-state", "sent")
    provisioning = admin_api(browser, asgi_server, admin)

    response = provisioning.request.post(f"/api/v1/exercises/{room.exercise_id}/close")
    assert response.status == 200, response.text()

    expect(olivia.locator("#chat-banner")).to_contain_text(
        "The exercise is closed: this room is read-only.", timeout=5_000
    )
    expect(olivia.locator("#chat-input")).to_be_disabled()
    expect(olivia.locator("#chat-readonly")).to_be_visible()
    # The header's badge follows the exercise's state without a reload.
    expect(olivia.locator("#chat-exercise-status")).to_have_text("Closed")
    expect(olivia.locator("#chat-exercise-status")).to_have_class("badge closed")
    # She may still read: the page reconnects once and the conversation stays.
    expect(olivia.locator("#chat-status")).to_have_attribute("data-state", "online")
    expect(message(olivia, "Final report filed.")).to_have_count(1)
    expect(message(olivia, "Final report filed.").locator(".msg-edit")).to_have_count(0)
    london.close()
    provisioning.close()


def test_a_session_that_ended_sends_the_officer_to_sign_in_again(
    browser: Any, asgi_server: LiveServer, uk_officer: User, room: Room
) -> None:
    from django.db import transaction
    from playwright.sync_api import expect

    from liaison.services import sessions

    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    with transaction.atomic():  # an administrator ends every session of the account
        sessions.end_all_sessions(user=uk_officer, reason="revoked")
    send(olivia, "Anyone?")
    banner = olivia.locator("#chat-banner")
    expect(banner).to_contain_text("Your session has ended")
    expect(banner.locator("a")).to_have_attribute("href", f"/login/?next=/rooms/{room.pk}/")
    london.close()
