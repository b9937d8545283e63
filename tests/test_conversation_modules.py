"""The pure logic of the room's conversation modules, in real headless Chromium: the attention
tally (counts once per seq, exact counts replace, the reader's own messages never count), the tab
title, mention tokens and the ``mentions`` field, acknowledgement states, notification texts,
and what an outbox entry sends besides its text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.chat_modules_support import empty_page, run, serving_static

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def static_server() -> Iterator[str]:
    with serving_static() as url:
        yield url


@pytest.fixture
def page(browser: Any, static_server: str) -> Iterator[Any]:
    with empty_page(browser, static_server) as tab:
        yield tab


def test_the_tally_counts_each_message_once_and_takes_exact_counts_from_the_server(
    page: Any,
) -> None:
    result = run(
        page,
        """
        const { Tally, titleWith } = await chat("attention");
        const tally = new Tally(7);
        const row = { exercise: 1, unread: 2, mentions: 0, acks: 0, read_seq: 3, last_seq: 5 };
        tally.apply({ type: "counts", full: true, rooms: { "10": row, "11": { ...row } } });
        const steps = [];
        const activity = (room, seq, sender) => ({ type: "activity", room, seq, sender });
        tally.apply(activity(10, 6, 8));
        tally.apply(activity(10, 6, 8)); // the same message again
        tally.apply(activity(10, 7, 7)); // the reader's own
        tally.apply(activity(10, 4, 8)); // older than held
        steps.push([tally.rooms.get(10).unread, tally.rooms.get(10).last_seq]);
        const notice = { type: "notice", room: 11, seq: 6, reason: "mention" };
        tally.apply(notice);
        tally.apply(notice);
        steps.push(tally.rooms.get(11).mentions);
        tally.apply({ type: "counts", full: false, rooms: { "10": { ...row, unread: 0 } } });
        steps.push(tally.totals());
        tally.rooms.get(11).muted = true;
        steps.push(tally.totals());
        steps.push(titleWith("General", { unread: 5, mentions: 2 }));
        steps.push(titleWith("General", { unread: 5, mentions: 0 }));
        steps.push(titleWith("General", { unread: 0, mentions: 0 }));
        return steps;
        """,
    )
    assert result == [
        [3, 7],
        1,
        {"unread": 2, "mentions": 1},
        {"unread": 0, "mentions": 0},
        "(2@ · 5) General",
        "(5) General",
        "General",
    ]


def test_mentions_are_sent_as_ids_only_while_their_text_is_still_there(page: Any) -> None:
    result = run(
        page,
        """
        const { activeToken, candidates, matching, mentionSpec } = await chat("mentions");
        const members = [
          { id: 3, name: "Li Wei", agency: "GACC Guangzhou Customs", agencyCode: "gacc-gz" },
          { id: 4, name: "James Carter", agency: "UK Border Force", agencyCode: "ukbf" },
        ];
        const all = candidates(members);
        const picked = [all[0], all.find((c) => c.kind === "agency" && c.id === "ukbf")];
        return {
          token: activeToken("Please ask @Li W", 16),
          noToken: activeToken("mail me@home", 12),
          matches: matching(all, "wei").map((c) => c.label),
          spec: mentionSpec("@Li Wei and @UK Border Force, check", picked),
          removed: mentionSpec("nobody named any more", picked),
          room: mentionSpec("@room heads up", []),
        };
        """,
    )
    assert result["token"] == {"start": 11, "query": "Li W"}
    assert result["noToken"] is None
    assert result["matches"] == ["Li Wei"]
    assert result["spec"] == {"users": [3], "agencies": ["ukbf"], "room": False}
    assert result["removed"] is None
    assert result["room"] == {"users": [], "agencies": [], "room": True}


def test_acknowledgement_states_and_notification_texts(page: Any) -> None:
    result = run(
        page,
        """
        const { ackState } = await chat("acks");
        const { notificationText } = await chat("notify");
        const { sendFrame } = await chat("outbox");
        const ack = {
          due_at: "2026-07-01T10:00:00.000Z",
          by: [
            { user: { id: 3, display_name: "Li Wei" }, at: "2026-07-01T09:34:00.000Z" },
            { user: { id: 4, display_name: "James Carter" }, at: null },
          ],
        };
        const sender = { display_name: "Olivia Hughes" };
        return {
          early: ackState(ack, 4, Date.parse("2026-07-01T09:40:00Z")),
          late: ackState(ack, 3, Date.parse("2026-07-01T10:01:00Z")).overdue,
          texts: [
            notificationText({ reason: "mention", sender }, "General"),
            notificationText({ reason: "ack", sender }, "General"),
            notificationText({ type: "activity", kind: "alert" }, "General"),
          ],
          frame: sendFrame({ client_id: "c1", body: "x", asks: { reply_to: 4, kind: "alert" } }),
        };
        """,
    )
    assert result["early"] == {
        "done": [{"name": "Li Wei", "at": "2026-07-01T09:34:00.000Z"}],
        "waiting": ["James Carter"],
        "mine": "waiting",
        "overdue": False,
    }
    assert result["late"] is True
    assert result["texts"] == [
        "Olivia Hughes mentioned you in #General",
        "Olivia Hughes asks you to acknowledge a message in #General",
        "Alert in #General",
    ]
    assert result["frame"] == {
        "type": "message.send",
        "client_id": "c1",
        "body": "x",
        "reply_to": 4,
        "kind": "alert",
    }
