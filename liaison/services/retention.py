"""Retention of an exercise's content: the legal hold, the signed export that must exist before
shredding (or an administrator's waiver), and deleting the files once the keys are destroyed.

Shredding itself is ``keys.shred_exercise`` (destroy the rooms' data keys), which asks
``shred_blockers`` first and hands the files to ``delete_content`` after it commits. What stays
is the record of what happened: the audit trail, and every message's metadata (seq, sender,
times, kind, chain hashes, attachment sizes and digests), so ``manage.py audit verify`` still
passes and auditors see each message as "Content destroyed by retention policy."
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from liaison import audit, storage
from liaison.access import require_admin
from liaison.errors import Conflict, Invalid
from liaison.models import (
    Attachment,
    AuditEvent,
    Comparison,
    Dataset,
    Exercise,
    ExerciseStatus,
    User,
)

logger = logging.getLogger(__name__)

REASON_MAX = 500
# The audit action every signed export records (``audit.workspace``, the export jobs).
EXPORTED = "audit.exported"


def _clean_reason(reason: str) -> str:
    value = " ".join((reason or "").split())
    if not value:
        raise Invalid(_("Give a reason; it goes on the record."), field="reason")
    if len(value) > REASON_MAX:
        raise Invalid(
            _("The reason is longer than %(max)s characters.") % {"max": REASON_MAX},
            field="reason",
        )
    return value


def _locked(exercise: Exercise) -> Exercise:
    return Exercise.objects.select_for_update().get(pk=exercise.pk)


# --- what shredding needs -------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportStatus:
    """The exercise's latest signed export since it closed, and the waiver if there is one."""

    exported_at: dt.datetime | None = None
    exported_via: str = ""
    manifest_sha256: str = ""
    exports: int = 0
    waived_at: dt.datetime | None = None
    waived_by: User | None = None
    waiver_reason: str = ""

    @property
    def satisfied(self) -> bool:
        """Whether shredding may go ahead as far as the export is concerned."""
        return self.exported_at is not None or self.waived_at is not None


def export_status(exercise: Exercise) -> ExportStatus:
    """Signed exports count once the exercise has closed (its content is final by then); every
    export, from the workspace, a job or ``manage.py audit export``, is an ``audit.exported``
    event in the trail."""
    waiver = {
        "waived_at": exercise.export_waived_at,
        "waived_by": exercise.export_waived_by,
        "waiver_reason": exercise.export_waiver_reason,
    }
    if exercise.closed_at is None:
        return ExportStatus(**waiver)
    exports = AuditEvent.objects.filter(
        exercise=exercise, action=EXPORTED, created_at__gte=exercise.closed_at
    ).order_by("-seq")
    latest = exports.first()
    if latest is None:
        return ExportStatus(**waiver)
    return ExportStatus(
        exported_at=latest.created_at,
        exported_via=str(latest.details.get("via", "")),
        manifest_sha256=str(latest.details.get("manifest_sha256", "")),
        exports=exports.count(),
        **waiver,
    )


def shred_blockers(exercise: Exercise, *, waiving_export: bool = False) -> list[str]:
    """Why the exercise's content may not be destroyed now (empty: it may): a legal hold, or no
    signed export since it closed and no waiver (none asked about when ``waiving_export``)."""
    blockers = []
    if exercise.legal_hold:
        blockers.append(
            _("it is under legal hold (%(reason)s)") % {"reason": exercise.legal_hold_reason}
        )
    if not waiving_export and not export_status(exercise).satisfied:
        blockers.append(_("no signed export has been made since it closed, and none was waived"))
    return blockers


# --- the legal hold -------------------------------------------------------------------------------


def set_legal_hold(
    *, actor: User, exercise: Exercise, reason: str, ip: str | None = None
) -> Exercise:
    """Put the exercise under legal hold: nothing destroys its content until the hold is lifted."""
    require_admin(actor)
    reason = _clean_reason(reason)
    with transaction.atomic():
        exercise = _locked(exercise)
        if exercise.status == ExerciseStatus.SHREDDED:
            raise Conflict(
                _("Exercise %(code)s was already shredded: there is nothing left to hold.")
                % {"code": exercise.code}
            )
        if exercise.legal_hold:
            raise Conflict(
                _("Exercise %(code)s is already under legal hold.") % {"code": exercise.code}
            )
        exercise.legal_hold = True
        exercise.legal_hold_reason = reason
        exercise.legal_hold_since = timezone.now()
        exercise.legal_hold_by = actor
        exercise.save(
            update_fields=[
                "legal_hold",
                "legal_hold_reason",
                "legal_hold_since",
                "legal_hold_by",
                "updated_at",
            ]
        )
        audit.record(
            actor=actor,
            action="exercise.legal_hold_set",
            target=exercise,
            exercise=exercise,
            ip=ip,
            reason=reason,
            status=exercise.status,
        )
    return exercise


