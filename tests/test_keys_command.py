"""``manage.py keys``: the keyring file, KEK rotation and retirement, room rotation, shredding."""

from __future__ import annotations

import builtins
import json
import stat
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from liaison import crypto
from liaison.audit.signing import new_private_key_text
from liaison.crypto import records
from liaison.crypto.keyring import LocalKeyring, add_key_json, new_keyring_json
from liaison.models import (
    AuditEvent,
    AuditExportStatus,
    Exercise,
    ExerciseStatus,
    Room,
    RoomKey,
    User,
)
from liaison.services import exports, jobs


@pytest.fixture
def keyring_path(tmp_path: Path) -> Iterator[Path]:
    """A keyring file holding one KEK, ``first``, configured as the keyring in use."""
    path = tmp_path / "keyring.json"
    path.write_text(new_keyring_json("first"))
    path.chmod(0o600)
    with override_settings(
        LIAISON_KEYRING_JSON="", LIAISON_KEYRING_FILE=str(path), LIAISON_KEYRING_AUTOCREATE=False
    ):
        crypto.reset_keyring_cache()
        yield path
    crypto.reset_keyring_cache()


def keys(*args: str) -> str:
    out = StringIO()
    call_command("keys", *args, stdout=out)
    return out.getvalue()


def seal(room: Room, sender: User, body: str, seq: int = 1) -> SimpleNamespace:
    sealed = records.seal_message_body(room_id=room.pk, seq=seq, sender_id=sender.pk, body=body)
    return SimpleNamespace(
        room_id=room.pk,
        seq=seq,
        sender_id=sender.pk,
        key_version=sealed.key_version,
        nonce=sealed.nonce,
        ciphertext=sealed.ciphertext,
    )


def close(exercise: Exercise, status: str = ExerciseStatus.CLOSED) -> None:
    exercise.status = status
    exercise.save(update_fields=["status"])


# --- generate ---------------------------------------------------------------------------------


def test_generate_prints_a_usable_keyring() -> None:
    text = keys("generate", "--id", "prod-2026")
    ring = LocalKeyring.from_json(text)
    assert ring.active_id == "prod-2026"
    assert len(ring.keys["prod-2026"]) == 32
    assert LocalKeyring.from_json(keys("generate")).keys != ring.keys


def test_generate_refuses_an_invalid_id() -> None:
    with pytest.raises(CommandError, match="'bad id' is not a valid key id"):
        keys("generate", "--id", "bad id")


def test_no_action_is_a_usage_error() -> None:
    with pytest.raises(CommandError, match="ACTION"):
        keys()


# --- add-kek ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_add_kek_adds_an_active_key_and_keeps_the_old_one(keyring_path: Path) -> None:
    old = LocalKeyring.from_json(keyring_path.read_text())
    output = json.loads(keys("add-kek", "--id", "second", "--json"))
    assert output == {
        "added": "second",
        "active": "second",
        "file": str(keyring_path),
        "keys": ["first", "second"],
    }
    ring = LocalKeyring.from_json(keyring_path.read_text())
    assert ring.active_id == "second"
    assert ring.keys["first"] == old.keys["first"]
    assert stat.S_IMODE(keyring_path.stat().st_mode) == 0o600
    assert crypto.get_keyring().active_id == "second"
    event = AuditEvent.objects.get(action="keys.kek_added")
    assert (event.target_type, event.target_id) == ("kek", "second")
    assert event.actor_label.startswith("manage.py keys")
    assert event.details == {"file": str(keyring_path), "kek_ids": ["first", "second"]}


@pytest.mark.django_db
def test_add_and_retire_keep_the_keyring_s_other_entries(keyring_path: Path) -> None:
    document = json.loads(keyring_path.read_text())
    document["audit_signing_key"] = "c2lnbmluZy1rZXktZm9yLXRlc3Rz"
    keyring_path.write_text(json.dumps(document))
    keys("add-kek", "--id", "second")
    keys("rotate-kek")
    keys("retire-kek", "first")
    document = json.loads(keyring_path.read_text())
    assert document["audit_signing_key"] == "c2lnbmluZy1rZXktZm9yLXRlc3Rz"
    assert (document["active"], list(document["keys"])) == ("second", ["second"])


