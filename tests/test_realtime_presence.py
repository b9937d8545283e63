"""Presence: who is online in an exercise, a delta only when that changes, stale rows removed."""

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


def _join(user: User, room: Room, channel: str) -> list[int]:
    return presence.join(
        user=user,
        room_id=room.pk,
        epoch=room.access_epoch,
        channel_name=channel,
        session_key="s",
    )


def _deltas(captured: Any) -> list[tuple[str, dict[str, Any]]]:
    return [
        (group, json.loads(event["frame"]))
        for group, event in captured.sent
        if event["type"] == events.ROOM_PRESENCE
    ]


def test_the_first_socket_brings_a_person_online_in_every_room_of_the_exercise(
    room: Room,
    lane_room: Room,
    uk_officer: User,
    gz_officer: User,
    captured_events: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        assert _join(uk_officer, room, "a1") == [uk_officer.pk]
    assert sorted(_deltas(captured_events)) == sorted(
        [
            (events.room_group(room.pk), {"type": "presence", "joined": [uk_officer.pk]}),
            (events.room_group(lane_room.pk), {"type": "presence", "joined": [uk_officer.pk]}),
        ]
    )
    captured_events.sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        # A second socket of the same person, in another room: nothing changes for anyone.
        assert _join(uk_officer, lane_room, "a2") == [uk_officer.pk]
        assert _join(gz_officer, room, "b1") == sorted([uk_officer.pk, gz_officer.pk])
    assert [frame["joined"] for _, frame in _deltas(captured_events)] == [[gz_officer.pk]] * 2


def test_auditors_are_neither_listed_nor_announced(
    room: Room, auditor: User, uk_officer: User, captured_events: Any
) -> None:
    _join(uk_officer, room, "a1")
    assert _join(auditor, room, "z1") == [uk_officer.pk]
    assert all(frame.get("joined") != [auditor.pk] for _, frame in _deltas(captured_events))


def test_the_last_socket_closing_takes_the_person_offline(
    room: Room, uk_officer: User, captured_events: Any, django_capture_on_commit_callbacks: Any
) -> None:
    _join(uk_officer, room, "a1")
    _join(uk_officer, room, "a2")
    captured_events.sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        presence.leave(channel_name="a1")
    assert _deltas(captured_events) == []
    with django_capture_on_commit_callbacks(execute=True):
        presence.leave(channel_name="a2")
    assert {frame["left"][0] for _, frame in _deltas(captured_events)} == {uk_officer.pk}


def test_a_join_costs_an_insert_and_one_read_when_the_person_is_online_already(
    room: Room, uk_officer: User
) -> None:
    _join(uk_officer, room, "a1")
    with CaptureQueriesContext(connection) as queries:
        _join(uk_officer, room, "a2")
    work = [q["sql"].split()[0] for q in queries.captured_queries]
    assert [w for w in work if w not in {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}] == [
        "INSERT",
        "SELECT",
    ]


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
    assert presence.online_user_ids(room.pk) == [uk_officer.pk]  # stale rows never count
    Presence.objects.filter(channel_name="mine").update(last_seen_at=long_ago)
    assert presence.refresh_worker() == 1
    assert list(Presence.objects.values_list("channel_name", flat=True)) == ["mine"]
    assert presence.online_user_ids(room.pk) == [uk_officer.pk]
