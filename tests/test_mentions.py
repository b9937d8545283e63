"""Replies and mentions: a reply quotes its parent (decrypted on the server), mentions are stored
as user ids beside the ciphertext, and nobody outside the exercise can be mentioned."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from liaison import events, selectors
from liaison.errors import Invalid
from liaison.models import AuditEvent, Mention, Message, Room, User
from liaison.services.messaging import delete_message, edit_message, mark_read, send_message
from tests.conftest import CapturedEvents

pytestmark = pytest.mark.django_db


def send(user: User, room: Room, body: str = "Seal numbers match.", **kw: Any):
    kw.setdefault("client_id", f"c-{uuid.uuid4().hex[:12]}")
    return send_message(sender=user, room_id=room.pk, body=body, **kw)


def page(user: User, room: Room) -> list[dict[str, Any]]:
    return selectors.messages_before(user=user, room_id=room.pk).messages


# --- replies ------------------------------------------------------------------------------------


def test_a_reply_carries_a_quoted_excerpt_of_its_parent_for_its_readers(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, body="Please hold container MSKU4417702 at Nansha.")
    send(gz_officer, room, body="Received — will hold the container.", reply_to=1)

    parent, reply = page(gz_officer, room)
    assert parent["reply"] is None
    assert reply["reply_to"] == 1
    assert reply["reply"] == {
        "seq": 1,
        "sender": parent["sender"],
        "excerpt": "Please hold container MSKU4417702 at Nansha.",
        "deleted": False,
    }


def test_a_reply_quotes_the_current_text_and_nothing_of_a_deleted_parent(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, body="First draft")
    edit_message(user=uk_officer, room_id=room.pk, seq=1, body="Corrected " + "x" * 300)
    send(gz_officer, room, body="Noted.", reply_to=1)
    quoted = page(gz_officer, room)[1]["reply"]
    assert quoted["excerpt"].startswith("Corrected xxx")
    assert len(quoted["excerpt"]) == 160
    assert quoted["excerpt"].endswith("…")

    delete_message(user=uk_officer, room_id=room.pk, seq=1)
    quoted = page(gz_officer, room)[1]["reply"]
    assert quoted["deleted"] is True
    assert quoted["excerpt"] is None


def test_the_live_reply_carries_its_quote_too(
    uk_officer: User,
    gz_officer: User,
    room: Room,
    captured_events: CapturedEvents,
    django_capture_on_commit_callbacks: Any,
) -> None:
    send(uk_officer, room, body="Is the seal intact?")
    with django_capture_on_commit_callbacks(execute=True):
        send(gz_officer, room, body="Yes.", reply_to=1)
    (event,) = captured_events.to_group(events.room_group(room.pk))
    message = events.frame_of(event)["message"]
    assert message["reply"]["excerpt"] == "Is the seal intact?"
    assert message["reply"]["sender"]["id"] == uk_officer.pk


def test_a_reply_to_a_message_that_does_not_exist_is_refused(uk_officer: User, room: Room) -> None:
    with pytest.raises(Invalid) as refused:
        send(uk_officer, room, reply_to=5)
    assert refused.value.field == "reply_to"


# --- mentions -----------------------------------------------------------------------------------


def test_mentions_are_stored_as_user_ids_beside_the_ciphertext(
    uk_officer: User, gz_officer: User, gz_observer: User, room: Room
) -> None:
    send(uk_officer, room, body="@Li Wei please check.", mentions={"users": [gz_officer.pk]})
    message = Message.objects.get(room=room, seq=1)
    assert message.mentions == {"users": [gz_officer.pk], "agencies": [], "room": False}
    assert list(Mention.objects.values_list("user_id", "via")) == [(gz_officer.pk, "person")]
    payload = page(gz_officer, room)[0]
    assert payload["mentions"] == {
        "users": [gz_officer.pk],
        "agencies": [],
        "room": False,
        "all": [gz_officer.pk],
    }
    # The mention is recorded on the message's own rows, as ids only: the name typed in the
    # body stays in the ciphertext.
    assert list(Mention.objects.values_list("message_id", flat=True)) == [message.pk]
    assert "Li Wei" not in json.dumps(message.mentions)
    assert b"Li Wei" not in bytes(message.ciphertext)
    # The send itself writes no audit event; the one about this message is the mention's email,
    # naming its recipient by id.
    (row,) = AuditEvent.objects.filter(target_type="message", target_id=str(message.pk))
    assert row.action == "notification.emailed"
    assert row.details["recipients"] == [gz_officer.pk]
    assert "Li Wei" not in json.dumps(row.details)


def test_an_agency_mention_reaches_its_members_and_room_reaches_everyone_but_the_sender(
    uk_officer: User, uk_coordinator: User, gz_officer: User, gz_observer: User, room: Room
) -> None:
    send(uk_officer, room, body="@GACC", mentions={"agencies": ["gacc-gz"]})
    send(uk_officer, room, body="@room", mentions={"room": True})
    first, second = page(uk_officer, room)
    assert first["mentions"]["all"] == sorted([gz_officer.pk, gz_observer.pk])
    assert second["mentions"]["all"] == sorted([uk_coordinator.pk, gz_officer.pk, gz_observer.pk])
    vias = dict(Mention.objects.filter(message__seq=2).values_list("user_id", "via"))
    assert set(vias.values()) == {"room"}


def test_mentioning_someone_outside_the_exercise_is_refused_and_nothing_is_stored(
    uk_officer: User, outsider: User, room: Room
) -> None:
    with pytest.raises(Invalid) as refused:
        send(uk_officer, room, body="@Sam", mentions={"users": [outsider.pk]})
    assert refused.value.field == "mentions"
    assert not Message.objects.exists()
    assert not Mention.objects.exists()


def test_a_removed_member_cannot_be_mentioned(
    uk_officer: User, removed_coordinator: User, room: Room
) -> None:
    with pytest.raises(Invalid):
        send(uk_officer, room, body="@old", mentions={"users": [removed_coordinator.pk]})


def test_an_agency_with_no_member_in_the_exercise_cannot_be_mentioned(
    uk_officer: User, room: Room
) -> None:
    with pytest.raises(Invalid):
        send(uk_officer, room, body="@nobody", mentions={"agencies": ["no-such-agency"]})


def test_mention_counts_follow_the_read_marker(
    uk_officer: User, gz_officer: User, room: Room, lane_room: Room
) -> None:
    send(uk_officer, room, body="@Li Wei", mentions={"users": [gz_officer.pk]})
    send(uk_officer, room, body="plain")
    send(uk_officer, lane_room, body="@GACC", mentions={"agencies": ["gacc-gz"]})
    counts = selectors.attention_counts(user=gz_officer)
    assert (counts[room.pk]["unread"], counts[room.pk]["mentions"]) == (2, 1)
    assert (counts[lane_room.pk]["unread"], counts[lane_room.pk]["mentions"]) == (1, 1)
    mark_read(user=gz_officer, room_id=room.pk, seq=2)
    counts = selectors.attention_counts(user=gz_officer)
    assert (counts[room.pk]["unread"], counts[room.pk]["mentions"]) == (0, 0)
    assert counts[lane_room.pk]["mentions"] == 1
    # The sender's own mention of others counts nothing for the sender.
    mine = selectors.attention_counts(user=uk_officer)
    assert mine[room.pk] | {"last_at": None} == mine[room.pk] | {
        "unread": 0,
        "mentions": 0,
        "last_at": None,
    }
