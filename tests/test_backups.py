"""Backups that restore: ``manage.py backup`` writes the database, the attachment store and the
signed checkpoints encrypted to the operator's key; ``manage.py restore_check`` restores them
into scratch space and proves every message, attachment and audit event — and names what is
broken when something is."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from liaison.audit import checkpoints as audit_checkpoints
from liaison.crypto.keyring import new_keyring_json
from liaison.models import Attachment, AuditEvent, Room, User
from liaison.services import attachments, backups, messaging
from tests.attachments_support import pdf_of_size, png_bytes

# --- the operator key and the encrypted stream ---------------------------------------------------


def test_an_identity_file_round_trips_and_names_its_public_key(tmp_path: Path) -> None:
    text, public = backups.new_identity()
    assert public in text
    path = tmp_path / "operator.identity"
    path.write_text(text)
    private = backups.load_identity(path)
    assert backups.public_key_text(private.public_key()) == public
    assert backups.public_key_text(backups.parse_recipient(public)) == public
    with pytest.raises(backups.BackupError, match="Not a Liaison backup identity"):
        backups.parse_identity("not a key")
    with pytest.raises(backups.BackupError, match="base64 X25519 public key"):
        backups.parse_recipient("c2hvcnQ=")


def sealed_folder(tmp_path: Path, recipient: Any) -> bytes:
    folder = tmp_path / "plain"
    (folder / "attachments" / "ab").mkdir(parents=True)
    (folder / backups.MANIFEST).write_text(
        json.dumps({"format": backups.FORMAT, "version": backups.FORMAT_VERSION})
    )
    (folder / "attachments" / "ab" / "blob").write_bytes(os.urandom(200_000))
    out = io.BytesIO()
    backups.pack_directory(folder, out, recipient)
    return out.getvalue()


def test_a_backup_opens_only_with_the_operator_key_and_only_unaltered(tmp_path: Path) -> None:
    text, public = backups.new_identity()
    identity = backups.parse_identity(text)
    sealed = sealed_folder(tmp_path, backups.parse_recipient(public))
    assert b"attachments/ab/blob" not in sealed  # even the names are encrypted

    opened = tmp_path / "opened"
    opened.mkdir()
    manifest = backups.extract(io.BytesIO(sealed), identity, opened)
    assert manifest["format"] == backups.FORMAT
    original = (tmp_path / "plain" / "attachments" / "ab" / "blob").read_bytes()
    assert (opened / "attachments" / "ab" / "blob").read_bytes() == original

    other = backups.parse_identity(backups.new_identity()[0])
    with pytest.raises(backups.BackupError, match="encrypted to another operator key"):
        backups.extract(io.BytesIO(sealed), other, tmp_path / "x")

    flipped = bytearray(sealed)
    flipped[len(sealed) // 2] ^= 0x01
    target = tmp_path / "flipped"
    target.mkdir()
    with pytest.raises(backups.BackupError, match="damaged or was altered"):
        backups.extract(io.BytesIO(bytes(flipped)), identity, target)

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    with pytest.raises(backups.BackupError):
        backups.extract(io.BytesIO(sealed[: len(sealed) - 100]), identity, truncated)


# --- a real installation, backed up and proven ---------------------------------------------------


@pytest.fixture
def stores(settings: Any, tmp_path: Path) -> dict[str, Path]:
    """This test's own attachment and checkpoint stores (the checks read nothing else)."""
    locations = {name: tmp_path / name for name in ("attachments", "audit_checkpoints")}
    settings.STORAGES = {
        **settings.STORAGES,
        **{
            name: {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(location)},
            }
            for name, location in locations.items()
        },
    }
    return locations


@pytest.fixture
def operator(tmp_path: Path) -> dict[str, Any]:
    text, public = backups.new_identity()
    path = tmp_path / "operator.identity"
    path.write_text(text)
    return {"identity_file": path, "public": public, "identity": backups.parse_identity(text)}


