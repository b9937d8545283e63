"""Presence: who is online in an exercise, a change only when that changes, the socket cap, the
state told to every room, stale rows removed."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from liaison import events
from liaison.models import Presence, Room, User
from liaison.realtime import presence

pytestmark = pytest.mark.django_db


def _join(user: User, room: Room, channel: str, cap: int = 0) -> presence.Joined | None:
    return presence.join(
        user_id=user.pk,
        room_id=room.pk,
        exercise_id=room.exercise_id,
        channel_name=channel,
        session_key="s",
        socket_cap=cap,
    )


def _frames(captured: Any) -> list[tuple[str, dict[str, Any], int]]:
    return [
        (group, json.loads(event["frame"]), event["epoch"])
        for group, event in captured.sent
        if event["type"] == events.ROOM_PRESENCE
    ]


def _work(queries: CaptureQueriesContext) -> list[str]:
    words = [q["sql"].split()[0] for q in queries.captured_queries]
    return [w for w in words if w not in {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}]


def test_the_first_socket_brings_a_person_online_and_only_the_first(
    room: Room, lane_room: Room, uk_officer: User, gz_officer: User
) -> None:
    first = _join(uk_officer, room, "a1")
    assert first == presence.Joined(
        online=[uk_officer.pk],
        change=presence.Change(exercise_id=room.exercise_id, user_id=uk_officer.pk),
    )
    # A second socket of the same person, in another room: nothing changes for anyone.
    assert _join(uk_officer, lane_room, "a2") == presence.Joined(
        online=[uk_officer.pk], change=None
    )
    other = _join(gz_officer, room, "b1")
    assert other is not None
    assert other.online == sorted([uk_officer.pk, gz_officer.pk])
    assert other.change == presence.Change(exercise_id=room.exercise_id, user_id=gz_officer.pk)
    assert presence.online_sockets(room.exercise_id) == {uk_officer.pk: 2, gz_officer.pk: 1}


def test_auditors_are_neither_listed_nor_announced(
    room: Room, auditor: User, uk_officer: User
) -> None:
    _join(uk_officer, room, "a1")
    joined = _join(auditor, room, "z1")
    assert joined == presence.Joined(online=[uk_officer.pk], change=None)
    assert presence.leave(channel_name="z1") is None


def test_the_last_socket_closing_takes_the_person_offline(room: Room, uk_officer: User) -> None:
    _join(uk_officer, room, "a1")
    _join(uk_officer, room, "a2")
    assert presence.leave(channel_name="a1") is None
    assert presence.leave(channel_name="a2") == presence.Change(
        exercise_id=room.exercise_id, user_id=uk_officer.pk
    )
    assert presence.leave(channel_name="a2") is None  # already gone: nothing to tell
    assert presence.online_user_ids(room.exercise_id) == []


def test_the_socket_cap_counts_every_room_and_refuses_beyond_it(
    room: Room, lane_room: Room, uk_officer: User
) -> None:
    assert _join(uk_officer, room, "a1", cap=2) is not None
    assert _join(uk_officer, lane_room, "a2", cap=2) is not None
    assert _join(uk_officer, room, "a3", cap=2) is None
    assert sorted(Presence.objects.values_list("channel_name", flat=True)) == ["a1", "a2"]
    # A stale row (a worker that died) no longer takes a place.
    Presence.objects.filter(channel_name="a1").update(
        last_seen_at=timezone.now() - dt.timedelta(hours=1)
    )
    assert _join(uk_officer, room, "a3", cap=2) is not None


def test_a_join_is_an_insert_and_one_read_and_the_cap_adds_a_lock_and_a_count(
    room: Room, uk_officer: User
) -> None:
    _join(uk_officer, room, "a1")
    with CaptureQueriesContext(connection) as queries:
        _join(uk_officer, room, "a2")
    assert _work(queries) == ["INSERT", "SELECT"]
    with CaptureQueriesContext(connection) as queries:
        _join(uk_officer, room, "a3", cap=20)
    assert _work(queries) == ["SELECT", "SELECT", "INSERT", "SELECT"]
    if connection.vendor == "postgresql":
        assert queries.captured_queries[1]["sql"].endswith("FOR UPDATE")


def test_announcing_tells_every_room_the_state_now_at_its_own_epoch(
    room: Room, lane_room: Room, uk_officer: User, gz_officer: User, captured_events: Any
) -> None:
    Room.objects.filter(pk=lane_room.pk).update(access_epoch=7)
    _join(uk_officer, room, "a1")
    presence.announce(exercise_id=room.exercise_id, user_ids=[uk_officer.pk, gz_officer.pk])
    expected = {"type": "presence", "joined": [uk_officer.pk], "left": [gz_officer.pk]}
    assert sorted(_frames(captured_events)) == sorted(
        [
            (events.room_group(room.pk), expected, room.access_epoch),
            (events.room_group(lane_room.pk), expected, 7),
        ]
    )
    captured_events.sent.clear()
    presence.leave(channel_name="a1")
    presence.announce(exercise_id=room.exercise_id, user_ids=[uk_officer.pk])
    assert {json.dumps(frame) for _, frame, _ in _frames(captured_events)} == {
        json.dumps({"type": "presence", "left": [uk_officer.pk]})
    }


def test_the_refresh_keeps_this_process_fresh_and_removes_a_dead_process_rows(
    room: Room, uk_officer: User, gz_officer: User
) -> None:
    _join(uk_officer, room, "mine")
    long_ago = timezone.now() - dt.timedelta(hours=1)
    Presence.objects.create(
        channel_name="theirs",
        user=gz_officer,
        room=room,
        session_key="t",
        worker="a-process-that-died",
        connected_at=long_ago,
        last_seen_at=long_ago,
    )
    assert presence.online_user_ids(room.exercise_id) == [uk_officer.pk]  # stale rows never count
    Presence.objects.filter(channel_name="mine").update(last_seen_at=long_ago)
    assert presence.refresh_worker() == 1
    assert list(Presence.objects.values_list("channel_name", flat=True)) == ["mine"]
    assert presence.online_user_ids(room.exercise_id) == [uk_officer.pk]