@pytest.mark.django_db
def test_add_kek_writes_another_file_when_asked(keyring_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "staging.json"
    other.write_text(new_keyring_json("staging"))
    text = keys("add-kek", "--file", str(other))
    assert f"to {other}" in text
    assert len(LocalKeyring.from_json(other.read_text()).keys) == 2
    assert LocalKeyring.from_json(keyring_path.read_text()).kek_ids == ["first"]


@pytest.mark.django_db
def test_add_kek_refuses_a_duplicate_id(keyring_path: Path) -> None:
    before = keyring_path.read_text()
    with pytest.raises(CommandError, match="already holds a key 'first'"):
        keys("add-kek", "--id", "first")
    assert keyring_path.read_text() == before
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_add_kek_refuses_a_malformed_or_missing_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"active": "a", "keys": {"a": "not base64!"}}')
    with pytest.raises(CommandError, match="key 'a' is not valid base64"):
        keys("add-kek", "--file", str(broken))
    with pytest.raises(CommandError, match=r"missing\.json does not exist"):
        keys("add-kek", "--file", str(tmp_path / "missing.json"))


@pytest.mark.django_db
def test_add_kek_needs_a_file_when_the_keyring_comes_from_the_environment() -> None:
    with (
        override_settings(LIAISON_KEYRING_JSON=new_keyring_json("env")),
        pytest.raises(CommandError, match="LIAISON_KEYRING variable, not a file"),
    ):
        keys("add-kek")


# --- rotate-kek and retire-kek --------------------------------------------------------------


@pytest.mark.django_db
def test_the_full_kek_rotation_keeps_content_readable(
    keyring_path: Path, room: Room, lane_room: Room, uk_officer: User
) -> None:
    messages = [seal(room, uk_officer, "one"), seal(lane_room, uk_officer, "two")]

    keys("add-kek", "--id", "second")
    output = keys("rotate-kek")
    assert "Re-wrapped 2 data key(s) under second (from first: 2)" in output
    assert "No data key needs first any more" in output
    assert set(RoomKey.objects.values_list("kek_id", flat=True)) == {"second"}
    event = AuditEvent.objects.get(action="keys.kek_rotated")
    assert event.details == {
        "active_kek": "second",
        "rewrapped": 2,
        "already_current": 0,
        "shredded": 0,
        "previous_keks": {"first": 2},
    }

    assert "Retired KEK first" in keys("retire-kek", "first")
    assert LocalKeyring.from_json(keyring_path.read_text()).kek_ids == ["second"]
    assert AuditEvent.objects.filter(action="keys.kek_retired", target_id="first").exists()
    crypto.reset_keyring_cache()
    assert [records.open_message_body(m) for m in messages] == ["one", "two"]


def test_an_export_s_file_key_is_rewrapped_and_its_kek_cannot_be_retired_before(
    keyring_path: Path, auditor: User, room: Room, export_dir: Path, settings: Any, tmp_path: Path
) -> None:
    signing_key = tmp_path / "audit-signing-key"  # the export's manifest is signed
    signing_key.write_text(new_private_key_text())
    settings.LIAISON_AUDIT_SIGNING_KEY_FILE = str(signing_key)
    export = exports.request_export(auditor=auditor, exercise_id=room.exercise_id)
    assert jobs.Worker(batch=True, schedule=False, queues=("exports",)).run() == 1
    export.refresh_from_db()
    assert (export.status, export.kek_id) == (AuditExportStatus.READY, "first")
    keys("add-kek", "--id", "second")

    with pytest.raises(CommandError, match=r"1 data key\(s\) are still wrapped by 'first'"):
        keys("retire-kek", "first")
    assert "Re-wrapped 1 data key(s) under second (from first: 1)" in keys("rotate-kek")
    export.refresh_from_db()
    assert export.kek_id == "second"
    assert "Retired KEK first" in keys("retire-kek", "first")

    crypto.reset_keyring_cache()
    download = exports.open_download(auditor=auditor, export_id=export.pk)
    archive = b"".join(download.pieces)
    assert archive.startswith(b"PK")
    assert len(archive) == export.size


