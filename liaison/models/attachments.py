from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Attachment(models.Model):
    """An uploaded file: ciphertext in the attachment store, metadata here, the name encrypted."""

    room = models.ForeignKey("liaison.Room", on_delete=models.PROTECT, related_name="attachments")
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="attachments"
    )
    message = models.ForeignKey(
        "liaison.Message",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="attachments",
    )
    created_at = models.DateTimeField(default=timezone.now)
    key_version = models.PositiveIntegerField()
    storage_name = models.CharField(max_length=200, unique=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100)
    # The exercise's handling marking (the message's when it is sent, unless given at upload).
    marking = models.CharField(max_length=40, blank=True)
    name_nonce = models.BinaryField()
    name_ciphertext = models.BinaryField()
    thumbnail_storage_name = models.CharField(max_length=200, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["room_id", "created_at"]