@pytest.fixture
def populated(
    transactional_db: None,
    stores: dict[str, Path],
    uk_officer: User,
    gz_officer: User,
    room: Room,
    lane_room: Room,
) -> dict[str, Any]:
    """Messages, an edit, a file and an image shared, audit events and a signed checkpoint,
    all through the services."""
    first = messaging.send_message(
        sender=uk_officer, room_id=room.pk, client_id="m1", body="Container MSCU 4471 sails."
    )
    messaging.send_message(
        sender=gz_officer, room_id=room.pk, client_id="m2", body="收到，南沙将检查。"
    )
    messaging.edit_message(
        user=uk_officer, room_id=room.pk, seq=first.message.seq, body="MSCU 4471 sails at 22:00."
    )
    manifest = attachments.upload_attachment(
        uploader=uk_officer,
        room_id=room.pk,
        filename="manifest.pdf",
        declared_type="application/pdf",
        chunks=[pdf_of_size(150_000)],
    )
    photo = attachments.upload_attachment(
        uploader=gz_officer,
        room_id=lane_room.pk,
        filename="seal.png",
        declared_type="image/png",
        chunks=[png_bytes(320, 240)],
    )
    messaging.send_message(
        sender=uk_officer,
        room_id=room.pk,
        client_id="m3",
        body="Manifest attached.",
        attachment_ids=[manifest.pk],
    )
    messaging.send_message(
        sender=gz_officer,
        room_id=lane_room.pk,
        client_id="m4",
        body="Seal photo.",
        attachment_ids=[photo.pk],
    )
    checkpoint = audit_checkpoints.write_checkpoint()
    assert checkpoint is not None
    return {"manifest": manifest, "photo": photo, "events": AuditEvent.objects.count()}


def backup_with_command(tmp_path: Path, public: str) -> Path:
    folder = tmp_path / "backups"
    folder.mkdir()
    out = io.StringIO()
    call_command("backup", out=str(folder), recipient=public, stdout=out)
    [written] = list(folder.iterdir())
    assert f"Backup written to {written}" in out.getvalue()
    assert written.stat().st_mode & 0o777 == 0o600
    return written


def restore_check(backup: Path, identity_file: Path, *extra: str) -> str:
    out = io.StringIO()
    call_command("restore_check", str(backup), *extra, identity=str(identity_file), stdout=out)
    return out.getvalue()


def scratch_databases() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'liaison_restore_check_%%'"
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_backup_restores_and_proves_every_message_attachment_and_audit_event(
    populated: dict[str, Any], operator: dict[str, Any], tmp_path: Path
) -> None:
    backup = backup_with_command(tmp_path, operator["public"])
    raw = backup.read_bytes()
    assert raw.startswith(backups.MAGIC)
    for plaintext in (b"PostgreSQL", b"SQLite format", b"liaison-audit-checkpoint", b"%PDF"):
        assert plaintext not in raw

    report = backups.restore_check(source=backup, identity=operator["identity"], keep=True)
    try:
        unpacked = Path(report.unpacked)
        assert unpacked.stat().st_mode & 0o777 == 0o700
        manifest: Attachment = populated["manifest"]
        assert (unpacked / "attachments" / manifest.storage_name).is_file()
        assert len(list((unpacked / "checkpoints").iterdir())) == 2
        if connection.vendor == "postgresql":
            assert report.scratch_database.startswith("liaison_restore_check_")
            assert scratch_databases() == [report.scratch_database]
    finally:
        if report.scratch_database:
            backups._pg_admin(f'DROP DATABASE "{report.scratch_database}" WITH (FORCE)')
        shutil.rmtree(report.unpacked, ignore_errors=True)

    assert report.problems == []
    assert report.ok
    assert report.database == connection.vendor
    assert (report.messages, report.revisions) == (4, 1)
    assert (report.attachments, report.thumbnails) == (2, 1)
    # The backup's own event and the checkpoint it signed first are part of what is proven.
    assert report.audit_events == populated["events"] + 1
    assert report.checkpoints == 2
    assert report.latest_checkpoint is not None
    assert "Audit chain intact" in report.audit_summary

    printed = restore_check(backup, operator["identity_file"])
    assert "messages decrypted: 4, edits: 1" in printed
    assert "restore-check passed" in printed
    assert "kept" not in printed
    if connection.vendor == "postgresql":
        assert scratch_databases() == []
    assert AuditEvent.objects.filter(action="backup.created").count() == 1


