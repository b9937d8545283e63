"""Auditors' signed exports as background jobs (docs/audit.md, "Exports").

An auditor asks (``request_export``: at most ``LIAISON_EXPORT_MAX_PENDING`` being prepared at
once per auditor, beside the per-hour request limit of the page); a job on the ``exports`` queue
writes the signed export (``audit.export.write_export``) as a zip straight into a file
encrypted as it goes (streaming AEAD under a key of its own, kept only wrapped by the keyring),
so neither the whole zip nor any plaintext is ever held in memory or put on disk; the auditor
who asked downloads it (decrypted as it streams) until it expires. The request, the export and
every download are in the trail (``audit.export_requested``, ``audit.exported``,
``audit.export_downloaded``).

The job is idempotent: a finished export is not made again, and a run whose worker was killed
starts over with a new file (the old one is deleted), so an export completes once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tasks import task

from liaison import access, audit, storage
from liaison.audit import export as signed_export
from liaison.crypto import records
from liaison.crypto.errors import TamperedError
from liaison.crypto.keyring import KEY_BYTES, get_keyring
from liaison.crypto.streaming import StreamEncryptor, decrypt_stream
from liaison.errors import AccessDenied, Conflict, NotFound
from liaison.models import AuditExport, AuditExportStatus, User

logger = logging.getLogger(__name__)

QUEUE = "exports"
PENDING = (AuditExportStatus.QUEUED, AuditExportStatus.RUNNING)


# --- asking ---------------------------------------------------------------------------------------


def request_export(*, auditor: User, exercise_id: object, ip: str | None = None) -> AuditExport:
    """Queue a signed export of the exercise for ``auditor`` (refused while they already have
    ``LIAISON_EXPORT_MAX_PENDING`` being prepared)."""
    access.require_auditor(auditor)
    exercise, _membership = access.access_exercise(auditor, exercise_id)
    with transaction.atomic():
        # One request of this auditor at a time, so two at once cannot both pass the count.
        User.objects.select_for_update().filter(pk=auditor.pk).values_list("pk").first()
        pending = AuditExport.objects.filter(requested_by=auditor, status__in=PENDING).count()
        limit = settings.LIAISON_EXPORT_MAX_PENDING
        if pending >= limit:
            raise Conflict(
                _(
                    "You already have %(count)s exports being prepared; wait until one is "
                    "ready, then ask again."
                )
                % {"count": pending}
            )
        export = AuditExport.objects.create(exercise=exercise, requested_by=auditor)
        export.task_id = str(export_job.enqueue(export.pk).id)
        export.save(update_fields=["task_id"])
        audit.record(
            actor=auditor,
            action="audit.export_requested",
            target=export,
            exercise=exercise,
            ip=ip,
            export=export.pk,
        )
    return export


def exports_of(auditor: User, *, limit: int = 50) -> list[AuditExport]:
    """The auditor's own exports, newest first."""
    access.require_auditor(auditor)
    return list(AuditExport.objects.filter(requested_by=auditor).select_related("exercise")[:limit])


# --- making it (the job) --------------------------------------------------------------------------


class _EncryptingFile(io.RawIOBase):
    """A write-only, unseekable file whose bytes are encrypted chunk by chunk into a blob: the
    zip is written through it as it is made, so it never sits whole in memory or on disk in
    plaintext."""

    def __init__(self, writer: storage.BlobWriter, key: bytes, context: bytes) -> None:
        super().__init__()
        self._writer = writer
        self._encryptor = StreamEncryptor(key, context=context)
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        piece = bytes(data)
        self.size += len(piece)
        self.digest.update(piece)
        sealed = self._encryptor.update(piece)
        if sealed:
            self._writer.write(sealed)
        return len(piece)

    def finish(self) -> None:
        self._writer.write(self._encryptor.finalize())


@task(queue_name=QUEUE)
def export_job(export_id: int) -> dict[str, Any]:
    """The job behind ``request_export``."""
    return run_export(export_id=export_id)


def _start(export_id: int) -> tuple[AuditExport, bytes] | None:
    """Claim the export for this run with a new file name and file key; ``None`` when there is
    nothing to do (finished, failed, expired or gone)."""
    with transaction.atomic():
        export = (
            AuditExport.objects.select_for_update()
            .select_related("exercise")
            .filter(pk=export_id)
            .first()
        )
        if export is None or export.status not in PENDING:
            return None
        # Running already: the worker of an earlier run stopped (it was killed); start over.
        leftover = export.storage_name
        export.status = AuditExportStatus.RUNNING
        export.started_at = timezone.now()
        export.attempts += 1
        export.storage_name = f"{export.pk}/{storage.new_blob_name()}"
        key = os.urandom(KEY_BYTES)
        export.kek_id, wrapped = get_keyring().wrap(
            key, records.export_key_context(export_id=export.pk, storage_name=export.storage_name)
        )
        export.wrapped_key = wrapped
        export.save()
    if leftover:
        storage.delete_blob(leftover, store=storage.export_store())
    return export, key