@pytest.mark.django_db
def test_rotate_kek_reports_counts_as_json(keyring_path: Path, room: Room) -> None:
    crypto.active_key(room)
    output = json.loads(keys("rotate-kek", "--json"))
    assert output == {
        "active": "first",
        "rewrapped": 0,
        "already_current": 1,
        "shredded": 0,
        "previous_keks": {},
        "retirable": [],
    }


@pytest.mark.django_db
def test_rotate_kek_stops_clearly_when_a_kek_is_missing(keyring_path: Path, room: Room) -> None:
    crypto.active_key(room)
    RoomKey.objects.filter(room=room).update(kek_id="gone")
    with pytest.raises(CommandError, match=r"no key-encryption key 'gone'.*Nothing was re-wrapped"):
        keys("rotate-kek")
    assert RoomKey.objects.get(room=room).kek_id == "gone"
    assert not AuditEvent.objects.filter(action="keys.kek_rotated").exists()


@pytest.mark.django_db
def test_retire_kek_is_refused_while_a_data_key_still_needs_it(
    keyring_path: Path, room: Room, uk_officer: User
) -> None:
    message = seal(room, uk_officer, "still wrapped by first")
    keys("add-kek", "--id", "second")
    before = keyring_path.read_text()
    with pytest.raises(CommandError, match=r"1 data key\(s\) are still wrapped by 'first'"):
        keys("retire-kek", "first")
    assert keyring_path.read_text() == before
    assert not AuditEvent.objects.filter(action="keys.kek_retired").exists()
    crypto.reset_keyring_cache()
    assert records.open_message_body(message) == "still wrapped by first"


@pytest.mark.django_db
def test_retire_kek_refuses_the_active_key_and_unknown_ids(keyring_path: Path) -> None:
    with pytest.raises(CommandError, match="'first' is the active key"):
        keys("retire-kek", "first")
    with pytest.raises(CommandError, match="holds no key 'nope'"):
        keys("retire-kek", "nope")
    assert LocalKeyring.from_json(keyring_path.read_text()).kek_ids == ["first"]


@pytest.mark.django_db
def test_status_shows_which_keks_wrap_data_keys(keyring_path: Path, room: Room) -> None:
    crypto.active_key(room)
    keyring_path.write_text(add_key_json(keyring_path.read_text(), "second")[0])
    output = json.loads(keys("status", "--json"))
    assert output == {
        "source": str(keyring_path),
        "active": "second",
        "keys": {"first": 1, "second": 0},
        "missing": [],
    }
    assert "second (active): wraps 0 data key(s)" in keys("status")


# --- rotate-room ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rotate_room_starts_a_new_key_version(room: Room, uk_officer: User) -> None:
    old = seal(room, uk_officer, "before")
    output = json.loads(keys("rotate-room", str(room.pk), "--json"))
    assert output["version"] == 2
    assert output["room"] == room.pk
    assert seal(room, uk_officer, "after", seq=2).key_version == 2
    assert records.open_message_body(old) == "before"
    event = AuditEvent.objects.get(action="keys.room_rotated")
    assert (event.target_type, event.target_id, event.exercise_id) == (
        "room",
        str(room.pk),
        room.exercise_id,
    )


@pytest.mark.django_db
def test_rotate_room_names_a_missing_room() -> None:
    with pytest.raises(CommandError, match="No room with id 424242"):
        keys("rotate-room", "424242")
    with pytest.raises(CommandError, match="invalid int value"):
        keys("rotate-room", "general")


@pytest.mark.django_db
def test_rotate_room_is_refused_after_shredding(exercise: Exercise, room: Room) -> None:
    close(exercise)
    keys("shred", exercise.code, "--yes", "--waive-export", "not needed in this test")
    with pytest.raises(CommandError, match="was shredded"):
        keys("rotate-room", str(room.pk))


