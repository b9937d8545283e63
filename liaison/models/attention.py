"""What asks for an officer's attention in a room: mentions, acknowledgement requests, reactions
from a small fixed set, and each person's preferences for a room (mute, notify on every
message, when they were last e-mailed).

Mentions and addressees are stored as user ids beside the sealed message, decided when the
message is sent: nothing is derived later by reading the plaintext.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class MentionVia(models.TextChoices):
    PERSON = "person"
    AGENCY = "agency"
    ROOM = "room"


class Mention(models.Model):
    """A person a message mentions (by name, through their agency, or through ``@room``),
    one row per person: mention counts and notifications read these rows."""

    message = models.ForeignKey(
        "liaison.Message", on_delete=models.PROTECT, related_name="mention_rows"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    via = models.CharField(max_length=8, choices=MentionVia.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "user"], name="mention_once_per_person")
        ]
        indexes = [models.Index(fields=["user", "message"], name="mention_by_user")]


class AckRequest(models.Model):
    """A message whose sender asked for acknowledgement, from everyone who may post in the
    room or from the named agencies and people (``addressed``)."""

    message = models.OneToOneField(
        "liaison.Message", on_delete=models.PROTECT, related_name="ack_request"
    )
    addressed = models.JSONField(default=dict, blank=True)  # {"agencies": [...], "users": [...]}
    created_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField()


class Acknowledgement(models.Model):
    """One addressee of an acknowledgement request; ``acknowledged_at`` once they did."""

    request = models.ForeignKey(AckRequest, on_delete=models.PROTECT, related_name="rows")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request_id", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["request", "user"], name="acknowledgement_once")
        ]
        indexes = [models.Index(fields=["user", "acknowledged_at"], name="ack_by_user")]


class RoomPreference(models.Model):
    """One person's settings for one room, and when they were last e-mailed about it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey("liaison.Room", on_delete=models.CASCADE, related_name="+")
    muted = models.BooleanField(default=False)
    notify_all = models.BooleanField(default=False)
    last_emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="room_preference_unique")
        ]


class Reaction(models.Model):
    """One person's reaction to a message, from a fixed set (``REACTIONS``): lighter than an
    acknowledgement, which is asked for, given once and audited."""

    message = models.ForeignKey(
        "liaison.Message", on_delete=models.PROTECT, related_name="reactions"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    emoji = models.CharField(max_length=8)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["message_id", "created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user", "emoji"], name="reaction_once_per_person"
            )
        ]


# Seen, agreed, important: the set is fixed so reactions stay signals, not chatter.
REACTIONS = ("\u2713", "\U0001f44d", "\u2757")