def _write(export: AuditExport, key: bytes) -> tuple[signed_export.ExportResult, _EncryptingFile]:
    folder = signed_export.export_folder_name(export.exercise)
    context = records.export_stream_context(export_id=export.pk, storage_name=export.storage_name)
    with storage.BlobWriter(export.storage_name, storage=storage.export_store()) as writer:
        sealed = _EncryptingFile(writer, key, context)
        with zipfile.ZipFile(sealed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            result = signed_export.write_export(
                exercise=export.exercise, sink=signed_export.ZipSink(archive, folder)
            )
        sealed.finish()
        writer.commit()
    export.file_name = f"{folder}.zip"
    return result, sealed


def run_export(*, export_id: int) -> dict[str, Any]:
    """Make the export's file, then record it, once."""
    started = _start(export_id)
    if started is None:
        row = AuditExport.objects.filter(pk=export_id).values_list("status", flat=True).first()
        return {"export": export_id, "status": row or "missing"}
    export, key = started
    name = export.storage_name
    try:
        result, sealed = _write(export, key)
    except Exception as error:
        with transaction.atomic():
            AuditExport.objects.filter(pk=export.pk, storage_name=name).update(
                status=AuditExportStatus.FAILED,
                finished_at=timezone.now(),
                error=type(error).__name__[:200],
                wrapped_key=None,
            )
        storage.delete_blob(name, store=storage.export_store())
        logger.exception("export %s of exercise %s failed", export.pk, export.exercise.code)
        raise
    with transaction.atomic():
        current = AuditExport.objects.select_for_update().get(pk=export.pk)
        if current.status != AuditExportStatus.RUNNING or current.storage_name != name:
            # Another run finished it meanwhile: this file is surplus.
            storage.delete_blob(name, store=storage.export_store())
            return {"export": export.pk, "status": current.status}
        now = timezone.now()
        current.status = AuditExportStatus.READY
        current.finished_at = now
        current.expires_at = now + dt.timedelta(days=settings.LIAISON_EXPORT_KEEP_DAYS)
        current.file_name = export.file_name
        current.size = sealed.size
        current.sha256 = sealed.digest.hexdigest()
        current.manifest_sha256 = result.manifest_sha256
        current.events, current.rooms, current.messages = (
            result.events,
            result.rooms,
            result.messages,
        )
        current.save()
        audit.record(
            actor=current.requested_by,
            action="audit.exported",
            target=current.exercise,
            exercise=current.exercise,
            via="job",
            export=current.pk,
            attempts=current.attempts,
            manifest_sha256=result.manifest_sha256,
            events=result.events,
            rooms=result.rooms,
            messages=result.messages,
            size=current.size,
        )
    return {"export": export.pk, "status": AuditExportStatus.READY, "messages": result.messages}


# --- fetching it ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    export: AuditExport
    pieces: Iterator[bytes]


def _verified(pieces: Iterator[bytes], export: AuditExport) -> Iterator[bytes]:
    """The plaintext as it is decrypted (each chunk authenticated before it leaves); the whole
    file's digest is checked at its end, where a cut or swapped file would show."""
    digest, size = hashlib.sha256(), 0
    for piece in pieces:
        digest.update(piece)
        size += len(piece)
        yield piece
    if size != export.size or digest.hexdigest() != export.sha256:
        raise TamperedError(f"export {export.pk} does not match its recorded digest")


def open_download(*, auditor: User, export_id: object, ip: str | None = None) -> Download:
    """The auditor's own ready export, decrypted as it streams; each download is audited.
    Another auditor's export, and a missing one, are the same 404."""
    access.require_auditor(auditor)
    try:
        ident = int(str(export_id))
    except ValueError:
        raise AccessDenied(target_type="auditexport", target_id=str(export_id)[:64]) from None
    export = (
        AuditExport.objects.select_related("exercise")
        .filter(pk=ident, requested_by=auditor)
        .first()
    )
    if export is None:
        raise AccessDenied(target_type="auditexport", target_id=str(ident))
    if export.status != AuditExportStatus.READY or export.wrapped_key is None:
        raise NotFound(
            _("This export is not ready: it is %(status)s.")
            % {"status": export.get_status_display().lower()}
        )
    key = get_keyring().unwrap(
        export.kek_id,
        bytes(export.wrapped_key),
        records.export_key_context(export_id=export.pk, storage_name=export.storage_name),
    )
    with transaction.atomic():
        audit.record(
            actor=auditor,
            action="audit.export_downloaded",
            target=export,
            exercise=export.exercise,
            ip=ip,
            export=export.pk,
            manifest_sha256=export.manifest_sha256,
            size=export.size,
        )
    context = records.export_stream_context(export_id=export.pk, storage_name=export.storage_name)

    def pieces() -> Iterator[bytes]:
        with storage.export_store().open(export.storage_name, "rb") as handle:
            yield from decrypt_stream(key, handle, context=context)

    return Download(export=export, pieces=_verified(pieces(), export))


# --- expiry ---------------------------------------------------------------------------------------


def expire_exports(*, now: dt.datetime | None = None) -> int:
    """Delete the files of exports past their time (and their keys), and files no export
    names any more (left by a run whose worker was killed). Returns how many exports expired."""
    now = now or timezone.now()
    expired = 0
    for export_id in AuditExport.objects.filter(
        status=AuditExportStatus.READY, expires_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            export = (
                AuditExport.objects.select_for_update()
                .filter(pk=export_id, status=AuditExportStatus.READY)
                .first()
            )
            if export is None:
                continue
            name = export.storage_name
            export.status = AuditExportStatus.EXPIRED
            export.wrapped_key = None
            export.save(update_fields=["status", "wrapped_key"])
        storage.delete_blob(name, store=storage.export_store())
        expired += 1
    named = set(
        AuditExport.objects.filter(status__in=[*PENDING, AuditExportStatus.READY]).values_list(
            "storage_name", flat=True
        )
    )
    storage.sweep_orphans(
        referenced=named, older_than=now - dt.timedelta(days=1), store=storage.export_store()
    )
    return expired
