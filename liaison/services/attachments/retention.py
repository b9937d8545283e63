"""Retention of uploads: what was never sent does not stay (``manage.py purge_uploads``).

An upload is only the uploader's until a message claims it; one left unsent for a day is
purged so the store does not fill with files nobody shared. The row stays, marked purged and
on record, so a late claim gets a clear answer; blobs that no row names at all (a process that
died mid-upload) are swept with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from liaison import audit, storage
from liaison.models import Attachment
from liaison.models.exchange import stored_blob_names

UNSENT_MAX_AGE = dt.timedelta(hours=24)


@dataclass(frozen=True)
class PurgeResult:
    purged: list[int]
    bytes_freed: int
    orphans_removed: list[str]


def purge_unsent(*, older_than: dt.timedelta = UNSENT_MAX_AGE) -> PurgeResult:
    """Remove uploads never attached to a message within ``older_than``: the row is marked
    purged (with its audit event) first, then the blobs are deleted. Also sweeps blobs that no
    row names (left by a process that died mid-upload) and are as old."""
    cutoff = timezone.now() - older_than
    purged: list[int] = []
    freed = 0
    candidates = list(
        Attachment.objects.filter(
            message__isnull=True, purged_at__isnull=True, created_at__lt=cutoff
        ).values_list("pk", flat=True)
    )
    for ident in candidates:
        with transaction.atomic():
            attachment = (
                Attachment.objects.select_for_update()
                .select_related("room__exercise")
                .filter(pk=ident, message__isnull=True, purged_at__isnull=True)
                .first()
            )
            if attachment is None:  # claimed by a message meanwhile
                continue
            attachment.purged_at = timezone.now()
            attachment.save(update_fields=["purged_at"])
            audit.record(
                actor=None,
                actor_label="system:purge_uploads",
                action="attachment.purged",
                target=attachment,
                exercise=attachment.room.exercise,
                room=attachment.room_id,
                size=attachment.size,
                uploader=attachment.uploader_id,
                age_hours=round((timezone.now() - attachment.created_at).total_seconds() / 3600),
            )
        storage.delete_blob(attachment.storage_name)
        storage.delete_blob(attachment.thumbnail_storage_name)
        purged.append(attachment.pk)
        freed += attachment.size
    referenced = set()
    for name, thumbnail in Attachment.objects.filter(purged_at__isnull=True).values_list(
        "storage_name", "thumbnail_storage_name"
    ):
        referenced.add(name)
        if thumbnail:
            referenced.add(thumbnail)
    referenced.update(stored_blob_names())  # the exchange's data sets and results share the store
    orphans = storage.sweep_orphans(referenced=referenced, older_than=cutoff)
    return PurgeResult(purged=purged, bytes_freed=freed, orphans_removed=orphans)
