"""Retention and crypto-shredding: an archived exercise whose retention has ended is shredded
only after a signed export exists (or an administrator waived it), never under a legal hold;
shredding destroys the data keys and deletes the files, and keeps the audit trail and every
message's metadata, so the chains still verify and auditors see what happened without the
content."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from liaison import crypto
from liaison.audit import verify as audit_verify
from liaison.audit import workspace
from liaison.crypto import records
from liaison.errors import Conflict, Invalid, PermissionDenied
from liaison.models import (
    Attachment,
    AuditEvent,
    Exercise,
    ExerciseStatus,
    GroupRole,
    Message,
    MessageRevision,
    Room,
    RoomKey,
    User,
)
from liaison.services import attachments, lifecycle, messaging, reading, retention
from liaison.services import exercises as exercise_service
from tests.conftest import sign_in
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

START = dt.datetime(2030, 7, 1, 8, 0, tzinfo=dt.UTC)
END = dt.datetime(2030, 7, 31, 18, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
MINUTE = dt.timedelta(minutes=1)
RETENTION_END = END + 60 * DAY


def files_in(location: Path) -> list[Path]:
    return [path for path in location.rglob("*") if path.is_file()] if location.exists() else []


def at(moment: dt.datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def pass_at(moment: dt.datetime) -> lifecycle.PassReport:
    with at(moment):
        return lifecycle.run_pass()


@pytest.fixture
def lived(admin: User, hmrc: Any, gacc: Any, store: Path, settings: Any) -> Exercise:
    """CFE-2030-07 ran in July 2030 (a conversation with an edit and a file), closed on time and
    was archived 30 days later; its 60 days of retention end on 29 September."""
    settings.LIAISON_ARCHIVE_AFTER_DAYS = 30
    with at(START - 10 * DAY):
        exercise = exercise_service.create_exercise(
            actor=admin,
            code="CFE-2030-07",
            title="Plastic waste, summer",
            agencies=[hmrc, gacc],
            starts_at=START,
            ends_at=END,
            retention_days=60,
        )
        uk_officer = UserFactory(
            email="olivia@hmrc.example", display_name="Olivia Hughes", agency=hmrc
        )
        MembershipFactory(exercise=exercise, user=uk_officer, role=GroupRole.MEMBER)
    room = exercise.rooms.get()
    pass_at(START + MINUTE)
    with at(START + DAY):
        messaging.send_message(
            sender=uk_officer, room_id=room.pk, client_id="m1", body="MSCU1234567 held at Nansha"
        )
        messaging.edit_message(
            user=uk_officer, room_id=room.pk, seq=2, body="MSCU1234567 held at Nansha quay 3"
        )
        upload = attachments.upload_attachment(
            uploader=uk_officer,
            room_id=room.pk,
            filename="manifest.pdf",
            declared_type="application/pdf",
            chunks=[b"%PDF-1.7\n" + os.urandom(5000)],
        )
        messaging.send_message(
            sender=uk_officer,
            room_id=room.pk,
            client_id="m2",
            body="manifest attached",
            attachment_ids=[upload.pk],
        )
    assert pass_at(END + MINUTE).moved == [("CFE-2030-07", "close")]
    assert pass_at(END + 30 * DAY + MINUTE).moved == [("CFE-2030-07", "archive")]
    exercise.refresh_from_db()
    assert exercise.retention_ends_at == RETENTION_END + MINUTE
    return exercise


def export(exercise: Exercise, out: Path, moment: dt.datetime) -> None:
    with at(moment):
        workspace.export_exercise_to_directory(exercise_code=exercise.code, out=out)


# --- shredding on schedule ----------------------------------------------------------------------


def test_an_exercise_is_shredded_on_schedule_once_a_signed_export_exists(
    lived: Exercise, auditor: User, store: Path, tmp_path: Path
) -> None:
    assert files_in(store)  # the file and nothing else yet
    report = pass_at(RETENTION_END + DAY)
    assert report.moved == []
    ((code, reason),) = report.waiting
    assert code == "CFE-2030-07"
    assert "no signed export" in reason
    lived.refresh_from_db()
    assert lived.status == ExerciseStatus.ARCHIVED

    export(lived, tmp_path / "export", RETENTION_END + DAY)
    report = pass_at(RETENTION_END + 2 * DAY)

    assert report.moved == [("CFE-2030-07", "shred"), ("CFE-2030-07", "delete_content")]
    lived.refresh_from_db()
    assert lived.status == ExerciseStatus.SHREDDED
    assert lived.content_deleted_at is not None
    # No ciphertext decrypts any more: messages, revisions, file names.
    for message in Message.objects.filter(room__exercise=lived):
        with pytest.raises(crypto.ContentShredded):
            records.open_message_body(message)
    for revision in MessageRevision.objects.filter(message__room__exercise=lived):
        with pytest.raises(crypto.ContentShredded):
            records.open_revision(revision, revision.message)
    for attachment in Attachment.objects.filter(room__exercise=lived):
        with pytest.raises(crypto.ContentShredded):
            records.open_attachment_name(attachment)
    assert not RoomKey.objects.filter(room__exercise=lived, wrapped_key__isnull=False).exists()
    # No blob remains in the store.
    assert files_in(store) == []
    # The record of what happened survives the content: every chain still verifies.
    assert audit_verify.verify(checkpoints=False).ok
    call_command("audit", "verify")
    shredded = AuditEvent.objects.get(action="keys.shredded", exercise=lived)
    assert shredded.actor_label == lifecycle.ACTOR_LABEL
    assert shredded.details["export_manifest_sha256"]
    deleted = AuditEvent.objects.get(action="exercise.content_deleted", exercise=lived)
    assert (deleted.details["files"], deleted.details["bytes"]) == (1, 5009)


def test_after_shredding_auditors_see_the_metadata_and_that_the_content_was_destroyed(
    lived: Exercise, auditor: User, tmp_path: Path
) -> None:
    export(lived, tmp_path / "export", RETENTION_END + DAY)
    pass_at(RETENTION_END + DAY)
    room = lived.rooms.get()

    with at(RETENTION_END + 2 * DAY):
        page = reading.read_history(user=auditor, room_id=room.pk, via="api")
        client = sign_in(Client(), auditor)
        transcript = client.get(f"/audit/rooms/{room.pk}/").content.decode()
        overview = client.get(f"/audit/exercises/{lived.pk}/").content.decode()
        attachment = Attachment.objects.get(room=room)
        download = client.get(f"/api/v1/attachments/{attachment.pk}")

    kept = [(m["seq"], m["sender"]["display_name"], m["kind"]) for m in page.messages]
    assert kept == [
        (1, "Liaison", "system"),
        (2, "Olivia Hughes", "text"),
        (3, "Olivia Hughes", "attachment"),
        (4, "Liaison", "system"),
        (5, "Liaison", "system"),
    ]
    assert {m["body"] for m in page.messages} == {"Content destroyed by retention policy."}
    assert all(m["shredded"] for m in page.messages)
    assert transcript.count("Content destroyed by retention policy.") >= 5
    assert "Content destroyed by retention on" in overview
    assert download.status_code == 410
    assert download.json()["error"]["code"] == "shredded"


# --- what blocks it -----------------------------------------------------------------------------


def test_a_legal_hold_blocks_shredding_until_it_is_lifted(
    lived: Exercise, admin: User, tmp_path: Path
) -> None:
    export(lived, tmp_path / "export", RETENTION_END - DAY)
    with at(RETENTION_END - DAY):
        retention.set_legal_hold(actor=admin, exercise=lived, reason="Court order 2026/114")

    report = pass_at(RETENTION_END + DAY)

    assert report.moved == []
    assert "legal hold (Court order 2026/114)" in report.waiting[0][1]
    lived.refresh_from_db()
    assert lived.status == ExerciseStatus.ARCHIVED
    with pytest.raises(CommandError, match="legal hold"):
        call_command("keys", "shred", lived.code, "--yes", "--waive-export", "operator says so")
    assert RoomKey.objects.filter(room__exercise=lived, wrapped_key__isnull=False).exists()

    with at(RETENTION_END + 2 * DAY):
        retention.lift_legal_hold(actor=admin, exercise=lived)
    assert pass_at(RETENTION_END + 3 * DAY).moved[0] == ("CFE-2030-07", "shred")
    held = AuditEvent.objects.get(action="exercise.legal_hold_set")
    lifted = AuditEvent.objects.get(action="exercise.legal_hold_lifted")
    assert (held.actor, held.details["reason"]) == (admin, "Court order 2026/114")
    assert lifted.details["held"]["reason"] == "Court order 2026/114"


def test_an_export_made_before_the_exercise_closed_does_not_count(
    lived: Exercise, tmp_path: Path
) -> None:
    with at(START + 2 * DAY):
        # An export while it still ran: its content was not final yet.
        workspace.export_exercise_to_directory(exercise_code=lived.code, out=tmp_path / "early")
    assert not retention.export_status(lived).satisfied
    assert pass_at(RETENTION_END + DAY).moved == []


def test_an_administrator_can_waive_the_export_on_the_record(lived: Exercise, admin: User) -> None:
    with at(RETENTION_END - DAY):
        retention.waive_export(actor=admin, exercise=lived, reason="Both agencies hold copies")

    assert pass_at(RETENTION_END + DAY).moved[0] == ("CFE-2030-07", "shred")
    waived = AuditEvent.objects.get(action="exercise.export_waived")
    assert (waived.actor, waived.details["reason"]) == (admin, "Both agencies hold copies")
    assert AuditEvent.objects.get(action="keys.shredded").details["export_waived"] is True


def test_waivers_and_holds_are_for_administrators_with_a_reason(
    exercise: Exercise, admin: User, uk_coordinator: User
) -> None:
    with pytest.raises(Conflict, match="only once it has closed"):
        retention.waive_export(actor=admin, exercise=exercise, reason="too early")
    with pytest.raises(PermissionDenied):
        retention.set_legal_hold(actor=uk_coordinator, exercise=exercise, reason="mine")
    with pytest.raises(Invalid, match="Give a reason"):
        retention.set_legal_hold(actor=admin, exercise=exercise, reason="   ")
    retention.set_legal_hold(actor=admin, exercise=exercise, reason="Inquiry")
    with pytest.raises(Conflict, match="already under legal hold"):
        retention.set_legal_hold(actor=admin, exercise=exercise, reason="Again")
    retention.lift_legal_hold(actor=admin, exercise=exercise)
    with pytest.raises(Conflict, match="not under legal hold"):
        retention.lift_legal_hold(actor=admin, exercise=exercise)


def test_the_keys_command_refuses_to_shred_without_an_export_or_a_waiver(
    exercise: Exercise, room: Room, admin: User
) -> None:
    exercise_service.close_exercise(actor=admin, exercise=exercise)
    with pytest.raises(CommandError, match="no signed export"):
        call_command("keys", "shred", exercise.code, "--yes")
    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.CLOSED
    assert not AuditEvent.objects.filter(action="keys.shredded").exists()

    call_command("keys", "shred", exercise.code, "--yes", "--waive-export", "Data spill")

    exercise.refresh_from_db()
    assert exercise.status == ExerciseStatus.SHREDDED
    waived = AuditEvent.objects.get(action="exercise.export_waived")
    assert (waived.actor, waived.details["reason"]) == (None, "Data spill")
    assert waived.actor_label.startswith("manage.py keys")


def test_a_shredding_stopped_before_its_files_went_is_finished_by_the_next_pass(
    exercise: Exercise, room: Room, admin: User, uk_officer: User, store: Path
) -> None:
    upload = attachments.upload_attachment(
        uploader=uk_officer,
        room_id=room.pk,
        filename="manifest.pdf",
        declared_type="application/pdf",
        chunks=[b"%PDF-1.7\n" + os.urandom(500)],
    )
    messaging.send_message(
        sender=uk_officer, room_id=room.pk, client_id="f", body="file", attachment_ids=[upload.pk]
    )
    exercise_service.close_exercise(actor=admin, exercise=exercise)
    # Shredded, but the process stopped before the files were deleted (on commit).
    from liaison.services import keys

    keys.shred_exercise(actor=admin, exercise=exercise, waive_export="agreed")
    assert files_in(store)

    report = lifecycle.run_pass()

    assert report.moved == [(exercise.code, "delete_content")]
    assert files_in(store) == []
    assert lifecycle.run_pass().moved == []
    assert AuditEvent.objects.filter(action="exercise.content_deleted").count() == 1


# --- the administrators' pages and commands -----------------------------------------------------


def test_the_admin_pages_show_each_exercise_s_life(
    lived: Exercise, admin: User, tmp_path: Path
) -> None:
    with at(RETENTION_END - 5 * DAY):
        client = sign_in(Client(), admin)
        listing = client.get("/manage/").content.decode()
        detail = client.get(f"/manage/exercises/{lived.pk}/").content.decode()
    for heading in ("Retention ends", "Legal hold", "Signed export"):
        assert heading in listing
    assert "None yet" in listing
    assert "Life and retention" in detail
    assert "None since it closed" in detail
    assert "no signed export has been made since it closed" in detail
    assert f'action="/manage/exercises/{lived.pk}/waive-export/"' in detail

    with at(RETENTION_END - 4 * DAY):
        client = sign_in(Client(), admin)
        set_hold = client.post(
            f"/manage/exercises/{lived.pk}/legal-hold/set/", {"reason": "Court order 2026/114"}
        )
        export(lived, tmp_path / "export", RETENTION_END - 4 * DAY)
        detail = client.get(f"/manage/exercises/{lived.pk}/").content.decode()
        listing = client.get("/manage/").content.decode()
    assert set_hold.status_code == 302
    assert "Court order 2026/114" in detail
    assert "Lift the legal hold" in detail
    assert "Made " in detail
    assert 'class="badge hold"' in listing

    with at(RETENTION_END - 3 * DAY):
        client = sign_in(Client(), admin)
        client.post(f"/manage/exercises/{lived.pk}/legal-hold/lift/")
    lived.refresh_from_db()
    assert lived.legal_hold is False


def test_a_coordinator_cannot_hold_or_waive(exercise: Exercise, uk_coordinator: User) -> None:
    client = sign_in(Client(), uk_coordinator)
    response = client.post(f"/manage/exercises/{exercise.pk}/legal-hold/set/", {"reason": "x"})
    assert response.status_code == 403
    exercise.refresh_from_db()
    assert exercise.legal_hold is False


def test_the_exercise_command_holds_releases_and_waives(
    exercise: Exercise, admin: User, capsys: Any
) -> None:
    call_command("exercise", "hold", exercise.code, "--reason", "Inquiry", "--actor", admin.email)
    exercise.refresh_from_db()
    assert (exercise.legal_hold, exercise.legal_hold_reason) == (True, "Inquiry")
    call_command("exercise", "release", exercise.code, "--actor", admin.email)
    exercise_service.close_exercise(actor=admin, exercise=exercise)
    capsys.readouterr()
    call_command(
        "exercise",
        "waive-export",
        exercise.code,
        "--reason",
        "Copies held",
        "--json",
        "--actor",
        admin.email,
    )
    exercise.refresh_from_db()
    assert (exercise.legal_hold, exercise.export_waiver_reason) == (False, "Copies held")
    assert json.loads(capsys.readouterr().out)["exercise"]["code"] == exercise.code
    assert [e.action for e in AuditEvent.objects.filter(exercise=exercise).order_by("seq")][
        -4:
    ] == [
        "exercise.legal_hold_set",
        "exercise.legal_hold_lifted",
        "exercise.closed",
        "exercise.export_waived",
    ]
