from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class MessageKind(models.TextChoices):
    TEXT = "text", _("Text")
    ALERT = "alert", _("Alert")
    ATTACHMENT = "attachment", _("Attachment")
    SYSTEM = "system", _("System")
    REPORT = "report", _("Seizure report")


class Message(models.Model):
    """A message in a room. The body is ciphertext only; the original is never overwritten.

    ``seq`` is gap-free per room. ``chain_hash`` links each message to the previous one so a
    removed or altered row is detectable.
    """

    room = models.ForeignKey("liaison.Room", on_delete=models.PROTECT, related_name="messages")
    seq = models.PositiveBigIntegerField()
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="messages"
    )
    client_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=MessageKind.choices, default=MessageKind.TEXT)
    key_version = models.PositiveIntegerField()
    nonce = models.BinaryField()
    ciphertext = models.BinaryField()
    reply_to_seq = models.PositiveBigIntegerField(null=True, blank=True)
    # The sender's declaration, as sent: {"users": [ids], "agencies": [codes], "room": bool}
    # (each person it reaches is a ``Mention`` row); and the exercise's handling marking.
    mentions = models.JSONField(default=dict, blank=True)
    marking = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    prev_hash = models.CharField(max_length=64)
    chain_hash = models.CharField(max_length=64)
    # What the link hashes (``audit.message_link_hash``): 1, the body, sender, kind and time;
    # 2 (every message since sends stopped writing an audit row each), also the marking, the
    # seq it replies to and the mentions. Changing it breaks the link like any other field.
    # A database default too: a server still running the previous release keeps inserting.
    link_version = models.PositiveSmallIntegerField(default=1, db_default=1)

    class Meta:
        ordering = ["room_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="message_seq_unique_in_room"),
            models.UniqueConstraint(
                fields=["room", "sender", "client_id"], name="message_client_id_idempotent"
            ),
        ]


class MessageRevision(models.Model):
    """An edit of a message: the new body, encrypted. Earlier text stays for auditors."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="revisions")
    number = models.PositiveIntegerField()
    key_version = models.PositiveIntegerField()
    nonce = models.BinaryField()
    ciphertext = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["message_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["message", "number"], name="revision_number_unique")
        ]


class ReadMarker(models.Model):
    """How far a user has read in a room, for unread counts and read receipts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey("liaison.Room", on_delete=models.CASCADE, related_name="+")
    last_read_seq = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "room"], name="read_marker_unique")]


class Presence(models.Model):
    """An open WebSocket connection, so presence works across several server processes."""

    channel_name = models.CharField(max_length=200, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    room = models.ForeignKey("liaison.Room", on_delete=models.CASCADE, related_name="+")
    session_key = models.CharField(max_length=64, blank=True)
    # The server process holding the socket: it refreshes all its rows with one statement.
    worker = models.CharField(max_length=64, blank=True, db_index=True)
    connected_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