def lift_legal_hold(*, actor: User, exercise: Exercise, ip: str | None = None) -> Exercise:
    """Lift the legal hold: the retention rules apply again (shredding may follow at once)."""
    require_admin(actor)
    with transaction.atomic():
        exercise = _locked(exercise)
        if not exercise.legal_hold:
            raise Conflict(
                _("Exercise %(code)s is not under legal hold.") % {"code": exercise.code}
            )
        held = {
            "reason": exercise.legal_hold_reason,
            "since": exercise.legal_hold_since.isoformat() if exercise.legal_hold_since else None,
            "set_by": exercise.legal_hold_by_id,
        }
        exercise.legal_hold = False
        exercise.legal_hold_reason = ""
        exercise.legal_hold_since = None
        exercise.legal_hold_by = None
        exercise.save(
            update_fields=[
                "legal_hold",
                "legal_hold_reason",
                "legal_hold_since",
                "legal_hold_by",
                "updated_at",
            ]
        )
        audit.record(
            actor=actor,
            action="exercise.legal_hold_lifted",
            target=exercise,
            exercise=exercise,
            ip=ip,
            held=held,
        )
    return exercise


# --- the export waiver ----------------------------------------------------------------------------


def waive_export(
    *,
    actor: User | None,
    exercise: Exercise,
    reason: str,
    ip: str | None = None,
    actor_label: str = "",
) -> Exercise:
    """An administrator lets the exercise be shredded without a signed export (``actor`` None:
    the operator of ``manage.py keys shred --waive-export``, named by ``actor_label``). Only
    once it has closed, when its content is final."""
    if actor is not None:
        require_admin(actor)
    reason = _clean_reason(reason)
    with transaction.atomic():
        exercise = _locked(exercise)
        if exercise.status not in {ExerciseStatus.CLOSED, ExerciseStatus.ARCHIVED}:
            raise Conflict(
                _(
                    "Exercise %(code)s is %(status)s: the export can be waived only once it has "
                    "closed."
                )
                % {"code": exercise.code, "status": exercise.get_status_display().lower()}
            )
        if exercise.export_waived_at is not None:
            raise Conflict(
                _("The export of %(code)s was already waived.") % {"code": exercise.code}
            )
        exercise.export_waived_at = timezone.now()
        exercise.export_waived_by = actor
        exercise.export_waiver_reason = reason
        exercise.save(
            update_fields=[
                "export_waived_at",
                "export_waived_by",
                "export_waiver_reason",
                "updated_at",
            ]
        )
        audit.record(
            actor=actor,
            actor_label=actor_label,
            action="exercise.export_waived",
            target=exercise,
            exercise=exercise,
            ip=ip,
            reason=reason,
            exports_since_closing=export_status(exercise).exports,
        )
    return exercise


# --- after the keys are gone ----------------------------------------------------------------------


@dataclass
class DeletedContent:
    files: int = 0
    bytes: int = 0
    names: list[str] = field(default_factory=list)


def content_blobs(exercise_id: int) -> DeletedContent:
    """Every blob of the exercise in the store: attachments and their previews, data sets and
    comparison results (each sealed under one of its rooms' keys)."""
    found = DeletedContent()
    for name, preview, size in Attachment.objects.filter(room__exercise_id=exercise_id).values_list(
        "storage_name", "thumbnail_storage_name", "size"
    ):
        found.names.append(name)
        found.bytes += size
        found.files += 1
        if preview:
            found.names.append(preview)
    for name, rows in Dataset.objects.filter(exercise_id=exercise_id).values_list(
        "storage_name", "rows_storage_name"
    ):
        found.names += [name, rows]
        found.files += 1
    found.names += list(
        Comparison.objects.filter(exercise_id=exercise_id)
        .exclude(result_storage_name="")
        .values_list("result_storage_name", flat=True)
    )
    return found


def delete_content(*, exercise_id: int, actor_label: str = "system:retention") -> DeletedContent:
    """Delete a shredded exercise's blobs from the store (unreadable already: their keys are
    gone), then record it. Idempotent: the lifecycle pass finishes a deletion that a stopped
    process left half done."""
    exercise = Exercise.objects.filter(pk=exercise_id).first()
    if exercise is None or exercise.status != ExerciseStatus.SHREDDED:
        return DeletedContent()
    content = content_blobs(exercise_id)
    for name in content.names:
        storage.delete_blob(name)
    with transaction.atomic():
        done = Exercise.objects.filter(pk=exercise_id, content_deleted_at__isnull=True).update(
            content_deleted_at=timezone.now()
        )
        if done:
            audit.record(
                actor=None,
                actor_label=actor_label,
                action="exercise.content_deleted",
                target=exercise,
                exercise=exercise,
                files=content.files,
                blobs=len(content.names),
                bytes=content.bytes,
            )
    logger.info("exercise %s: %d blobs deleted after shredding", exercise.code, len(content.names))
    return content


# --- the exercise's life, as the administrators' pages show it -----------------------------------


@dataclass(frozen=True)
class ExerciseLife:
    exercise: Exercise
    archive_due_at: dt.datetime | None
    retention_ends_at: dt.datetime
    export: ExportStatus
    blockers: list[str]

    @property
    def retention_over(self) -> bool:
        return self.retention_ends_at <= timezone.now()


def life_of(exercise: Exercise) -> ExerciseLife:
    """Dates, retention end, hold and export status of one exercise."""
    return ExerciseLife(
        exercise=exercise,
        archive_due_at=exercise.archive_due_at,
        retention_ends_at=exercise.retention_ends_at,
        export=export_status(exercise),
        blockers=shred_blockers(exercise) if exercise.status != ExerciseStatus.SHREDDED else [],
    )