# --- shred ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_shred_with_yes_destroys_a_closed_exercise_s_keys(
    exercise: Exercise, room: Room, lane_room: Room, uk_officer: User
) -> None:
    message = seal(room, uk_officer, "seized 40 t")
    seal(lane_room, uk_officer, "lane intel")
    close(exercise)
    output = json.loads(
        keys("shred", exercise.code, "--yes", "--json", "--waive-export", "not needed here")
    )
    assert output["exercise"] == exercise.code
    assert (output["rooms"], output["keys_destroyed"]) == (2, 2)
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.SHREDDED
    assert exercise.shredded_at is not None
    assert not RoomKey.objects.filter(wrapped_key__isnull=False).exists()
    with pytest.raises(crypto.ContentShredded):
        records.open_message_body(message)
    event = AuditEvent.objects.get(action="keys.shredded")
    assert event.exercise_id == exercise.pk
    assert event.details["keys_destroyed"] == 2


@pytest.mark.django_db
def test_shred_asks_for_the_exercise_code_and_shreds_when_it_is_typed(
    exercise: Exercise, room: Room, uk_officer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    seal(room, uk_officer, "intel")
    close(exercise, ExerciseStatus.ARCHIVED)
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return f" {exercise.code}\n"

    monkeypatch.setattr(builtins, "input", answer)
    output = keys("shred", exercise.code, "--waive-export", "not needed in this test")
    assert prompts == [f"Type the exercise code ({exercise.code}) to confirm: "]
    assert "every message and file in them becomes unreadable" in output
    assert f"Shredded {exercise.code}: destroyed 1 data key(s) of 1 room(s)" in output
    assert "rotate and retire that KEK" in output
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.SHREDDED


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["", "cfe-test-waste", "yes", None])
def test_shred_without_the_right_confirmation_changes_nothing(
    exercise: Exercise, room: Room, uk_officer: User, monkeypatch: pytest.MonkeyPatch, typed: str
) -> None:
    message = seal(room, uk_officer, "intel")
    close(exercise)

    def answer(prompt: str) -> str:
        if typed is None:
            raise EOFError
        return typed

    monkeypatch.setattr(builtins, "input", answer)
    with pytest.raises(CommandError, match="Confirmation did not match; nothing was shredded"):
        keys("shred", exercise.code, "--waive-export", "not needed in this test")
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.CLOSED
    assert records.open_message_body(message) == "intel"
    assert not AuditEvent.objects.filter(action="keys.shredded").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [ExerciseStatus.ACTIVE, ExerciseStatus.DRAFT])
def test_shred_is_refused_for_an_active_or_draft_exercise_before_asking(
    exercise: Exercise,
    room: Room,
    uk_officer: User,
    monkeypatch: pytest.MonkeyPatch,
    status: str,
) -> None:
    message = seal(room, uk_officer, "intel")
    close(exercise, status)
    monkeypatch.setattr(builtins, "input", lambda prompt: pytest.fail("asked for confirmation"))
    for extra in ([], ["--yes"]):
        with pytest.raises(CommandError, match=f"is {status}: only a closed or archived"):
            keys("shred", exercise.code, *extra)
    exercise.refresh_from_db()
    assert (exercise.status, exercise.shredded_at) == (status, None)
    assert records.open_message_body(message) == "intel"
    assert not AuditEvent.objects.filter(action="keys.shredded").exists()


@pytest.mark.django_db
def test_shred_names_an_unknown_exercise_and_refuses_a_second_shred(exercise: Exercise) -> None:
    with pytest.raises(CommandError, match="No exercise with code 'CFE-NOPE'"):
        keys("shred", "CFE-NOPE", "--yes")
    close(exercise)
    keys("shred", exercise.code, "--yes", "--waive-export", "not needed in this test")
    with pytest.raises(CommandError, match="already shredded"):
        keys("shred", exercise.code, "--yes")
