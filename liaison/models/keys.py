from __future__ import annotations

from django.db import models
from django.utils import timezone


class RoomKey(models.Model):
    """A room's data key, one per version, stored only wrapped by a key-encryption key."""

    room = models.ForeignKey("liaison.Room", on_delete=models.PROTECT, related_name="keys")
    version = models.PositiveIntegerField()
    kek_id = models.CharField(max_length=64)
    wrapped_key = models.BinaryField(null=True)  # NULL once shredded
    created_at = models.DateTimeField(default=timezone.now)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["room_id", "version"]
        constraints = [
            models.UniqueConstraint(fields=["room", "version"], name="room_key_version_unique")
        ]
