"""Encryption at rest: records and files are sealed to their place, keys rotate, content shreds.

Every test runs against its own temporary keyring (``LIAISON_KEYRING``), never the development
keyring file.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liaison import crypto
from liaison.crypto import keyring as keyring_module
from liaison.crypto import records, roomkeys
from liaison.crypto.aead import associated_data
from liaison.crypto.keyring import LocalKeyring, add_key_json, new_keyring_json, remove_key_json
from liaison.crypto.streaming import HEADER_BYTES, TAG_BYTES
from liaison.errors import Conflict
from liaison.models import AuditEvent, Exercise, ExerciseStatus, Room, RoomKey, User
from liaison.services import keys as key_service
from tests.factories import RoomFactory

BODY = (
    "Container MSKU 123456-7: 18 t of mixed plastic waste declared as 3915.90, due Nansha Friday."
)


@contextmanager
def use_keyring(text: str) -> Iterator[None]:
    """Run with ``text`` as the keyring (the variable form), forgetting cached keys both ways."""
    with override_settings(LIAISON_KEYRING_JSON=text):
        crypto.reset_keyring_cache()
        yield
    crypto.reset_keyring_cache()


@pytest.fixture(autouse=True)
def temporary_keyring() -> Iterator[str]:
    text = new_keyring_json("test-1")
    with use_keyring(text):
        yield text


def seal_message(room: Room, *, seq: int, sender: User, body: str = BODY) -> SimpleNamespace:
    """A stored message as the messaging service would keep it (only what decryption reads)."""
    sealed = records.seal_message_body(room_id=room.pk, seq=seq, sender_id=sender.pk, body=body)
    return SimpleNamespace(
        room_id=room.pk,
        seq=seq,
        sender_id=sender.pk,
        key_version=sealed.key_version,
        nonce=sealed.nonce,
        ciphertext=sealed.ciphertext,
    )


def flip(data: bytes, index: int) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


def seal_file(
    key: bytes, data: bytes, *, context: bytes = b"ctx", chunk_size: int = 16, pieces: int = 7
) -> bytes:
    out = io.BytesIO()
    source = (data[i : i + pieces] for i in range(0, len(data), pieces))
    crypto.encrypt_stream(key, source, out.write, context=context, chunk_size=chunk_size)
    return out.getvalue()


def open_file(key: bytes, blob: bytes, *, context: bytes = b"ctx") -> bytes:
    return b"".join(crypto.decrypt_stream(key, io.BytesIO(blob), context=context))


def split_chunks(blob: bytes, chunk_size: int) -> tuple[bytes, list[bytes]]:
    sealed = chunk_size + TAG_BYTES
    body = blob[HEADER_BYTES:]
    return blob[:HEADER_BYTES], [body[i : i + sealed] for i in range(0, len(body), sealed)]


def close(exercise: Exercise, status: str = ExerciseStatus.CLOSED) -> None:
    exercise.status = status
    exercise.closed_at = timezone.now()
    exercise.save(update_fields=["status", "closed_at"])


# --- records: round trips -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_message_body_round_trips(room: Room, uk_officer: User) -> None:
    stored = seal_message(room, seq=1, sender=uk_officer)
    assert records.open_message_body(stored) == BODY


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["", "x", "海关 走私 固体废物 🚢", "a" * 8000])
def test_empty_unicode_and_long_bodies_round_trip(room: Room, uk_officer: User, body: str) -> None:
    stored = seal_message(room, seq=1, sender=uk_officer, body=body)
    assert records.open_message_body(stored) == body


@pytest.mark.django_db
def test_a_revision_round_trips_and_is_bound_to_its_number(room: Room, uk_officer: User) -> None:
    message = SimpleNamespace(room_id=room.pk, seq=4, sender_id=uk_officer.pk)
    sealed = records.seal_revision(
        room_id=room.pk, seq=4, sender_id=uk_officer.pk, number=2, body="corrected: 19 t"
    )
    revision = SimpleNamespace(
        number=2, key_version=sealed.key_version, nonce=sealed.nonce, ciphertext=sealed.ciphertext
    )
    assert records.open_revision(revision, message) == "corrected: 19 t"
    revision.number = 3
    with pytest.raises(crypto.TamperedError):
        records.open_revision(revision, message)


@pytest.mark.django_db
def test_an_attachment_name_round_trips_and_is_bound_to_its_blob(room: Room) -> None:
    version, _ = crypto.active_key(room)
    sealed = records.seal_attachment_name(
        room_id=room.pk, key_version=version, storage_name="a1b2", name="manifest 舱单.xlsx"
    )
    attachment = SimpleNamespace(
        room_id=room.pk,
        key_version=sealed.key_version,
        storage_name="a1b2",
        name_nonce=sealed.nonce,
        name_ciphertext=sealed.ciphertext,
    )
    assert records.open_attachment_name(attachment) == "manifest 舱单.xlsx"
    attachment.storage_name = "c3d4"
    with pytest.raises(crypto.TamperedError):
        records.open_attachment_name(attachment)


@pytest.mark.django_db
def test_each_seal_uses_a_fresh_nonce_and_hides_the_text(room: Room, uk_officer: User) -> None:
    first = seal_message(room, seq=1, sender=uk_officer)
    second = seal_message(room, seq=1, sender=uk_officer)
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext
    assert BODY.encode() not in first.ciphertext
    assert b"MSKU" not in first.ciphertext


@pytest.mark.django_db
def test_data_keys_are_stored_only_wrapped(room: Room) -> None:
    version, dek = crypto.active_key(room)
    row = RoomKey.objects.get(room=room, version=version)
    assert row.kek_id == "test-1"
    assert dek not in bytes(row.wrapped_key)
    assert len(bytes(row.wrapped_key)) == 12 + 32 + 16  # nonce, wrapped key, tag


# --- records: tampering and moving ----------------------------------------------------------


@pytest.mark.django_db
def test_flipping_any_byte_of_the_nonce_fails(room: Room, uk_officer: User) -> None:
    stored = seal_message(room, seq=1, sender=uk_officer)
    for index in range(len(stored.nonce)):
        tampered = SimpleNamespace(**{**vars(stored), "nonce": flip(stored.nonce, index)})
        with pytest.raises(crypto.TamperedError):
            records.open_message_body(tampered)


@pytest.mark.django_db
def test_flipping_any_byte_of_the_ciphertext_fails(room: Room, uk_officer: User) -> None:
    stored = seal_message(room, seq=1, sender=uk_officer, body="short body")
    for index in range(len(stored.ciphertext)):
        tampered = SimpleNamespace(**{**vars(stored), "ciphertext": flip(stored.ciphertext, index)})
        with pytest.raises(crypto.TamperedError):
            records.open_message_body(tampered)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"ciphertext": b""},
        {"ciphertext": b"\x00" * 15},
        {"nonce": b""},
        {"nonce": b"\x00" * 16},
    ],
    ids=["empty-ciphertext", "shorter-than-a-tag", "empty-nonce", "long-nonce"],
)
def test_truncated_or_resized_fields_fail(room: Room, uk_officer: User, change: dict) -> None:
    stored = seal_message(room, seq=1, sender=uk_officer)
    with pytest.raises(crypto.TamperedError):
        records.open_message_body(SimpleNamespace(**{**vars(stored), **change}))


@pytest.mark.django_db
def test_flipping_any_byte_of_the_associated_data_fails(room: Room, uk_officer: User) -> None:
    """The bound context (room, kind, identity, key version) is authenticated byte for byte."""
    identity = records.message_identity(1, uk_officer.pk)
    sealed = crypto.encrypt(room, b"intel", kind=records.MESSAGE, identity=identity)
    aad = associated_data(room.pk, sealed.key_version, records.MESSAGE, identity)
    aead = AESGCM(roomkeys.data_key(room.pk, sealed.key_version))
    assert aead.decrypt(sealed.nonce, sealed.ciphertext, aad) == b"intel"
    for index in range(len(aad)):
        with pytest.raises(InvalidTag):
            aead.decrypt(sealed.nonce, sealed.ciphertext, flip(aad, index))


OTHER_PLACES = {
    "another kind": lambda uk, gz: (records.MESSAGE_REVISION, {"seq": 1, "sender": uk}),
    "another seq": lambda uk, gz: (records.MESSAGE, {"seq": 2, "sender": uk}),
    "another sender": lambda uk, gz: (records.MESSAGE, {"seq": 1, "sender": gz}),
    "a field less": lambda uk, gz: (records.MESSAGE, {"seq": 1}),
    "a field more": lambda uk, gz: (records.MESSAGE, {"seq": 1, "sender": uk, "revision": 1}),
}


@pytest.mark.django_db
@pytest.mark.parametrize("place", OTHER_PLACES)
def test_a_record_opened_as_another_record_fails(
    room: Room, uk_officer: User, gz_officer: User, place: str
) -> None:
    identity = records.message_identity(1, uk_officer.pk)
    sealed = crypto.encrypt(room, b"intel", kind=records.MESSAGE, identity=identity)
    kind, other_identity = OTHER_PLACES[place](uk_officer.pk, gz_officer.pk)
    with pytest.raises(crypto.TamperedError):
        crypto.decrypt(
            room,
            key_version=sealed.key_version,
            nonce=sealed.nonce,
            ciphertext=sealed.ciphertext,
            kind=kind,
            identity=other_identity,
        )


@pytest.mark.django_db
def test_a_message_moved_to_another_room_fails(
    room: Room, lane_room: Room, uk_officer: User
) -> None:
    stored = seal_message(room, seq=1, sender=uk_officer)
    crypto.active_key(lane_room)  # the other room has a key of the same version
    with pytest.raises(crypto.TamperedError):
        records.open_message_body(SimpleNamespace(**{**vars(stored), "room_id": lane_room.pk}))


@pytest.mark.django_db
def test_a_message_moved_to_another_seq_or_sender_fails(
    room: Room, uk_officer: User, gz_officer: User
) -> None:
    stored = seal_message(room, seq=5, sender=uk_officer)
    for change in ({"seq": 6}, {"sender_id": gz_officer.pk}):
        with pytest.raises(crypto.TamperedError):
            records.open_message_body(SimpleNamespace(**{**vars(stored), **change}))


@pytest.mark.django_db
def test_an_altered_key_version_fails(room: Room, uk_officer: User) -> None:
    stored = seal_message(room, seq=1, sender=uk_officer)
    crypto.rotate_room_key(room)
    for version in (2, 99):
        with pytest.raises(crypto.TamperedError):
            records.open_message_body(SimpleNamespace(**{**vars(stored), "key_version": version}))


@pytest.mark.django_db
def test_a_wrapped_key_copied_to_another_room_fails_to_unwrap(room: Room, lane_room: Room) -> None:
    crypto.active_key(room)
    crypto.active_key(lane_room)
    stolen = RoomKey.objects.get(room=room, version=1).wrapped_key
    RoomKey.objects.filter(room=lane_room, version=1).update(wrapped_key=stolen)
    roomkeys.clear_cache()
    with pytest.raises(crypto.TamperedError, match="failed to authenticate"):
        crypto.data_key(lane_room.pk, 1)


# --- records: room key rotation -------------------------------------------------------------


@pytest.mark.django_db
def test_room_rotation_seals_new_content_with_a_new_version_and_old_content_stays_readable(
    room: Room, uk_officer: User
) -> None:
    old = seal_message(room, seq=1, sender=uk_officer, body="before")
    key = crypto.rotate_room_key(room)
    new = seal_message(room, seq=2, sender=uk_officer, body="after")
    assert (old.key_version, key.version, new.key_version) == (1, 2, 2)
    roomkeys.clear_cache()
    assert records.open_message_body(old) == "before"
    assert records.open_message_body(new) == "after"
    assert crypto.data_key(room.pk, 1) != crypto.data_key(room.pk, 2)


@pytest.mark.django_db
def test_room_rotation_is_a_service_action_with_an_audit_row(room: Room, admin: User) -> None:
    crypto.active_key(room)
    key = key_service.rotate_room(actor=admin, room=room)
    assert key.version == 2
    event = AuditEvent.objects.get(action="keys.room_rotated")
    assert (event.actor, event.target_type, event.target_id) == (admin, "room", str(room.pk))
    assert event.exercise_id == room.exercise_id
    assert event.details == {"version": 2, "kek_id": "test-1"}


# --- a key cached only once it is committed -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_key_created_in_a_rolled_back_transaction_is_never_used(
    room: Room, uk_officer: User
) -> None:
    def send_that_fails() -> None:
        with transaction.atomic():
            crypto.active_key(room)
            raise RuntimeError("the send failed after the key was created")

    with pytest.raises(RuntimeError):
        send_that_fails()
    assert not RoomKey.objects.filter(room=room).exists()
    # Another worker creates the room's first key meanwhile.
    dek = os.urandom(32)
    kek_id, wrapped = crypto.get_keyring().wrap(dek, roomkeys.wrap_context(room.pk, 1))
    RoomKey.objects.create(room=room, version=1, kek_id=kek_id, wrapped_key=wrapped)

    stored = seal_message(room, seq=1, sender=uk_officer)
    roomkeys.clear_cache()
    assert records.open_message_body(stored) == BODY


# --- keyring ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON"),
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"active": "a"}', "must be a JSON object"),
        ('{"active": "a", "keys": {}}', "holds no keys"),
        ('{"active": "a", "keys": {"a": "***"}}', "'a' is not valid base64"),
        ('{"active": "a", "keys": {"a": 42}}', "'a' must be a base64 string"),
        ('{"active": "a", "keys": {"a": "AAAA"}}', "must decode to 32 bytes, not 3"),
        ('{"active": "b", "keys": {"a": "KEY"}}', "active key 'b' is not among its keys (a)"),
        ('{"active": ["a"], "keys": {"a": "KEY"}}', "active key ['a'] is not among"),
        ('{"keys": {"a": "KEY"}}', "active key None is not among"),
        ('{"active": "a b", "keys": {"a b": "KEY"}}', "key id 'a b' must be"),
        ('{"active": "", "keys": {"": "KEY"}}', "key id '' must be"),
    ],
)
def test_a_malformed_keyring_is_a_clear_keyring_error(text: str, message: str) -> None:
    text = text.replace("KEY", base64.b64encode(b"k" * 32).decode())
    with pytest.raises(crypto.KeyringError) as caught:
        LocalKeyring.from_json(text, source="LIAISON_KEYRING")
    assert message in str(caught.value)
    assert str(caught.value).startswith("LIAISON_KEYRING")


def test_a_malformed_configured_keyring_fails_on_use() -> None:
    with use_keyring('{"active": "a", "keys": {"a": "short"}}'), pytest.raises(crypto.KeyringError):
        crypto.get_keyring()


def test_a_missing_keyring_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "keyring.json"
    with override_settings(
        LIAISON_KEYRING_JSON="", LIAISON_KEYRING_FILE=str(missing), LIAISON_KEYRING_AUTOCREATE=False
    ):
        crypto.reset_keyring_cache()
        with pytest.raises(crypto.KeyringError, match=f"Keyring file {missing} does not exist"):
            crypto.get_keyring()
    assert not missing.exists()


def test_no_keyring_at_all_is_a_clear_error() -> None:
    with override_settings(LIAISON_KEYRING_JSON="", LIAISON_KEYRING_FILE=""):
        crypto.reset_keyring_cache()
        with pytest.raises(crypto.KeyringError, match="No keyring configured"):
            crypto.get_keyring()


def test_the_development_keyring_is_created_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "keyring.json"
    with override_settings(
        LIAISON_KEYRING_JSON="", LIAISON_KEYRING_FILE=str(path), LIAISON_KEYRING_AUTOCREATE=True
    ):
        crypto.reset_keyring_cache()
        first = crypto.get_keyring()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        crypto.reset_keyring_cache()
        assert crypto.load_keyring().keys == first.keys
    assert [p.name for p in path.parent.iterdir()] == ["keyring.json"]  # no temporary files left


def test_a_changed_keyring_file_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(new_keyring_json("old"))
    with override_settings(LIAISON_KEYRING_JSON="", LIAISON_KEYRING_FILE=str(path)):
        crypto.reset_keyring_cache()
        assert crypto.get_keyring().active_id == "old"
        text, _ = add_key_json(path.read_text(), "new")
        keyring_module.write_private(path, text)
        assert crypto.get_keyring().active_id == "new"
        assert crypto.get_keyring().kek_ids == ["new", "old"]


def test_the_keyring_never_shows_its_keys_in_a_repr() -> None:
    ring = crypto.load_keyring()
    assert "test-1" in repr(ring)
    for key in ring.keys.values():
        assert base64.b64encode(key).decode() not in repr(ring)
        assert repr(key) not in repr(ring)


def test_the_active_key_cannot_be_removed_from_a_keyring(temporary_keyring: str) -> None:
    with pytest.raises(crypto.KeyringError, match="'test-1' is the active key"):
        remove_key_json(temporary_keyring, "test-1")
    with pytest.raises(crypto.UnknownKeyError, match="holds no key 'nope'"):
        remove_key_json(temporary_keyring, "nope")


@pytest.mark.django_db
def test_a_data_key_under_an_unknown_kek_is_a_clear_error(room: Room) -> None:
    crypto.active_key(room)
    with use_keyring(new_keyring_json("other")):
        with pytest.raises(crypto.UnknownKeyError) as caught:
            crypto.data_key(room.pk, 1)
        assert "no key-encryption key 'test-1'" in str(caught.value)
        assert "(it holds other)" in str(caught.value)


# --- KEK rotation ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_kek_rotation_keeps_all_content_readable_and_the_old_kek_can_then_be_removed(
    room: Room, lane_room: Room, uk_officer: User, gz_officer: User, temporary_keyring: str
) -> None:
    messages = [
        seal_message(room, seq=1, sender=uk_officer, body="one"),
        seal_message(lane_room, seq=1, sender=gz_officer, body="two"),
    ]
    crypto.rotate_room_key(room)
    messages.append(seal_message(room, seq=2, sender=gz_officer, body="three"))
    version, key = crypto.active_key(lane_room)
    context = records.stream_context(
        records.ATTACHMENT_BLOB, room_id=lane_room.pk, key_version=version, storage_name="f1"
    )
    blob = seal_file(key, b"declaration,weight\n" * 500, context=context, chunk_size=1024)

    with_new, new_id = add_key_json(temporary_keyring, "test-2")
    with use_keyring(with_new):
        result = key_service.rotate_kek(actor=None, actor_label="operator")
    assert (result.active_kek, result.rewrapped, result.already_current) == ("test-2", 3, 0)
    assert result.previous_keks == {"test-1": 3}
    assert set(RoomKey.objects.values_list("kek_id", flat=True)) == {new_id}
    event = AuditEvent.objects.get(action="keys.kek_rotated")
    assert event.actor_label == "operator"
    assert event.details["rewrapped"] == 3
    assert event.details["previous_keks"] == {"test-1": 3}

    with use_keyring(remove_key_json(with_new, "test-1")):
        assert crypto.get_keyring().kek_ids == ["test-2"]
        assert [records.open_message_body(m) for m in messages] == ["one", "two", "three"]
        key_after = crypto.data_key(lane_room.pk, version)
        assert open_file(key_after, blob, context=context) == b"declaration,weight\n" * 500
        assert key_after == key  # the data keys themselves never change
        # A second rotation finds nothing to do.
        again = key_service.rotate_kek(actor=None)
    assert (again.rewrapped, again.already_current) == (0, 3)


@pytest.mark.django_db
def test_kek_rotation_stops_without_changes_when_a_key_cannot_be_unwrapped(
    room: Room, lane_room: Room
) -> None:
    crypto.active_key(room)
    with use_keyring(new_keyring_json("lost")):
        crypto.active_key(lane_room)
    before = list(RoomKey.objects.order_by("pk").values_list("kek_id", "wrapped_key"))
    with pytest.raises(Conflict, match=r"key version 1: .*no key-encryption key 'lost'"):
        key_service.rotate_kek(actor=None)
    after = list(RoomKey.objects.order_by("pk").values_list("kek_id", "wrapped_key"))
    assert [(k, bytes(w)) for k, w in after] == [(k, bytes(w)) for k, w in before]
    assert not AuditEvent.objects.filter(action="keys.kek_rotated").exists()


# --- crypto-shredding -----------------------------------------------------------------------


@pytest.mark.django_db
def test_shredding_makes_the_content_of_every_room_unreadable(
    exercise: Exercise,
    room: Room,
    lane_room: Room,
    uk_officer: User,
    admin: User,
    captured_events: object,
) -> None:
    stored = [
        seal_message(room, seq=1, sender=uk_officer),
        seal_message(lane_room, seq=1, sender=uk_officer),
    ]
    version, key = crypto.active_key(room)
    context = records.stream_context(
        records.ATTACHMENT_BLOB, room_id=room.pk, key_version=version, storage_name="f1"
    )
    blob = seal_file(key, b"x" * 100, context=context)
    crypto.rotate_room_key(room)
    empty_room = RoomFactory(exercise=exercise, name="unused", title="Unused")
    close(exercise)

    result = key_service.shred_exercise(
        actor=admin, exercise=exercise, waive_export="no export is needed in this test"
    )

    assert result.keys_destroyed == 3
    assert result.wrapped_by == ["test-1"]
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.SHREDDED
    assert exercise.shredded_at is not None
    assert not RoomKey.objects.filter(wrapped_key__isnull=False).exists()
    for message in stored:
        with pytest.raises(crypto.ContentShredded) as caught:
            records.open_message_body(message)
        assert caught.value.user_text == "Content destroyed by retention policy."
    with pytest.raises(crypto.ContentShredded):
        crypto.data_key(room.pk, version)
    assert blob  # the ciphertext is still there, but nothing can open it any more
    for shredded_room in (room, empty_room):
        with pytest.raises(crypto.ContentShredded):
            crypto.encrypt(shredded_room, b"new", kind=records.MESSAGE, identity={"seq": 9})
    event = AuditEvent.objects.get(action="keys.shredded")
    assert (event.actor, event.target_type, event.target_id) == (
        admin,
        "exercise",
        str(exercise.pk),
    )
    assert event.details == {
        "rooms": 3,
        "keys_destroyed": 3,
        "wrapped_by": ["test-1"],
        "export_manifest_sha256": None,
        "export_waived": True,
    }
    assert captured_events.sent == []  # the exercise is already closed: no socket to tell


@pytest.mark.django_db
def test_shredding_survives_a_kek_rotation_and_old_key_cache(
    exercise: Exercise, room: Room, uk_officer: User, admin: User
) -> None:
    stored = seal_message(room, seq=1, sender=uk_officer)
    assert records.open_message_body(stored) == BODY  # the key is now cached
    close(exercise, ExerciseStatus.ARCHIVED)
    key_service.shred_exercise(
        actor=admin, exercise=exercise, waive_export="no export is needed in this test"
    )
    result = key_service.rotate_kek(actor=None)
    assert (result.rewrapped, result.shredded) == (0, 1)
    with pytest.raises(crypto.ContentShredded):
        records.open_message_body(stored)


@pytest.mark.django_db
@pytest.mark.parametrize("status", [ExerciseStatus.ACTIVE, ExerciseStatus.DRAFT])
def test_shredding_is_refused_while_the_exercise_is_active_or_draft(
    exercise: Exercise, room: Room, uk_officer: User, admin: User, status: str
) -> None:
    exercise.status = status
    exercise.save(update_fields=["status"])
    stored = seal_message(room, seq=1, sender=uk_officer)
    with pytest.raises(Conflict, match=f"is {status}: only a closed or archived exercise"):
        key_service.shred_exercise(
            actor=admin, exercise=exercise, waive_export="no export is needed in this test"
        )
    exercise.refresh_from_db()
    assert (exercise.status, exercise.shredded_at) == (status, None)
    assert records.open_message_body(stored) == BODY
    assert not AuditEvent.objects.filter(action="keys.shredded").exists()


@pytest.mark.django_db
def test_shredding_twice_is_refused(exercise: Exercise, room: Room, admin: User) -> None:
    close(exercise)
    key_service.shred_exercise(
        actor=admin, exercise=exercise, waive_export="no export is needed in this test"
    )
    with pytest.raises(Conflict, match="already shredded"):
        key_service.shred_exercise(
            actor=admin, exercise=exercise, waive_export="no export is needed in this test"
        )
    assert AuditEvent.objects.filter(action="keys.shredded").count() == 1


@pytest.mark.django_db
def test_shredding_one_exercise_leaves_another_readable(
    exercise: Exercise, room: Room, admin: User, outsider: User, other_exercise: Exercise
) -> None:
    other_room = RoomFactory(exercise=other_exercise, name="general")
    kept = seal_message(other_room, seq=1, sender=outsider, body="still here")
    close(exercise)
    key_service.shred_exercise(
        actor=admin, exercise=exercise, waive_export="no export is needed in this test"
    )
    roomkeys.clear_cache()
    assert records.open_message_body(kept) == "still here"


@pytest.mark.django_db
def test_a_shredded_exercise_takes_no_new_room_key(exercise: Exercise, room: Room) -> None:
    close(exercise)
    key_service.shred_exercise(
        actor=None, exercise=exercise, waive_export="no export is needed in this test"
    )
    with pytest.raises(Conflict, match="was shredded"):
        key_service.rotate_room(actor=None, room=room)


# --- streaming files ------------------------------------------------------------------------

KEY = bytes(range(32))
DATA = bytes(range(256)) * 3  # 768 bytes = 48 chunks of 16


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 32, 33, 767, 768])
def test_files_of_every_size_around_chunk_boundaries_round_trip(size: int) -> None:
    data = os.urandom(size)
    out = io.BytesIO()
    result = crypto.encrypt_stream(KEY, [data], out.write, context=b"ctx", chunk_size=16)
    assert (result.size, result.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert open_file(KEY, out.getvalue()) == data
    assert len(out.getvalue()) == HEADER_BYTES + size + (size // 16 + 1) * TAG_BYTES


def test_reordered_chunks_fail() -> None:
    header, chunks = split_chunks(seal_file(KEY, DATA), 16)
    chunks[3], chunks[4] = chunks[4], chunks[3]
    with pytest.raises(crypto.TamperedError, match="chunk 3"):
        open_file(KEY, header + b"".join(chunks))


@pytest.mark.parametrize("drop", ["last chunk", "last two chunks", "middle chunk", "a byte"])
def test_truncated_files_fail(drop: str) -> None:
    blob = seal_file(KEY, DATA)
    header, chunks = split_chunks(blob, 16)
    truncated = {
        "last chunk": header + b"".join(chunks[:-1]),
        "last two chunks": header + b"".join(chunks[:-2]),
        "middle chunk": header + b"".join(chunks[:10] + chunks[11:]),
        "a byte": blob[:-1],
    }[drop]
    with pytest.raises(crypto.TamperedError):
        open_file(KEY, truncated)


@pytest.mark.parametrize("length", [0, 1, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 15])
def test_a_stream_cut_in_or_just_after_its_header_fails(length: int) -> None:
    with pytest.raises(crypto.TamperedError):
        open_file(KEY, seal_file(KEY, DATA)[:length])


def test_an_empty_file_cut_to_its_header_fails() -> None:
    blob = seal_file(KEY, b"")
    assert open_file(KEY, blob) == b""
    with pytest.raises(crypto.TamperedError):
        open_file(KEY, blob[:HEADER_BYTES])


@pytest.mark.parametrize("extra", ["chunk of itself", "chunk of another file", "bytes"])
def test_extended_files_fail(extra: str) -> None:
    blob = seal_file(KEY, DATA + b"tail")
    _, chunks = split_chunks(blob, 16)
    _, other_chunks = split_chunks(seal_file(KEY, DATA + b"tail"), 16)
    appended = {
        "chunk of itself": chunks[-1],
        "chunk of another file": other_chunks[-1],
        "bytes": b"\x00" * 40,
    }[extra]
    with pytest.raises(crypto.TamperedError):
        open_file(KEY, blob + appended)


def test_a_chunk_swapped_in_from_another_file_fails() -> None:
    header, chunks = split_chunks(seal_file(KEY, DATA), 16)
    _, others = split_chunks(seal_file(KEY, DATA), 16)  # same key, context and plaintext
    chunks[5] = others[5]
    with pytest.raises(crypto.TamperedError, match="chunk 5"):
        open_file(KEY, header + b"".join(chunks))


def test_a_header_swapped_in_from_another_file_fails() -> None:
    _, chunks = split_chunks(seal_file(KEY, DATA), 16)
    other_header, _ = split_chunks(seal_file(KEY, DATA), 16)
    with pytest.raises(crypto.TamperedError):
        open_file(KEY, other_header + b"".join(chunks))


def test_flipping_any_byte_of_a_stream_fails() -> None:
    blob = seal_file(KEY, DATA[:100])
    for index in range(len(blob)):
        with pytest.raises(crypto.TamperedError):
            open_file(KEY, flip(blob, index))


def test_a_file_opened_in_another_context_or_with_another_key_fails() -> None:
    blob = seal_file(KEY, DATA, context=b"attachment.blob|room=1|key_version=1|blob=a")
    with pytest.raises(crypto.TamperedError):
        open_file(KEY, blob, context=b"attachment.blob|room=2|key_version=1|blob=a")
    with pytest.raises(crypto.TamperedError):
        open_file(bytes(32), blob, context=b"attachment.blob|room=1|key_version=1|blob=a")


def test_a_stream_over_the_size_limit_stops_early() -> None:
    read: list[int] = []

    def source() -> Iterator[bytes]:
        for index in range(1000):
            read.append(index)
            yield b"x" * 16

    with pytest.raises(ValueError, match="exceeds the size limit"):
        crypto.encrypt_stream(
            KEY, source(), io.BytesIO().write, context=b"ctx", chunk_size=16, max_bytes=100
        )
    assert len(read) < 10
    out = io.BytesIO()
    crypto.encrypt_stream(KEY, [b"x" * 100], out.write, context=b"ctx", max_bytes=100)
    assert open_file(KEY, out.getvalue()) == b"x" * 100


@pytest.mark.parametrize("chunk_size", [0, 15, 2**24 + 1])
def test_an_unreasonable_chunk_size_is_refused(chunk_size: int) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        crypto.encrypt_stream(
            KEY, [b"x"], io.BytesIO().write, context=b"ctx", chunk_size=chunk_size
        )


def test_not_a_stream_is_a_clear_error() -> None:
    with pytest.raises(crypto.TamperedError, match="Not an encrypted Liaison stream"):
        open_file(KEY, b"PK\x03\x04 a zip file, not ours, long enough to fill a header")


def test_the_push_style_encryptor_writes_the_same_format() -> None:
    encryptor = crypto.StreamEncryptor(KEY, context=b"ctx", chunk_size=16)
    blob = b"".join(encryptor.update(DATA[i : i + 10]) for i in range(0, len(DATA), 10))
    blob += encryptor.finalize()
    assert open_file(KEY, blob) == DATA
    assert len(blob) == len(seal_file(KEY, DATA))
    with pytest.raises(ValueError, match="already finalized"):
        encryptor.update(b"more")
    with pytest.raises(ValueError, match="already finalized"):
        encryptor.finalize()


def test_the_push_style_encryptor_seals_an_empty_file() -> None:
    encryptor = crypto.StreamEncryptor(KEY, context=b"ctx", chunk_size=16)
    assert open_file(KEY, encryptor.finalize()) == b""


@pytest.mark.django_db
def test_an_attachment_blob_is_bound_to_its_room_key_and_storage_name(
    room: Room, lane_room: Room
) -> None:
    version, key = crypto.active_key(room)
    context = records.stream_context(
        records.ATTACHMENT_BLOB, room_id=room.pk, key_version=version, storage_name="f1"
    )
    blob = seal_file(key, DATA, context=context)
    for moved in (
        records.stream_context(
            records.ATTACHMENT_BLOB, room_id=room.pk, key_version=version, storage_name="f2"
        ),
        records.stream_context(
            records.ATTACHMENT_THUMBNAIL, room_id=room.pk, key_version=version, storage_name="f1"
        ),
        records.stream_context(
            records.ATTACHMENT_BLOB, room_id=lane_room.pk, key_version=version, storage_name="f1"
        ),
    ):
        with pytest.raises(crypto.TamperedError):
            open_file(key, blob, context=moved)
    with pytest.raises(crypto.TamperedError):
        open_file(crypto.active_key(lane_room)[1], blob, context=context)


# --- properties -------------------------------------------------------------------------------


@st.composite
def files_and_pieces(draw: st.DrawFn) -> tuple[bytes, int, list[bytes]]:
    """A plaintext, a small chunk size, and the plaintext cut into arbitrary upload pieces;
    sizes cluster around multiples of the chunk size, and 0 bytes is included."""
    chunk_size = draw(st.integers(min_value=16, max_value=64))
    size = draw(
        st.one_of(
            st.just(0),
            st.integers(min_value=0, max_value=6).flatmap(
                lambda n: st.integers(
                    min_value=max(0, n * chunk_size - 1), max_value=n * chunk_size + 1
                )
            ),
            st.integers(min_value=0, max_value=600),
        )
    )
    data = draw(st.binary(min_size=size, max_size=size))
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=size), max_size=8)))
    bounds = [0, *cuts, size]
    return data, chunk_size, [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(files_and_pieces())
def test_property_any_file_cut_any_way_round_trips(case: tuple[bytes, int, list[bytes]]) -> None:
    data, chunk_size, pieces = case
    out = io.BytesIO()
    result = crypto.encrypt_stream(KEY, pieces, out.write, context=b"p", chunk_size=chunk_size)
    assert result.size == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    chunks = list(crypto.decrypt_stream(KEY, io.BytesIO(out.getvalue()), context=b"p"))
    assert b"".join(chunks) == data
    assert all(len(chunk) == chunk_size for chunk in chunks[:-1])
    assert len(chunks[-1]) < chunk_size


@settings(max_examples=200, deadline=None)
@given(files_and_pieces())
def test_property_the_push_style_encryptor_round_trips_any_pieces(
    case: tuple[bytes, int, list[bytes]],
) -> None:
    data, chunk_size, pieces = case
    encryptor = crypto.StreamEncryptor(KEY, context=b"p", chunk_size=chunk_size)
    blob = b"".join(encryptor.update(piece) for piece in pieces) + encryptor.finalize()
    assert len(blob) == HEADER_BYTES + len(data) + (len(data) // chunk_size + 1) * TAG_BYTES
    assert b"".join(crypto.decrypt_stream(KEY, io.BytesIO(blob), context=b"p")) == data


@settings(max_examples=200, deadline=None)
@given(files_and_pieces(), st.data())
def test_property_any_single_change_to_a_stream_is_detected(
    case: tuple[bytes, int, list[bytes]], data: st.DataObject
) -> None:
    _, chunk_size, pieces = case
    out = io.BytesIO()
    crypto.encrypt_stream(KEY, pieces, out.write, context=b"p", chunk_size=chunk_size)
    blob = out.getvalue()
    change = data.draw(st.sampled_from(["flip", "cut", "extend"]))
    if change == "flip":
        damaged = flip(blob, data.draw(st.integers(min_value=0, max_value=len(blob) - 1)))
    elif change == "cut":
        damaged = blob[: data.draw(st.integers(min_value=0, max_value=len(blob) - 1))]
    else:
        damaged = blob + data.draw(st.binary(min_size=1, max_size=chunk_size + TAG_BYTES + 1))
    with pytest.raises(crypto.TamperedError):
        b"".join(crypto.decrypt_stream(KEY, io.BytesIO(damaged), context=b"p"))


@pytest.mark.django_db
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.text(max_size=300), seq=st.integers(min_value=1, max_value=2**40))
def test_property_any_message_body_round_trips(
    room: Room, uk_officer: User, body: str, seq: int
) -> None:
    stored = seal_message(room, seq=seq, sender=uk_officer, body=body)
    assert records.open_message_body(stored) == body
