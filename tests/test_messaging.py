"""Messaging rules: sending, idempotency, validation, edits, deletions, read markers, the HTTP
API, and that no message text reaches the database in the clear."""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import Client

from liaison import audit, crypto, events, selectors
from liaison.crypto import records
from liaison.errors import AccessDenied, Invalid, NotFound, PermissionDenied, RoomClosed, TooLarge
from liaison.models import (
    AuditEvent,
    Exercise,
    ExerciseStatus,
    GroupRole,
    Membership,
    Message,
    MessageRevision,
    ReadMarker,
    Role,
    Room,
    User,
)
from liaison.payloads import message_payload
from liaison.services import attachments, memberships
from liaison.services.messaging import (
    delete_message,
    edit_message,
    mark_read,
    send_message,
)
from tests.conftest import CapturedEvents
from tests.factories import MembershipFactory, RoomFactory

pytestmark = pytest.mark.django_db


def send(user: User, room: Room, body: str = "Container MSKU 1234567 cleared.", **kw):
    kw.setdefault("client_id", f"c-{uuid.uuid4().hex[:12]}")
    return send_message(sender=user, room_id=room.pk, body=body, **kw)


def audit_rows(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- sending ------------------------------------------------------------------------------------


def test_a_sent_message_is_stored_sealed_with_the_next_seq_chained_and_broadcast(
    uk_officer: User, room: Room, captured_events: CapturedEvents
) -> None:
    audit_before = AuditEvent.objects.count()
    with_commit = send(uk_officer, room, body="Forty containers of mixed plastic bales.")

    message = Message.objects.get(room=room)
    assert with_commit.created is True
    assert with_commit.seq == message.seq == 1
    assert b"plastic" not in bytes(message.ciphertext)
    assert records.open_message_body(message) == "Forty containers of mixed plastic bales."
    room.refresh_from_db()
    assert room.last_seq == 1
    assert room.chain_head == message.chain_hash
    assert message.prev_hash == audit.GENESIS_HASH
    assert message.sender_id == uk_officer.pk

    # The room's message chain is the message's record: its link binds the sender, seq, the
    # sealed body, the marking, the reply and the mentions. A send writes no global audit row.
    assert message.link_version == audit.MESSAGE_LINK_VERSION == 2
    assert message.chain_hash == audit.message_link_hash(
        prev_hash=audit.GENESIS_HASH,
        room_id=room.pk,
        seq=1,
        sender_id=uk_officer.pk,
        created_at=message.created_at,
        kind=message.kind,
        key_version=message.key_version,
        nonce=bytes(message.nonce),
        ciphertext=bytes(message.ciphertext),
        link_version=2,
        marking=message.marking,
        reply_to_seq=None,
        mentions={},
    )
    assert AuditEvent.objects.count() == audit_before

    # The event leaves on commit (the test transaction never commits; run the hooks).
    assert captured_events.sent == []


def test_the_event_leaves_after_commit_with_the_member_visible_message(
    uk_officer: User,
    room: Room,
    captured_events: CapturedEvents,
    django_capture_on_commit_callbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        send(uk_officer, room, body="Bill of lading FXT-889 matches.", client_id="c-1")
    (event,) = captured_events.to_group(events.room_group(room.pk))
    assert event["type"] == events.ROOM_MESSAGE_NEW
    message = events.frame_of(event)["message"]
    assert message["seq"] == 1
    assert message["room"] == room.pk
    assert message["body"] == "Bill of lading FXT-889 matches."
    assert message["sender"] == {
        "id": uk_officer.pk,
        "display_name": "Olivia Hughes",
        "agency": "HM Revenue & Customs",
        "time_zone": "Europe/London",
    }
    assert message["kind"] == "text"
    assert message["deleted"] is False
    assert message["edited_at"] is None
    assert message["reply_to"] is None
    assert message["attachments"] == []
    assert message["created_at"].endswith("Z")


def test_seqs_follow_each_other_and_every_message_links_the_room_chain(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    for index in range(5):
        send(uk_officer if index % 2 else gz_officer, room, body=f"update {index}")
    messages = list(Message.objects.filter(room=room).order_by("seq"))
    assert [m.seq for m in messages] == [1, 2, 3, 4, 5]
    previous = audit.GENESIS_HASH
    for message in messages:
        assert message.prev_hash == previous
        assert message.chain_hash == audit.message_link_of(message)
        previous = message.chain_hash
    room.refresh_from_db()
    assert room.chain_head == previous


def test_a_resent_client_id_returns_the_original_message_and_seq(
    uk_officer: User, room: Room, django_capture_on_commit_callbacks, captured_events
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = send(uk_officer, room, body="first try", client_id="retry-1")
        send(uk_officer, room, body="something between", client_id="retry-2")
        again = send(uk_officer, room, body="first try (resent)", client_id="retry-1")
    assert again.created is False
    assert again.seq == first.seq == 1
    assert again.message.pk == first.message.pk
    assert Message.objects.filter(room=room).count() == 2
    assert Message.objects.filter(room=room, sender=uk_officer, client_id="retry-1").count() == 1
    # The resend appended nothing: seq and chain head are still those of the second message.
    room.refresh_from_db()
    assert room.last_seq == 2
    assert room.chain_head == Message.objects.get(room=room, seq=2).chain_hash
    assert captured_events.types().count(events.ROOM_MESSAGE_NEW) == 2


def test_the_same_client_id_from_another_sender_is_a_different_message(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    a = send(uk_officer, room, client_id="same")
    b = send(gz_officer, room, client_id="same")
    assert (a.seq, b.seq) == (1, 2)


@pytest.mark.parametrize(
    "client_id", ["", "x" * 65, "has space", "naïve", "semi;colon", None, 42, ["a"]]
)
def test_a_malformed_client_id_is_invalid(uk_officer: User, room: Room, client_id) -> None:
    with pytest.raises(Invalid, match="client_id"):
        send_message(sender=uk_officer, room_id=room.pk, client_id=client_id, body="hello")
    assert not Message.objects.exists()


def test_a_client_id_of_64_safe_characters_is_accepted(uk_officer: User, room: Room) -> None:
    result = send(uk_officer, room, client_id="A-z_09" + "x" * 58)
    assert result.message.client_id == "A-z_09" + "x" * 58


@pytest.mark.parametrize("body", ["", "   ", "\n\t \n", "\x00\x07\x1b", None, 12])
def test_an_empty_or_non_text_body_is_invalid(uk_officer: User, room: Room, body) -> None:
    with pytest.raises(Invalid):
        send(uk_officer, room, body=body)
    assert not Message.objects.exists()
    room.refresh_from_db()
    assert (room.last_seq, room.chain_head) == (0, audit.GENESIS_HASH)


def test_a_body_over_the_limit_is_too_large_and_the_limit_itself_is_fine(
    uk_officer: User, room: Room
) -> None:
    limit = settings.LIAISON_MESSAGE_MAX_CHARS
    with pytest.raises(TooLarge) as refused:
        send(uk_officer, room, body="废" * (limit + 1))
    assert refused.value.code == "too_large"
    assert str(limit) in refused.value.detail
    assert send(uk_officer, room, body="废" * limit).seq == 1


def test_control_characters_are_removed_but_newlines_and_tabs_stay(
    uk_officer: User, room: Room
) -> None:
    result = send(uk_officer, room, body="  Line\x00 one\r\n\tLine\x1b two\u0085\x7f  \ud800")
    assert message_payload(result.message)["body"] == "Line one\n\tLine two"


def test_a_reply_must_point_at_an_existing_message_of_the_room(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, body="Which vessel?")
    reply = send(gz_officer, room, body="COSCO Nansha Star.", reply_to=1)
    assert message_payload(reply.message)["reply_to"] == 1
    for bad in (3, 0, -1, "1", True):
        with pytest.raises(Invalid, match="reply"):
            send(gz_officer, room, body="to nowhere", reply_to=bad)
    assert Message.objects.count() == 2


def test_an_observer_cannot_post(gz_observer: User, room: Room) -> None:
    with pytest.raises(PermissionDenied):
        send(gz_observer, room)
    assert not Message.objects.exists()


def test_an_auditor_cannot_post(auditor: User, room: Room) -> None:
    with pytest.raises(PermissionDenied, match="read-only"):
        send(auditor, room)
    assert not Message.objects.exists()


def test_an_outsider_cannot_post_and_cannot_tell_the_room_exists(
    outsider: User, room: Room
) -> None:
    with pytest.raises(AccessDenied) as denied:
        send(outsider, room)
    with pytest.raises(AccessDenied) as missing:
        send_message(sender=outsider, room_id=room.pk + 999, client_id="c", body="x")
    assert denied.value.detail == missing.value.detail
    assert not Message.objects.exists()


def test_a_removed_member_cannot_post(admin: User, uk_officer: User, room: Room) -> None:
    membership = Membership.objects.get(user=uk_officer, exercise=room.exercise)
    memberships.remove_member(actor=admin, membership=membership)
    with pytest.raises(AccessDenied):
        send(uk_officer, room)


@pytest.mark.parametrize("status", [ExerciseStatus.CLOSED, ExerciseStatus.DRAFT])
def test_nobody_posts_in_an_exercise_that_is_not_active(
    uk_officer: User, room: Room, status: str
) -> None:
    Exercise.objects.filter(pk=room.exercise_id).update(status=status)
    with pytest.raises(RoomClosed) as refused:
        send(uk_officer, room)
    assert refused.value.code == "room_closed"


def test_a_resend_after_the_exercise_closed_still_gets_its_original_seq(
    uk_officer: User, room: Room
) -> None:
    first = send(uk_officer, room, client_id="before-closing")
    Exercise.objects.filter(pk=room.exercise_id).update(status=ExerciseStatus.CLOSED)
    again = send(uk_officer, room, client_id="before-closing")
    assert (again.created, again.seq) == (False, first.seq)
    with pytest.raises(RoomClosed):
        send(uk_officer, room, client_id="after-closing")


def test_an_alert_keeps_its_kind_and_system_kinds_are_refused(uk_officer: User, room: Room) -> None:
    assert send(uk_officer, room, kind="alert").message.kind == "alert"
    with pytest.raises(Invalid, match="kind"):
        send(uk_officer, room, kind="shout")


def test_a_message_carries_the_senders_upload_and_a_bad_attachment_stores_nothing(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    upload = attachments.upload_attachment(
        uploader=uk_officer,
        room_id=room.pk,
        filename="manifest.txt",
        declared_type="text/plain",
        chunks=[b"MSKU 7710322 24300 kg\n"],
    )
    result = send(uk_officer, room, body="", attachment_ids=[upload.pk])
    assert result.message.kind == "attachment"
    upload.refresh_from_db()
    assert upload.message_id == result.message.pk
    seen = selectors.messages_before(user=gz_officer, room_id=room.pk).messages[0]
    assert [a["id"] for a in seen["attachments"]] == [upload.pk]
    assert seen["attachments"][0]["name"] == "manifest.txt"

    for refused in ([upload.pk], [987654]):
        with pytest.raises(Invalid, match="ttachment"):
            send(uk_officer, room, body="again", attachment_ids=refused)
    room.refresh_from_db()
    assert room.last_seq == 1
    assert Message.objects.count() == 1
    with pytest.raises(Invalid, match="at most 10"):
        send(uk_officer, room, attachment_ids=list(range(1, 12)))


# --- at rest --------------------------------------------------------------------------------


def raw_database_text() -> bytes:
    """Everything the database holds, as bytes: the SQLite file (and its journals), or every
    table of PostgreSQL rendered as text."""
    if connection.vendor == "sqlite":
        path = Path(connection.settings_dict["NAME"])
        return b"".join(
            candidate.read_bytes()
            for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-journal"))
            if candidate.exists()
        )
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT CAST(t AS text) FROM "{table}" t')  # noqa: S608
            chunks.extend(row[0].encode() for row in cursor.fetchall())
    return b"\n".join(chunks)


@pytest.mark.django_db(transaction=True)
def test_the_database_holds_no_message_text(uk_officer: User, gz_officer: User, room: Room) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}-固体废物"
    edited = f"EDITED-{uuid.uuid4().hex}"
    sent = send(uk_officer, room, body=f"Suspicious load {marker}")
    send(gz_officer, room, body=f"Re: {marker}")
    edit_message(user=uk_officer, room_id=room.pk, seq=sent.seq, body=f"Corrected {edited}")
    connections.close_all()  # flush everything to the file

    raw = raw_database_text()
    assert raw, "the raw database content could not be read"
    for secret in (marker, edited):
        assert secret.encode() not in raw
        assert secret.encode().hex().encode() not in raw
    # ...and yet the text is all there for those who may read it.
    page = selectors.messages_after(user=gz_officer, room_id=room.pk, after_seq=0)
    assert [m["body"] for m in page.messages] == [f"Corrected {edited}", f"Re: {marker}"]


@pytest.mark.django_db(transaction=True)
def test_a_hundred_concurrent_senders_get_seqs_one_to_n_without_gap_or_duplicate(
    exercise: Exercise, room: Room, hmrc
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks under concurrency need PostgreSQL; SQLite serializes all writers")
    senders = User.objects.bulk_create(
        User(email=f"sender{i}@hmrc.example", display_name=f"Sender {i}", agency=hmrc)
        for i in range(100)
    )
    Membership.objects.bulk_create(
        Membership(exercise=exercise, user=user, role=GroupRole.MEMBER) for user in senders
    )
    start = threading.Barrier(20)
    # Every fifth sender also sends a duplicate of its own client_id (task 100 + index); the
    # first twenty tasks (ten senders and their duplicates) leave the barrier together.
    racing = list(range(0, 100, 5))
    order = [
        *(task for index in racing[:10] for task in (index, 100 + index)),
        *(index for index in range(100) if index not in racing[:10]),
        *(100 + index for index in racing[10:]),
    ]

    def one(position: int) -> int:
        try:
            if position < 20:
                start.wait(timeout=30)
            index = order[position] % 100
            return send_message(
                sender=senders[index], room_id=room.pk, client_id=f"cid-{index}", body="n"
            ).seq
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = dict(zip(order, pool.map(one, range(len(order))), strict=True))
    seqs = [results[index] for index in range(100)]

    stored = list(Message.objects.filter(room=room).order_by("seq").values_list("seq", flat=True))
    assert stored == list(range(1, 101))
    assert sorted(seqs) == list(range(1, 101))
    assert all(results[100 + index] == results[index] for index in racing)  # the original seq
    room.refresh_from_db()
    assert room.last_seq == 100
    # One message per sender: the duplicates returned the original and appended nothing.
    assert sorted(Message.objects.filter(room=room).values_list("client_id", flat=True)) == sorted(
        f"cid-{index}" for index in range(100)
    )
    assert not AuditEvent.objects.filter(target_type="message").exists()
    previous = audit.GENESIS_HASH
    for message in Message.objects.filter(room=room).order_by("seq"):
        assert message.prev_hash == previous
        previous = message.chain_hash
    assert room.chain_head == previous


# --- editing and deleting ---------------------------------------------------------------------


def test_the_author_edits_and_the_original_stays_for_auditors(
    uk_officer: User,
    auditor: User,
    room: Room,
    django_capture_on_commit_callbacks,
    captured_events: CapturedEvents,
) -> None:
    sent = send(uk_officer, room, body="Weight 24.1 t")
    original = bytes(Message.objects.get(pk=sent.message.pk).ciphertext)
    with django_capture_on_commit_callbacks(execute=True):
        edit_message(user=uk_officer, room_id=room.pk, seq=1, body="Weight 21.4 t")

    message = Message.objects.get(pk=sent.message.pk)
    assert bytes(message.ciphertext) == original
    assert message.edited_at is not None
    (revision,) = MessageRevision.objects.filter(message=message)
    assert revision.number == 1
    assert b"21.4" not in bytes(revision.ciphertext)
    (row,) = audit_rows("message.edited")
    assert (row.target_type, row.target_id) == ("message", str(message.pk))
    assert row.details == {"room": room.pk, "seq": 1, "revision": 1}
    (event,) = captured_events.to_group(events.room_group(room.pk))
    assert event["type"] == events.ROOM_MESSAGE_UPDATED
    assert events.frame_of(event)["message"]["body"] == "Weight 21.4 t"
    assert events.frame_of(event)["message"]["edited_at"] is not None

    assert message_payload(message)["body"] == "Weight 21.4 t"
    for_auditor = message_payload(message, for_auditor=True)
    assert [r["body"] for r in for_auditor["revisions"]] == ["Weight 24.1 t", "Weight 21.4 t"]
    page = selectors.messages_after(user=auditor, room_id=room.pk, after_seq=0)
    assert page.messages[0]["revisions"][0]["body"] == "Weight 24.1 t"


def test_only_the_author_edits(uk_officer: User, gz_officer: User, room: Room) -> None:
    send(uk_officer, room, body="mine")
    with pytest.raises(PermissionDenied, match="author"):
        edit_message(user=gz_officer, room_id=room.pk, seq=1, body="yours now")
    with pytest.raises(NotFound):
        edit_message(user=uk_officer, room_id=room.pk, seq=7, body="nothing there")
    assert not MessageRevision.objects.exists()
    assert not audit_rows("message.edited")


def test_an_edit_follows_the_body_rules(uk_officer: User, room: Room) -> None:
    send(uk_officer, room, body="mine")
    with pytest.raises(Invalid):
        edit_message(user=uk_officer, room_id=room.pk, seq=1, body="  ")
    with pytest.raises(TooLarge):
        edit_message(user=uk_officer, room_id=room.pk, seq=1, body="x" * 8001)


def test_a_deleted_message_is_hidden_from_members_and_kept_for_auditors(
    uk_officer: User,
    gz_officer: User,
    auditor: User,
    room: Room,
    django_capture_on_commit_callbacks,
    captured_events: CapturedEvents,
) -> None:
    send(uk_officer, room, body="Wrong container number")
    with django_capture_on_commit_callbacks(execute=True):
        delete_message(user=uk_officer, room_id=room.pk, seq=1)
        delete_message(user=uk_officer, room_id=room.pk, seq=1)  # twice changes nothing

    message = Message.objects.get(room=room, seq=1)
    assert message.deleted_at is not None
    assert message.deleted_by_id == uk_officer.pk
    (row,) = audit_rows("message.deleted")
    assert row.details == {"room": room.pk, "seq": 1, "by_author": True}
    (event,) = captured_events.to_group(events.room_group(room.pk))
    assert event["type"] == events.ROOM_MESSAGE_UPDATED
    assert events.frame_of(event)["message"]["deleted"] is True
    assert events.frame_of(event)["message"]["body"] is None

    member_view = selectors.messages_before(user=gz_officer, room_id=room.pk).messages[0]
    assert (member_view["deleted"], member_view["body"]) == (True, None)
    auditor_view = selectors.messages_before(user=auditor, room_id=room.pk).messages[0]
    assert auditor_view["body"] == "Wrong container number"
    assert auditor_view["deleted_by"] == uk_officer.pk
    with pytest.raises(Invalid, match="deleted"):
        edit_message(user=uk_officer, room_id=room.pk, seq=1, body="resurrect")


def test_a_coordinator_deletes_anothers_message_but_a_member_does_not(
    uk_officer: User, uk_coordinator: User, gz_officer: User, room: Room
) -> None:
    send(gz_officer, room, body="off-topic")
    with pytest.raises(PermissionDenied):
        delete_message(user=uk_officer, room_id=room.pk, seq=1)
    delete_message(user=uk_coordinator, room_id=room.pk, seq=1)
    (row,) = audit_rows("message.deleted")
    assert row.actor_id == uk_coordinator.pk
    assert row.details["by_author"] is False


# --- what readers see ----------------------------------------------------------------------------


def test_a_shredded_room_shows_the_retention_notice(uk_officer: User, room: Room) -> None:
    sent = send(uk_officer, room, body="to be destroyed")
    crypto.destroy_room_keys([room.pk])
    payload = message_payload(Message.objects.get(pk=sent.message.pk))
    assert payload["shredded"] is True
    assert payload["body"] == crypto.ContentShredded.user_text


def test_a_tampered_row_shows_an_error_marker_not_garbage(uk_officer: User, room: Room) -> None:
    sent = send(uk_officer, room, body="original")
    ciphertext = bytearray(bytes(sent.message.ciphertext))
    ciphertext[0] ^= 0x01
    Message.objects.filter(pk=sent.message.pk).update(ciphertext=bytes(ciphertext))
    payload = message_payload(Message.objects.get(pk=sent.message.pk))
    assert payload["body"] is None
    assert payload["error"] == "integrity"
    # A row moved to another sender fails the same way.
    other = send(uk_officer, room, body="second")
    Message.objects.filter(pk=other.message.pk).update(nonce=bytes(sent.message.nonce))
    assert message_payload(Message.objects.get(pk=other.message.pk))["error"] == "integrity"


def test_sync_pages_return_everything_after_a_seq_in_order(
    uk_officer: User, gz_officer: User, room: Room, settings
) -> None:
    settings.LIAISON_SYNC_PAGE_SIZE = 4
    for index in range(10):
        send(uk_officer, room, body=f"m{index + 1}")
    first = selectors.messages_after(user=gz_officer, room_id=room.pk, after_seq=3)
    assert [m["seq"] for m in first.messages] == [4, 5, 6, 7]
    assert first.has_more is True
    last = selectors.messages_after(user=gz_officer, room_id=room.pk, after_seq=8)
    assert [m["body"] for m in last.messages] == ["m9", "m10"]
    assert (last.has_more, last.last_seq) == (False, 10)


def test_history_returns_the_newest_messages_below_a_seq(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    for index in range(10):
        send(uk_officer, room, body=f"m{index + 1}")
    newest = selectors.messages_before(user=gz_officer, room_id=room.pk, limit=3)
    assert [m["seq"] for m in newest.messages] == [8, 9, 10]
    older = selectors.messages_before(user=gz_officer, room_id=room.pk, before_seq=3, limit=5)
    assert [m["seq"] for m in older.messages] == [1, 2]
    assert older.has_more is False
    with pytest.raises(Invalid, match="limit"):
        selectors.messages_before(user=gz_officer, room_id=room.pk, limit=101)


def test_an_outsider_reads_nothing(outsider: User, uk_officer: User, room: Room) -> None:
    send(uk_officer, room)
    with pytest.raises(AccessDenied):
        selectors.messages_after(user=outsider, room_id=room.pk, after_seq=0)
    with pytest.raises(AccessDenied):
        selectors.messages_before(user=outsider, room_id=room.pk)


def test_unread_counts_follow_the_read_marker(
    uk_officer: User,
    gz_officer: User,
    room: Room,
    lane_room: Room,
    django_capture_on_commit_callbacks,
    captured_events: CapturedEvents,
) -> None:
    for index in range(3):
        send(gz_officer, room, body=f"gz {index}")
    send(uk_officer, room, body="my own message does not count")
    send(gz_officer, lane_room, body="lane")
    send(gz_officer, room, body="deleted ones do not count")
    delete_message(user=gz_officer, room_id=room.pk, seq=5)
    assert selectors.unread_counts(user=uk_officer) == {room.pk: 3, lane_room.pk: 1}

    with django_capture_on_commit_callbacks(execute=True):
        assert mark_read(user=uk_officer, room_id=room.pk, seq=2) == 2
        assert mark_read(user=uk_officer, room_id=room.pk, seq=1) == 2  # never backwards
        assert mark_read(user=uk_officer, room_id=lane_room.pk, seq=99) == 1  # clamped
    assert selectors.unread_counts(user=uk_officer) == {room.pk: 1, lane_room.pk: 0}
    assert ReadMarker.objects.get(user=uk_officer, room=room).last_read_seq == 2
    reads = captured_events.to_group(events.room_group(room.pk))
    assert [
        (e["type"], events.frame_of(e)["user"]["id"], events.frame_of(e)["seq"]) for e in reads
    ] == [(events.ROOM_READ, uk_officer.pk, 2)]


def test_an_auditor_reads_silently(
    auditor: User, room: Room, uk_officer: User, django_capture_on_commit_callbacks, captured_events
) -> None:
    send(uk_officer, room)
    with django_capture_on_commit_callbacks(execute=True):
        assert mark_read(user=auditor, room_id=room.pk, seq=1) == 1
    assert captured_events.sent == []
    assert selectors.unread_counts(user=auditor) == {}


# --- HTTP API ----------------------------------------------------------------------------------


def api_post(client: Client, path: str, data: object):
    return client.post(path, data=json.dumps(data), content_type="application/json")


def test_posting_over_http_uses_the_same_idempotency(
    client: Client, login_as, uk_officer: User, room: Room
) -> None:
    login_as(client, uk_officer)
    url = f"/api/v1/rooms/{room.pk}/messages"
    first = api_post(client, url, {"client_id": "http-1", "body": "Sent over HTTP"})
    assert first.status_code == 201
    assert first.json()["message"]["seq"] == 1
    assert first.json()["message"]["body"] == "Sent over HTTP"
    again = api_post(client, url, {"client_id": "http-1", "body": "Sent over HTTP"})
    assert again.status_code == 200
    assert again.json()["message"]["seq"] == 1
    assert Message.objects.count() == 1
    assert Message.objects.get().client_id == "http-1"
    assert Room.objects.get(pk=room.pk).last_seq == 1
    assert not AuditEvent.objects.filter(target_type="message").exists()


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ({"body": "no id"}, 400, "invalid"),
        ({"client_id": "a"}, 400, "invalid"),
        ({"client_id": "a", "body": "x" * 8001}, 413, "too_large"),
        ({"client_id": "a", "body": "hi", "colour": "red"}, 400, "invalid"),
        ({"client_id": "a", "body": "hi", "kind": "system"}, 400, "invalid"),
        ({"client_id": "a", "body": "hi", "attachments": "7"}, 400, "invalid"),
        (["not", "an", "object"], 400, "invalid"),
    ],
)
def test_a_bad_http_post_says_what_is_wrong(
    client: Client, login_as, uk_officer: User, room: Room, data, status, code
) -> None:
    login_as(client, uk_officer)
    response = api_post(client, f"/api/v1/rooms/{room.pk}/messages", data)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Message.objects.exists()


def test_http_refusals_use_the_documented_codes(
    client: Client, login_as, gz_observer: User, outsider: User, room: Room
) -> None:
    url = f"/api/v1/rooms/{room.pk}/messages"
    assert api_post(client, url, {"client_id": "a", "body": "hi"}).status_code == 401
    login_as(client, gz_observer)
    response = api_post(client, url, {"client_id": "a", "body": "hi"})
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
    login_as(client, outsider)
    response = client.get(url)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert AuditEvent.objects.filter(action="access.denied").count() == 2


def test_listing_over_http_pages_by_seq(
    client: Client, login_as, uk_officer: User, gz_officer: User, room: Room
) -> None:
    for index in range(6):
        send(uk_officer, room, body=f"m{index + 1}")
    login_as(client, gz_officer)
    url = f"/api/v1/rooms/{room.pk}/messages"
    newest = client.get(url, {"limit": 2}).json()
    assert [m["seq"] for m in newest["messages"]] == [5, 6]
    assert (newest["has_more"], newest["last_seq"]) == (True, 6)
    older = client.get(url, {"before": 5, "limit": 10}).json()
    assert [m["seq"] for m in older["messages"]] == [1, 2, 3, 4]
    after = client.get(url, {"after": 4}).json()
    assert [m["body"] for m in after["messages"]] == ["m5", "m6"]
    for bad in (
        {"before": "x"},
        {"after": -1},
        {"limit": 0},
        {"limit": 101},
        {"before": 2, "after": 1},
    ):
        response = client.get(url, bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "invalid"


def test_unread_over_http(
    client: Client, login_as, uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(gz_officer, room, body="one")
    send(gz_officer, room, body="two")
    login_as(client, uk_officer)
    assert client.get("/api/v1/unread").json() == {"rooms": {str(room.pk): 2}}
    response = api_post(client, f"/api/v1/rooms/{room.pk}/read", {"seq": 1})
    assert response.json() == {"room": room.pk, "seq": 1}
    assert client.get("/api/v1/unread").json() == {"rooms": {str(room.pk): 1}}


# --- the demo conversation ------------------------------------------------------------------------


def test_the_demo_conversation_fills_the_empty_demo_rooms_once(admin: User) -> None:
    from liaison.services import demo

    agencies = demo.ensure_agencies()
    users = demo.ensure_users(agencies)
    demo.ensure_demo_conversation(users)  # no demo exercise yet: nothing happens
    assert not Message.objects.exists()

    exercise = Exercise.objects.filter(code="CFE-DEMO-WASTE").first()
    if exercise is None:
        from tests.factories import ExerciseFactory

        exercise = ExerciseFactory(code="CFE-DEMO-WASTE", created_by=admin)
    for name in ("general", "felixstowe-nansha"):
        RoomFactory(exercise=exercise, name=name)
    for user in users.values():
        if user.role == Role.OFFICER and "outsider" not in user.email:
            MembershipFactory(exercise=exercise, user=user)

    demo.ensure_demo_conversation(users)
    count = Message.objects.filter(room__exercise=exercise).count()
    assert count >= 6
    bodies = [
        m["body"]
        for room in Room.objects.filter(exercise=exercise)
        for m in selectors.messages_before(
            user=users["olivia.hughes@hmrc.example"], room_id=room.pk
        ).messages
    ]
    assert any("Nansha" in body for body in bodies)
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in body) for body in bodies)
    demo.ensure_demo_conversation(users)
    assert Message.objects.filter(room__exercise=exercise).count() == count


def test_an_http_body_with_a_4300_digit_integer_is_refused_as_invalid_json(
    client: Client, login_as, uk_officer: User, room: Room
) -> None:
    login_as(client, uk_officer)
    body = '{"client_id": "huge", "body": "x", "reply_to": ' + "9" * 5000 + "}"
    response = client.post(
        f"/api/v1/rooms/{room.pk}/messages", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert Message.objects.count() == 0