def test_a_corrupted_attachment_blob_fails_the_check_by_name(
    populated: dict[str, Any], operator: dict[str, Any], tmp_path: Path
) -> None:
    backup = backup_with_command(tmp_path, operator["public"])
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with open(backup, "rb") as handle:
        backups.extract(handle, operator["identity"], unpacked)
    manifest: Attachment = populated["manifest"]
    blob = unpacked / "attachments" / manifest.storage_name
    damaged = bytearray(blob.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    tampered = tmp_path / "tampered.backup"
    with open(tampered, "wb") as out:
        backups.pack_directory(unpacked, out, backups.parse_recipient(operator["public"]))

    with pytest.raises(CommandError) as failed:
        restore_check(tampered, operator["identity_file"])

    message = str(failed.value)
    assert "restore-check FAILED: 1 problem(s)" in message
    assert f"attachment {manifest.pk} (blob {manifest.storage_name})" in message
    assert "failed to authenticate" in message


def test_a_missing_blob_and_a_forged_checkpoint_are_named(
    populated: dict[str, Any], operator: dict[str, Any], tmp_path: Path
) -> None:
    backup = backup_with_command(tmp_path, operator["public"])
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with open(backup, "rb") as handle:
        backups.extract(handle, operator["identity"], unpacked)
    photo: Attachment = populated["photo"]
    (unpacked / "attachments" / photo.storage_name).unlink()
    for checkpoint in (unpacked / "checkpoints").iterdir():
        document = json.loads(checkpoint.read_text())
        document["checkpoint"]["audit"]["hash"] = "0" * 64
        checkpoint.write_text(json.dumps(document))
    tampered = tmp_path / "tampered.backup"
    with open(tampered, "wb") as out:
        backups.pack_directory(unpacked, out, backups.parse_recipient(operator["public"]))

    report = backups.restore_check(source=tampered, identity=operator["identity"])

    assert not report.ok
    assert f"attachment {photo.pk} (blob {photo.storage_name}): missing from the backup" in (
        report.problems
    )
    assert any("checkpoint_signature_invalid" in problem for problem in report.problems)
    assert any("no valid signed audit checkpoint" in problem for problem in report.problems)


def test_without_the_keyring_in_use_nothing_decrypts_and_every_message_is_named(
    populated: dict[str, Any],
    operator: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The keyring is not in a backup: a restore with another one proves nothing."""
    backup = backup_with_command(tmp_path, operator["public"])
    monkeypatch.setenv("LIAISON_KEYRING", new_keyring_json("not-the-one"))
    monkeypatch.setenv("LIAISON_AUDIT_SIGNING_KEY_FILE", str(tmp_path / "absent.key"))

    with pytest.raises(CommandError) as failed:
        restore_check(
            backup,
            operator["identity_file"],
            "--audit-public-key",
            _audit_public_key(),
        )

    assert "restore-check FAILED" in str(failed.value)
    report = backups.restore_check(
        source=backup, identity=operator["identity"], audit_public_key=_audit_public_key()
    )
    undecryptable = [p for p in report.problems if p.startswith("message ")]
    assert len(undecryptable) == 4
    assert any(p.startswith("edit 1 of message") for p in report.problems)
    assert any(p.startswith(f"attachment {populated['manifest'].pk} ") for p in report.problems)
    assert report.checkpoints == 2  # the chain itself still verifies with the public key


def _audit_public_key() -> str:
    from liaison.audit import signing

    return signing.public_key_b64()


def test_backup_refuses_without_a_recipient_or_over_an_existing_file(
    settings: Any, tmp_path: Path, db: None
) -> None:
    settings.LIAISON_BACKUP_RECIPIENT = ""
    with pytest.raises(CommandError, match="No backup recipient"):
        call_command("backup", out=str(tmp_path))
    existing = tmp_path / "there.backup"
    existing.write_bytes(b"")
    with pytest.raises(CommandError, match="never overwrites"):
        call_command("backup", out=str(existing), recipient=backups.new_identity()[1])


def test_generate_key_writes_an_owner_only_identity_once(tmp_path: Path) -> None:
    path = tmp_path / "operator.identity"
    out = io.StringIO()
    call_command("backup", generate_key=str(path), json=True, stdout=out)
    printed = json.loads(out.getvalue())
    assert path.stat().st_mode & 0o777 == 0o600
    assert (
        backups.public_key_text(backups.load_identity(path).public_key()) == (printed["public_key"])
    )
    with pytest.raises(CommandError, match="already exists"):
        call_command("backup", generate_key=str(path))


def test_the_proof_never_reaches_the_live_database_through_another_alias(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The child sees the restored copy only: not the owner alias onto the live database (its
    migrate would use it), nor the application role's management."""
    import subprocess

    monkeypatch.setenv("DATABASE_MIGRATE_URL", "postgres://liaison:pw@postgres:5432/liaison")
    monkeypatch.setenv("LIAISON_DB_APP_ROLE", "liaison_app")
    monkeypatch.setenv("LIAISON_DB_APP_PASSWORD_FILE", "/run/secrets/postgres_app_password")
    seen: dict[str, str] = {}

    def run(command: list[str], *, env: dict[str, str], **kwargs: Any) -> Any:
        seen.update(env)
        return subprocess.CompletedProcess(command, 0, stdout='{"problems": []}\n', stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    backups._verify_in_child(
        url="postgres://liaison@postgres:5432/liaison_restore_check_1",
        attachments=tmp_path / "attachments",
        checkpoints=tmp_path / "checkpoints",
        audit_public_key="",
    )
    assert seen["DATABASE_URL"] == "postgres://liaison@postgres:5432/liaison_restore_check_1"
    assert seen["LIAISON_ATTACHMENT_DIR"] == str(tmp_path / "attachments")
    for name in ("DATABASE_MIGRATE_URL", "LIAISON_DB_APP_ROLE", "LIAISON_DB_APP_PASSWORD_FILE"):
        assert name not in seen
