from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ExerciseStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ACTIVE = "active", _("Active")
    CLOSED = "closed", _("Closed")
    ARCHIVED = "archived", _("Archived")
    SHREDDED = "shredded", _("Shredded")


class HistoryVisibility(models.TextChoices):
    """What a member who joins late may read (Matrix's history visibility), chosen at creation."""

    SHARED = "shared", _("Shared: new members read the whole history")
    JOINED = "joined", _("Joined: new members read from the time they join")


class GroupRole(models.TextChoices):
    COORDINATOR = "coordinator", _("Coordinator")
    MEMBER = "member", _("Member")
    OBSERVER = "observer", _("Observer")


def default_markings() -> list[str]:
    return ["OFFICIAL", "OFFICIAL-SENSITIVE"]


class Exercise(models.Model):
    """One Commodity Focused Exercise: a closed, invite-only, time-bound group."""

    code = models.CharField(max_length=40, unique=True)
    title = models.CharField(max_length=200)
    commodity_focus = models.CharField(max_length=200, blank=True)
    hs_codes = models.JSONField(default=list, blank=True)
    lanes = models.JSONField(default=list, blank=True)
    agencies = models.ManyToManyField("liaison.Agency", related_name="exercises")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=ExerciseStatus.choices, default=ExerciseStatus.DRAFT
    )
    retention_days = models.PositiveIntegerField(default=365)
    history_visibility = models.CharField(
        max_length=8, choices=HistoryVisibility.choices, default=HistoryVisibility.SHARED
    )
    # Handling markings, lowest first; every message and attachment carries one. Observers may
    # not download attachments marked above ``observer_download_limit`` (blank: no limit).
    markings = models.JSONField(default=default_markings, blank=True)
    default_marking = models.CharField(max_length=40, default="OFFICIAL")
    observer_download_limit = models.CharField(max_length=40, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    shredded_at = models.DateTimeField(null=True, blank=True)
    # Shredding's second half: the attachment and data-exchange blobs deleted from the store.
    content_deleted_at = models.DateTimeField(null=True, blank=True)
    # A legal hold blocks shredding until it is lifted (services/retention.py; both audited).
    legal_hold = models.BooleanField(default=False)
    legal_hold_reason = models.CharField(max_length=500, blank=True)
    legal_hold_since = models.DateTimeField(null=True, blank=True)
    legal_hold_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Shredding needs a signed export made since closing, unless an administrator waived it.
    export_waived_at = models.DateTimeField(null=True, blank=True)
    export_waived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    export_waiver_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-starts_at", "code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="exercise_ends_after_start"
            )
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_writable(self) -> bool:
        return self.status in {ExerciseStatus.DRAFT, ExerciseStatus.ACTIVE}

    @property
    def retention_ends_at(self) -> dt.datetime:
        """When its content may be destroyed: ``retention_days`` after it closed (or, before
        it closes, after its planned end)."""
        return (self.closed_at or self.ends_at) + dt.timedelta(days=self.retention_days)

    @property
    def archive_due_at(self) -> dt.datetime | None:
        """When the scheduler archives it: ``LIAISON_ARCHIVE_AFTER_DAYS`` after it closed, or
        when its retention ends if that comes first; None until it closes."""
        if self.closed_at is None:
            return None
        after = dt.timedelta(days=settings.LIAISON_ARCHIVE_AFTER_DAYS)
        return min(self.closed_at + after, self.retention_ends_at)


class Room(models.Model):
    """A chat room inside an exercise; holds the per-room sequence and chain head."""

    exercise = models.ForeignKey(Exercise, on_delete=models.PROTECT, related_name="rooms")
    name = models.SlugField(max_length=64)
    title = models.CharField(max_length=200, blank=True)
    topic = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    # Allocation state, updated under SELECT ... FOR UPDATE by the messaging service.
    last_seq = models.PositiveBigIntegerField(default=0)
    chain_head = models.CharField(max_length=64, default="0" * 64)
    # Moves (under the same row lock) whenever someone's right to read or post here narrows:
    # room events carry it, and a socket holding an older grant re-checks before delivering.
    access_epoch = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["exercise_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["exercise", "name"], name="room_name_unique_in_exercise"
            )
        ]

    def __str__(self) -> str:
        return f"{self.exercise.code}/{self.name}"


class Membership(models.Model):
    """A user's place in an exercise. Removal sets ``removed_at``; rows are never deleted."""

    exercise = models.ForeignKey(Exercise, on_delete=models.PROTECT, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=GroupRole.choices, default=GroupRole.MEMBER)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["exercise_id", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["exercise", "user"],
                condition=Q(removed_at__isnull=True),
                name="one_current_membership_per_user",
            )
        ]

    @property
    def is_current(self) -> bool:
        return self.removed_at is None


class Invitation(models.Model):
    """Single-use, expiring, bound to an e-mail and an agency. Only the token's SHA-256 is kept."""

    exercise = models.ForeignKey(Exercise, on_delete=models.PROTECT, related_name="invitations")
    email = models.EmailField()
    agency = models.ForeignKey("liaison.Agency", on_delete=models.PROTECT)
    role = models.CharField(max_length=16, choices=GroupRole.choices, default=GroupRole.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"
