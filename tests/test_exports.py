"""Auditors' signed exports as jobs (services/exports.py): asked for on the exercise's page,
written by a worker as a stream into an encrypted file, downloaded by the auditor who asked, at
most two being prepared per auditor, expiring, every step on the record; a run whose worker was
killed starts over and the export completes once."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from liaison.audit.offline_verifier import load_public_key, verify_export
from liaison.audit.signing import public_key_b64
from liaison.errors import AccessDenied, Conflict
from liaison.models import AuditEvent, AuditExport, AuditExportStatus, Exercise, Room, User
from liaison.services import exports, jobs
from tests.audit_helpers import say
from tests.conftest import sign_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation(uk_officer: User, gz_officer: User, room: Room) -> Room:
    say(uk_officer, room, "Container MSCU1234567 leaves Felixstowe tonight.")
    say(gz_officer, room, "南沙海关已收到，将于周五查验。")
    return room


def files_in(location: Path) -> list[Path]:
    return [p for p in location.rglob("*") if p.is_file()] if location.exists() else []


def work() -> int:
    return jobs.Worker(batch=True, schedule=False, queues=("exports",)).run()


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def test_an_auditor_asks_a_job_prepares_and_the_auditor_downloads_a_signed_export(
    auditor: User, conversation: Room, export_dir: Path, tmp_path: Path
) -> None:
    client = sign_in(Client(), auditor)
    asked = client.post(f"/audit/exercises/{conversation.exercise_id}/export/")

    export = AuditExport.objects.get()
    assert asked.status_code == 302
    assert asked["Location"] == f"/audit/exports/#export-{export.pk}"
    assert export.status == AuditExportStatus.QUEUED
    assert DBTaskResult.objects.get(pk=export.task_id).queue_name == "exports"
    requested = AuditEvent.objects.get(action="audit.export_requested")
    assert (requested.actor, requested.details["export"]) == (auditor, export.pk)
    assert "Being prepared" not in client.get("/audit/exports/").content.decode()  # queued

    assert work() == 1

    export.refresh_from_db()
    assert export.status == AuditExportStatus.READY
    assert export.events > 0
    assert (export.rooms, export.messages) == (1, 2)
    assert export.expires_at == export.finished_at + dt.timedelta(days=7)
    # On disk: ciphertext only, never the zip or any message text.
    (stored,) = files_in(export_dir)
    raw = stored.read_bytes()
    assert not raw.startswith(b"PK")
    assert b"MSCU1234567" not in raw
    page = client.get("/audit/exports/").content.decode()
    assert f"/audit/exports/{export.pk}/download" in page

    response = client.get(f"/audit/exports/{export.pk}/download")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "liaison-export-CFE-TEST-WASTE-" in response["Content-Disposition"]
    data = body(response)
    assert len(data) == export.size == int(response["Content-Length"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(tmp_path / "unpacked")
    (folder,) = list((tmp_path / "unpacked").glob("liaison-export-*"))
    check = verify_export(folder, load_public_key(public_key_b64()))
    assert check.ok, check.problems
    assert check.messages == 2
    exported = AuditEvent.objects.get(action="audit.exported")
    assert (exported.actor, exported.details["via"]) == (auditor, "job")
    assert exported.details["manifest_sha256"] == export.manifest_sha256
    downloaded = AuditEvent.objects.get(action="audit.export_downloaded")
    assert (downloaded.actor, downloaded.details["export"]) == (auditor, export.pk)


def test_an_auditor_has_at_most_two_exports_being_prepared(
    auditor: User, exercise: Exercise, room: Room, export_dir: Path
) -> None:
    exports.request_export(auditor=auditor, exercise_id=exercise.pk)
    exports.request_export(auditor=auditor, exercise_id=exercise.pk)
    with pytest.raises(Conflict, match="already have 2 exports being prepared"):
        exports.request_export(auditor=auditor, exercise_id=exercise.pk)
    client = sign_in(Client(), auditor)
    refused = client.post(f"/audit/exercises/{exercise.pk}/export/", follow=True)
    assert "already have 2 exports being prepared" in refused.content.decode()
    # Another auditor is not held back by these.
    colleague = UserFactory(email="second.auditor@hmrc.example", role="auditor")
    exports.request_export(auditor=colleague, exercise_id=exercise.pk)

    assert work() == 3
    exports.request_export(auditor=auditor, exercise_id=exercise.pk)
    assert AuditExport.objects.filter(requested_by=auditor).count() == 3


def test_only_the_auditor_who_asked_downloads_it(
    auditor: User, uk_officer: User, admin: User, exercise: Exercise, room: Room, export_dir: Path
) -> None:
    export = exports.request_export(auditor=auditor, exercise_id=exercise.pk)
    work()
    colleague = UserFactory(email="second.auditor@hmrc.example", role="auditor")
    for other in (colleague, uk_officer, admin):
        response = sign_in(Client(), other).get(f"/audit/exports/{export.pk}/download")
        assert response.status_code == 404, other
    with pytest.raises(AccessDenied):
        exports.request_export(auditor=uk_officer, exercise_id=exercise.pk)
    assert not AuditEvent.objects.filter(action="audit.export_downloaded").exists()


def test_an_export_expires_and_its_file_goes(
    auditor: User, exercise: Exercise, room: Room, export_dir: Path
) -> None:
    export = exports.request_export(auditor=auditor, exercise_id=exercise.pk)
    work()
    export.refresh_from_db()
    assert files_in(export_dir)

    with time_machine.travel(export.expires_at + dt.timedelta(minutes=1), tick=False):
        counts = jobs.prune_bookkeeping()

    assert counts["exports"] == 1
    export.refresh_from_db()
    assert (export.status, export.wrapped_key) == (AuditExportStatus.EXPIRED, None)
    assert files_in(export_dir) == []
    response = sign_in(Client(), auditor).get(f"/audit/exports/{export.pk}/download")
    assert response.status_code == 404


def test_a_run_whose_worker_was_killed_starts_over_and_the_export_completes_once(
    auditor: User, conversation: Room, export_dir: Path, settings: Any
) -> None:
    settings.LIAISON_JOBS_STALE_SECONDS = 60
    export = exports.request_export(auditor=auditor, exercise_id=conversation.exercise_id)
    # What a worker killed mid-export leaves: the job claimed and running under a worker that
    # is gone, the export marked running, half a file written.
    task = DBTaskResult.objects.get(pk=export.task_id)
    task.claim("killed-worker")
    exports._start(export.pk)
    export.refresh_from_db()
    half = export_dir / f"{export.storage_name}.part"
    half.parent.mkdir(parents=True, exist_ok=True)
    half.write_bytes(b"LSA1 half of a file")
    later = task.started_at + dt.timedelta(minutes=5)

    with time_machine.travel(later, tick=True):
        assert jobs.recover_stalled() == [str(task.pk)]
        assert work() == 1

    export.refresh_from_db()
    assert export.status == AuditExportStatus.READY
    assert export.attempts == 2
    assert not half.exists()
    assert len(files_in(export_dir)) == 1
    task.refresh_from_db()
    assert task.status == TaskResultStatus.SUCCESSFUL
    assert task.worker_ids[0] == "killed-worker"
    assert AuditEvent.objects.filter(action="audit.exported").count() == 1
    # Running the job again changes nothing: the export is made once.
    assert exports.run_export(export_id=export.pk)["status"] == AuditExportStatus.READY
    assert AuditEvent.objects.filter(action="audit.exported").count() == 1
    assert len(files_in(export_dir)) == 1


def test_an_export_after_shredding_carries_the_metadata_and_marks_the_content(
    auditor: User, admin: User, conversation: Room, export_dir: Path, tmp_path: Path
) -> None:
    from liaison.services import exercises, keys

    exercises.close_exercise(actor=admin, exercise=conversation.exercise)
    keys.shred_exercise(actor=admin, exercise=conversation.exercise, waive_export="copies held")
    export = exports.request_export(auditor=auditor, exercise_id=conversation.exercise_id)
    work()
    download = exports.open_download(auditor=auditor, export_id=export.pk)
    with zipfile.ZipFile(io.BytesIO(b"".join(download.pieces))) as archive:
        (transcript,) = [n for n in archive.namelist() if n.endswith("transcript.jsonl")]
        lines = archive.read(transcript).decode().splitlines()
    messages = [line for line in lines if '"type":"message"' in line]
    assert len(messages) == 3  # two messages and the closing notice
    assert all('"content":"shredded"' in line for line in messages)
