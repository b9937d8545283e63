from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Being prepared")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")
    EXPIRED = "expired", _("Expired")


class AuditExport(models.Model):
    """An auditor's signed export of an exercise, made by a job (``services.exports``).

    The file is the export's zip, encrypted as it is written (streaming AEAD) under a key of its
    own, kept here only wrapped by a key-encryption key; it is deleted when it expires.
    """

    exercise = models.ForeignKey(
        "liaison.Exercise", on_delete=models.PROTECT, related_name="audit_exports"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(
        max_length=8,
        choices=AuditExportStatus.choices,
        default=AuditExportStatus.QUEUED,
        db_index=True,
    )
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)
    # The encrypted file in ``storages["exports"]`` and its key, wrapped.
    storage_name = models.CharField(max_length=200, blank=True)
    kek_id = models.CharField(max_length=64, blank=True)
    wrapped_key = models.BinaryField(null=True, blank=True)
    # What the file holds, as the zip's plaintext.
    file_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    events = models.PositiveIntegerField(default=0)
    rooms = models.PositiveIntegerField(default=0)
    messages = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-requested_at", "-pk"]

    def __str__(self) -> str:
        return f"export {self.pk} of exercise {self.exercise_id}"

    @property
    def pending(self) -> bool:
        return self.status in {AuditExportStatus.QUEUED, AuditExportStatus.RUNNING}
