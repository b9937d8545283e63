"""Reactions from a fixed set (seen, agreed, important): set and cleared by members who may
post, once each, shown to the room live, in every message object."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client

from liaison import events, selectors
from liaison.errors import AccessDenied, Invalid, NotFound, PermissionDenied
from liaison.models import Reaction, Room, User
from liaison.services import reactions
from liaison.services.messaging import delete_message, send_message
from tests.conftest import CapturedEvents, sign_in

pytestmark = pytest.mark.django_db

SEEN, AGREED, IMPORTANT = "\u2713", "\U0001f44d", "\u2757"


def send(user: User, room: Room, body: str = "Seal 4471 intact.") -> int:
    return send_message(
        sender=user, room_id=room.pk, client_id=f"c-{uuid.uuid4().hex[:8]}", body=body
    ).seq


def test_members_react_once_each_and_clear_their_own(
    uk_officer: User, gz_officer: User, uk_coordinator: User, room: Room
) -> None:
    seq = send(uk_officer, room)
    reactions.react(user=gz_officer, room_id=room.pk, seq=seq, emoji=SEEN, on=True)
    reactions.react(user=gz_officer, room_id=room.pk, seq=seq, emoji=SEEN, on=True)
    given = reactions.react(user=uk_coordinator, room_id=room.pk, seq=seq, emoji=SEEN, on=True)
    assert given == {SEEN: [gz_officer.pk, uk_coordinator.pk]}
    given = reactions.react(user=gz_officer, room_id=room.pk, seq=seq, emoji=SEEN, on=False)
    assert given == {SEEN: [uk_coordinator.pk]}
    (message,) = selectors.messages_before(user=uk_officer, room_id=room.pk).messages
    assert message["reactions"] == {SEEN: [uk_coordinator.pk]}
    assert Reaction.objects.count() == 1


def test_the_room_hears_the_change_live(
    uk_officer: User,
    gz_officer: User,
    room: Room,
    captured_events: CapturedEvents,
    django_capture_on_commit_callbacks: Any,
) -> None:
    seq = send(uk_officer, room)
    with django_capture_on_commit_callbacks(execute=True):
        reactions.react(user=gz_officer, room_id=room.pk, seq=seq, emoji=IMPORTANT, on=True)
    (event,) = [
        e
        for e in captured_events.to_group(events.room_group(room.pk))
        if e["type"] == events.ROOM_REACTION_UPDATED
    ]
    assert events.frame_of(event) == {
        "type": "reaction.updated",
        "room": room.pk,
        "seq": seq,
        "reactions": {IMPORTANT: [gz_officer.pk]},
    }


def test_only_the_fixed_set_and_only_members_who_may_post(
    uk_officer: User, gz_observer: User, outsider: User, auditor: User, room: Room
) -> None:
    seq = send(uk_officer, room)
    with pytest.raises(Invalid):
        reactions.react(user=uk_officer, room_id=room.pk, seq=seq, emoji="\U0001f600", on=True)
    with pytest.raises(PermissionDenied):
        reactions.react(user=gz_observer, room_id=room.pk, seq=seq, emoji=SEEN, on=True)
    with pytest.raises(PermissionDenied):
        reactions.react(user=auditor, room_id=room.pk, seq=seq, emoji=SEEN, on=True)
    with pytest.raises(AccessDenied):
        reactions.react(user=outsider, room_id=room.pk, seq=seq, emoji=SEEN, on=True)
    delete_message(user=uk_officer, room_id=room.pk, seq=seq)
    with pytest.raises(NotFound):
        reactions.react(user=uk_officer, room_id=room.pk, seq=seq, emoji=SEEN, on=True)


def test_reacting_over_http(uk_officer: User, gz_officer: User, room: Room) -> None:
    seq = send(uk_officer, room)
    client = sign_in(Client(), gz_officer)
    response = client.post(
        f"/api/v1/rooms/{room.pk}/messages/{seq}/reactions",
        {"emoji": AGREED},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["reactions"] == {AGREED: [gz_officer.pk]}
