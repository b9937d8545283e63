"""Bearings and clocks of the room page, as native ES modules in real headless Chromium (the
static server and ``run`` of tests/chat_modules_support.py): day separators in the reader's zone
and language, runs of one sender, where the "New messages" line goes and how much the page
loads to show it, each agency's wall clock and office hours, and message tooltips with the
reader's time, the sender's and UTC, on both sides of the British summer-time changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from liaison.models import Room, User
from liaison.services import messaging
from tests.chat_modules_support import empty_page, run, serving_static
from tests.conftest import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def static_server() -> Iterator[str]:
    with serving_static() as url:
        yield url


@pytest.fixture
def page(browser: Any, static_server: str) -> Iterator[Any]:
    with empty_page(browser, static_server) as tab:
        yield tab


# --- day separators and runs ----------------------------------------------------------------------

ARRANGE = """
const { arrange, makeDays } = await chat("bearings");
const days = makeDays({
  timeZone: arg.zone, language: arg.language, now: () => new Date(arg.now),
});
return arrange(arg.messages, { days, unreadFrom: arg.unreadFrom, userId: 7 });
"""


def message(seq: int, sender: int | None, at: str, kind: str = "text") -> dict[str, Any]:
    return {"seq": seq, "senderId": sender, "createdAt": at, "kind": kind}


def test_a_new_day_in_the_readers_zone_gets_a_separator(page: Any) -> None:
    messages = [
        message(1, 3, "2026-06-02T22:30:00Z"),  # 23:30 in London, 06:30 on the 3rd in Guangzhou
        message(2, 3, "2026-06-02T23:10:00Z"),  # 00:10 on the 3rd in London
        message(3, 3, "2026-06-03T08:00:00Z"),
    ]
    arg = {"messages": messages, "now": "2026-06-03T09:00:00Z", "unreadFrom": None}

    london = run(page, ARRANGE, {**arg, "zone": "Europe/London", "language": "en"})
    guangzhou = run(page, ARRANGE, {**arg, "zone": "Asia/Shanghai", "language": "en"})

    assert [m["day"] for m in london] == ["Yesterday", "Today", None]
    assert [m["day"] for m in guangzhou] == ["Today", None, None]


def test_day_labels_are_in_the_readers_language(page: Any) -> None:
    messages = [
        message(1, 3, "2025-12-31T10:00:00Z"),
        message(2, 3, "2026-05-29T10:00:00Z"),
        message(3, 3, "2026-06-02T10:00:00Z"),
        message(4, 3, "2026-06-03T10:00:00Z"),
    ]
    arg = {"messages": messages, "now": "2026-06-03T12:00:00Z", "unreadFrom": None}

    english = run(page, ARRANGE, {**arg, "zone": "Europe/London", "language": "en"})
    chinese = run(page, ARRANGE, {**arg, "zone": "Asia/Shanghai", "language": "zh-hans"})

    assert [m["day"] for m in english] == [
        "Wednesday, 31 December 2025",  # another year: the year is said
        "Friday 29 May",
        "Yesterday",
        "Today",
    ]
    assert chinese[0]["day"] == "2025年12月31日星期三"
    assert chinese[1]["day"] == "5月29日星期五"
    # "Today"/"Yesterday" come from the catalogue (not loaded here): their place is what counts.
    assert [m["day"] for m in chinese[2:]] == ["Yesterday", "Today"]


def test_messages_of_one_sender_within_five_minutes_are_one_run(page: Any) -> None:
    messages = [
        message(1, 3, "2026-06-03T08:00:00Z"),
        message(2, 3, "2026-06-03T08:04:59Z"),  # within five minutes of the one before
        message(3, 3, "2026-06-03T08:10:00Z"),  # more than five minutes later: new run
        message(4, 4, "2026-06-03T08:10:30Z"),  # another sender
        message(5, 3, "2026-06-03T08:11:00Z"),
        message(6, 3, "2026-06-03T08:11:30Z", kind="alert"),  # an alert stands on its own
        message(7, 3, "2026-06-03T08:12:00Z"),
        message(8, None, "2026-06-03T08:12:10Z", kind="system"),
        message(9, None, "2026-06-03T08:12:20Z", kind="system"),
        message(10, 3, "2026-06-03T08:12:30Z", kind="attachment"),
        message(11, 3, "2026-06-03T08:12:40Z"),
    ]
    arg = {"messages": messages, "now": "2026-06-03T09:00:00Z", "unreadFrom": None}

    placed = run(page, ARRANGE, {**arg, "zone": "Europe/London", "language": "en"})

    assert [m["grouped"] for m in placed] == [
        False, True, False, False, False, False, False, False, False, False, True,
    ]  # fmt: skip
    assert [m["seq"] for m in placed] == list(range(1, 12))


def test_a_run_is_broken_by_midnight_and_by_the_new_messages_line(page: Any) -> None:
    messages = [
        message(1, 3, "2026-06-02T22:58:00Z"),  # 23:58 in London
        message(2, 3, "2026-06-02T23:01:00Z"),  # 00:01: a new day, a new run
        message(3, 3, "2026-06-02T23:02:00Z"),
        message(4, 3, "2026-06-02T23:03:00Z"),  # the first unread
    ]
    arg = {"messages": messages, "now": "2026-06-03T09:00:00Z", "unreadFrom": 4}

    placed = run(page, ARRANGE, {**arg, "zone": "Europe/London", "language": "en"})

    assert [m["grouped"] for m in placed] == [False, False, True, False]
    assert [m["unread"] for m in placed] == [False, False, False, True]


def test_the_new_messages_line_goes_before_the_first_unread_message_of_others(page: Any) -> None:
    messages = [
        message(5, 3, "2026-06-03T08:00:00Z"),
        message(6, 7, "2026-06-03T08:01:00Z"),  # the reader's own (user 7): not news to them
        message(7, 3, "2026-06-03T08:02:00Z"),
        message(8, 3, "2026-06-03T08:03:00Z"),
    ]
    base = {"messages": messages, "now": "2026-06-03T09:00:00Z"}
    common = {"zone": "UTC", "language": "en"}

    line_at = {
        unread_from: [
            m["seq"]
            for m in run(page, ARRANGE, {**base, **common, "unreadFrom": unread_from})
            if m["unread"]
        ]
        for unread_from in (None, 5, 6, 9)
    }

    assert line_at == {None: [], 5: [5], 6: [7], 9: []}


def test_a_returning_reader_gets_the_record_from_the_first_unread_within_four_pages(
    page: Any,
) -> None:
    result = run(
        page,
        """
        const { initialAfterSeq } = await chat("bearings");
        return arg.map(([lastSeq, lastReadSeq]) =>
          initialAfterSeq({ lastSeq, lastReadSeq, pageSize: 50 }));
        """,
        [[0, 0], [30, 30], [500, 500], [500, 470], [500, 400], [500, 0], [500, 301], [40, 10]],
    )

    # Up to date: the newest page. Behind: from the message before the first unread (for its
    # context), but never more than four pages back.
    assert result == [0, 0, 450, 450, 399, 300, 300, 0]


# --- clocks ---------------------------------------------------------------------------------------


def test_each_agencys_wall_clock_and_office_hours(page: Any) -> None:
    result = run(
        page,
        """
        const { wallClock, isOfficeHours } = await chat("clocks");
        return arg.map(([iso, zone]) => {
          const date = new Date(iso);
          return [wallClock(date, zone).text, isOfficeHours(date, zone, { opens: 8, closes: 18 })];
        });
        """,
        [
            ["2026-11-30T08:34:00Z", "Europe/London"],  # Monday
            ["2026-11-30T08:34:00Z", "Asia/Shanghai"],
            ["2026-11-30T07:59:00Z", "Europe/London"],
            ["2026-11-30T18:00:00Z", "Europe/London"],
            ["2026-11-27T11:00:00Z", "Asia/Shanghai"],  # Friday 19:00 there
            ["2026-11-28T12:00:00Z", "Europe/London"],  # Saturday
            ["2026-11-30T00:00:00Z", "Asia/Shanghai"],  # Monday 08:00 there
            ["2026-11-30T12:00:00Z", "Mars/Olympus"],  # unknown zone: UTC
        ],
    )

    assert result == [
        ["08:34", True],
        ["16:34", True],
        ["07:59", False],
        ["18:00", False],
        ["19:00", False],
        ["12:00", False],
        ["08:00", True],
        ["12:00", True],
    ]


def test_the_clocks_on_the_page_are_kept_current(page: Any) -> None:
    result = run(
        page,
        """
        const { WallClocks } = await chat("clocks");
        const root = document.createElement("div");
        root.innerHTML = `
          <span class="clock" data-clock-zone="Europe/London"><time class="clock-time">00:00</time>
            <span class="clock-hours">?</span></span>
          <span class="clock" data-clock-zone="Asia/Shanghai"><time class="clock-time">00:00</time>
            <span class="clock-hours">?</span></span>
          <span class="person-time" data-clock-zone="Asia/Shanghai">00:00</span>`;
        let now = new Date("2026-11-30T17:59:00Z");
        const clocks = new WallClocks({ root, hours: { opens: 8, closes: 18 }, now: () => now });
        const read = () => Array.from(root.querySelectorAll("[data-clock-zone]"), (node) =>
          node.textContent.replace(/\\s+/g, " ").trim());
        clocks.tick();
        const before = read();
        now = new Date("2026-11-30T18:00:00Z");
        clocks.tick();
        return { before, after: read(), open: root.querySelector(".clock-hours.is-open") };
        """,
    )

    assert result["before"] == ["17:59 office hours", "01:59 out of hours", "01:59"]
    assert result["after"] == ["18:00 out of hours", "02:00 out of hours", "02:00"]
    assert result["open"] is None


# --- tooltips: the reader's time, the sender's and UTC --------------------------------------------

TOOLTIPS = """
const { makeClock } = await chat("format");
const readers = {
  london: makeClock({ timeZone: "Europe/London", language: "en" }),
  guangzhou: makeClock({ timeZone: "Asia/Shanghai", language: "zh-hans" }),
};
return arg.map((item) => ({
  london: readers.london.time(item.iso),
  guangzhou: readers.guangzhou.time(item.iso),
  londonTip: readers.london.full(item.iso, "Asia/Shanghai"),
  guangzhouTip: readers.guangzhou.full(item.iso, "Europe/London"),
  ownTip: readers.london.full(item.iso, "Europe/London"),
}));
"""


def minutes(clock: str) -> int:
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


# Transactional: with Playwright's event loop in this thread, Django keeps the connection per
# context, and a rolled-back test would not roll back what it wrote (see the browser fixture).
@pytest.mark.django_db(transaction=True)
def test_a_london_and_a_guangzhou_reader_see_one_message_at_the_right_offset_across_the_changes(
    page: Any, time_machine: Any, uk_officer: User, gz_officer: User, room: Room
) -> None:
    """The message is stored at a frozen moment, read back through the API as each reader, and
    shown by the chat client in each reader's zone: 8 hours apart in winter, 7 in summer."""
    moments = {
        "2026-03-28T23:30:00+00:00": 8 * 60,  # the night before the clocks go forward
        "2026-03-29T01:30:00+00:00": 7 * 60,  # just after: 02:30 BST
        "2026-10-24T23:30:00+00:00": 7 * 60,  # the night before the clocks go back
        "2026-10-25T01:30:00+00:00": 8 * 60,  # just after: 01:30 GMT
    }
    stored = []
    for number, moment in enumerate(moments, 1):
        time_machine.move_to(dt.datetime.fromisoformat(moment), tick=False)
        messaging.send_message(
            sender=gz_officer, room_id=room.pk, client_id=f"c-{number}", body=f"Report {number}"
        )
    for reader in (uk_officer, gz_officer):
        listed = sign_in(Client(), reader).get(f"/api/v1/rooms/{room.pk}/messages").json()
        stored.append([item["created_at"] for item in listed["messages"]])
    assert stored[0] == stored[1]  # one record, in UTC, for every reader
    assert [dt.datetime.fromisoformat(iso) for iso in stored[0]] == [
        dt.datetime.fromisoformat(moment) for moment in moments
    ]

    shown = run(page, TOOLTIPS, [{"iso": iso} for iso in stored[0]])

    for (moment, offset), times in zip(moments.items(), shown, strict=True):
        difference = (minutes(times["guangzhou"]) - minutes(times["london"])) % (24 * 60)
        assert difference == offset, (moment, times)
    winter, summer = shown[0], shown[1]
    assert (winter["london"], winter["guangzhou"]) == ("23:30", "07:30")
    assert (summer["london"], summer["guangzhou"]) == ("02:30", "09:30")
    # Each tooltip: the reader's time, the sender's local time, and UTC.
    london_lines = summer["londonTip"].split("\n")
    assert len(london_lines) == 3
    assert "02:30" in london_lines[0]
    assert london_lines[0].endswith("(your time, Europe/London)")
    assert london_lines[1].startswith("Sender's local time: ")
    assert "09:30" in london_lines[1]
    assert london_lines[2].startswith("UTC: ")
    assert "01:30" in london_lines[2]
    guangzhou_lines = summer["guangzhouTip"].split("\n")
    assert "09:30" in guangzhou_lines[0]
    assert "02:30" in guangzhou_lines[1]
    assert "01:30" in guangzhou_lines[2]
    assert "2026年3月29日" in guangzhou_lines[0]  # the reader's language
    assert not any(mark in summer["guangzhouTip"] for mark in ("AM", "PM", "上午", "下午"))
    # The reader's own message: one line for both times, then UTC.
    own = summer["ownTip"].split("\n")
    assert own[0].endswith("(your time and the sender's, Europe/London)")
    assert own[1].startswith("UTC: ")
