"""The room row as a send needs it, in one statement, and the send's statement budget."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from liaison.crypto import roomkeys
from liaison.errors import RoomClosed
from liaison.models import Exercise, Message, Room, User
from liaison.services import room_append
from liaison.services.messaging import send_message

pytestmark = pytest.mark.django_db


def test_the_room_comes_with_its_exercise_and_key_state(room: Room, exercise: Exercise) -> None:
    exercise.markings = ["OFFICIAL", "OFFICIAL-SENSITIVE"]
    exercise.save(update_fields=["markings"])
    with transaction.atomic():
        before = room_append.lock_room_for_append(room.pk)
    assert before is not None
    assert (before.room.pk, before.room.last_seq, before.room.chain_head) == (
        room.pk,
        room.last_seq,
        room.chain_head,
    )
    assert before.room.exercise.markings == ["OFFICIAL", "OFFICIAL-SENSITIVE"]
    assert before.room.exercise.code == exercise.code
    assert (before.key_version, before.key_shredded) == (None, False)

    version, _ = roomkeys.active_key(room.pk)
    with transaction.atomic():
        after = room_append.lock_room_for_append(room.pk)
    assert after is not None
    assert (after.key_version, after.key_shredded) == (version, False)
    # Fields the send does not read load on first use.
    assert after.room.topic == room.topic
    assert after.room.exercise.status == exercise.status


def test_a_missing_room_is_none(db: None) -> None:
    with transaction.atomic():
        assert room_append.lock_room_for_append(987654) is None


def test_destroyed_keys_refuse_new_messages(room: Room, uk_officer: User) -> None:
    send_message(sender=uk_officer, room_id=room.pk, client_id="before", body="kept")
    roomkeys.destroy_room_keys([room.pk])
    with transaction.atomic():
        locked = room_append.lock_room_for_append(room.pk)
    assert locked is not None
    assert locked.key_shredded
    room.refresh_from_db()
    with pytest.raises(RoomClosed):
        send_message(
            sender=uk_officer,
            room_id=room.pk,
            client_id="after",
            body="never sealed",
            posting_epoch=room.access_epoch,
        )


def test_a_socket_send_costs_one_read_and_one_write(
    room: Room, uk_officer: User, django_capture_on_commit_callbacks: Any
) -> None:
    """The budget of a send on a socket's grant once the room's key is cached: the locking read,
    then the insert and the head's move (one statement on PostgreSQL)."""
    with django_capture_on_commit_callbacks(execute=True):  # the key is cached on commit
        send_message(sender=uk_officer, room_id=room.pk, client_id="warm", body="first")
    room.refresh_from_db()
    with CaptureQueriesContext(connection) as queries:
        result = send_message(
            sender=uk_officer,
            room_id=room.pk,
            client_id="counted",
            body="second",
            posting_epoch=room.access_epoch,
        )
    work = [
        q["sql"].split()[0].upper()
        for q in queries.captured_queries
        if q["sql"].split()[0].upper() not in {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}
    ]
    expected = ["SELECT", "WITH"] if connection.vendor == "postgresql" else None
    assert work == (expected or ["SELECT", "INSERT", "UPDATE"]), [q["sql"][:80] for q in queries]
    stored = Message.objects.get(pk=result.message.pk)
    room.refresh_from_db()
    assert (room.last_seq, room.chain_head) == (stored.seq, stored.chain_hash)
    assert stored.client_id == "counted"


def test_a_resent_client_id_is_refused_by_the_constraint_and_moves_nothing(
    room: Room, uk_officer: User
) -> None:
    first = send_message(sender=uk_officer, room_id=room.pk, client_id="same", body="one")
    room.refresh_from_db()
    again = send_message(sender=uk_officer, room_id=room.pk, client_id="same", body="two")
    assert again.created is False
    assert again.message.pk == first.message.pk
    assert Room.objects.get(pk=room.pk).last_seq == room.last_seq
    assert Message.objects.filter(room=room).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_room_stays_locked_until_the_append_commits(room: Room) -> None:
    if not connection.features.has_select_for_update:
        pytest.skip("row locks need PostgreSQL (SQLite's immediate transaction is the lock)")
    holding, waited = threading.Event(), []

    def second_append() -> None:
        holding.wait(5)
        started = time.monotonic()
        try:
            with transaction.atomic():
                room_append.lock_room_for_append(room.pk)
            waited.append(time.monotonic() - started)
        finally:
            connections.close_all()

    other = threading.Thread(target=second_append)
    other.start()
    with transaction.atomic():
        room_append.lock_room_for_append(room.pk)
        holding.set()
        time.sleep(0.3)
        Room.objects.filter(pk=room.pk).update(last_seq=room.last_seq + 1)
    other.join(5)
    assert waited
    assert waited[0] >= 0.25
    assert Room.objects.get(pk=room.pk).last_seq == room.last_seq + 1
