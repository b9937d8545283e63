"""An exercise's life by the calendar: ``draft → active → closed → archived → shredded``.

One pass (``run_pass``: the periodic ``lifecycle`` job, and ``manage.py tick`` for cron) looks
at every exercise that may be due and moves each as far as its dates allow, one audited move per
transaction, through the same services an administrator uses (``exercises``, ``keys``): the
notices in the rooms, the sockets told, the audit events are the same, recorded under
``system:lifecycle``.

- a draft opens on its start date (a draft whose end has passed waits for an administrator);
- an active exercise closes on its end date;
- a closed one is archived ``LIAISON_ARCHIVE_AFTER_DAYS`` after it closed, or when its
  retention ends if that comes first (``Exercise.archive_due_at``);
- an archived one is shredded once its retention has ended (``Exercise.retention_ends_at``),
  unless it is under legal hold or no signed export was made since it closed and none was
  waived (``retention.shred_blockers``: it waits, and the pass says why);
- a shredded one whose files are still in the store (a process stopped between destroying the
  keys and deleting the files) has them deleted (``retention.delete_content``).

Each exercise is taken under its row lock with SKIP LOCKED and its state read again under the
lock, so two passes at once (two workers, a worker and cron) never move an exercise twice: the
second skips the row the first holds, or finds nothing left to do once it is free.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from liaison.errors import LiaisonError
from liaison.models import Exercise, ExerciseStatus
from liaison.services import exercises as exercise_service
from liaison.services import keys as key_service
from liaison.services import retention

logger = logging.getLogger(__name__)

ACTOR_LABEL = "system:lifecycle"
# Moves one exercise can make in a single pass (a scheduler that was down catches up).
MAX_STEPS = 4


@dataclass
class PassReport:
    """What one pass did: ``(exercise code, action)`` per move, and what is waiting and why."""

    moved: list[tuple[str, str]] = field(default_factory=list)
    waiting: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "moved": [{"exercise": code, "action": action} for code, action in self.moved],
            "waiting": [{"exercise": code, "reason": reason} for code, reason in self.waiting],
            "failed": [{"exercise": code, "error": error} for code, error in self.failed],
        }


def due_action(exercise: Exercise, now: dt.datetime) -> str | None:
    """The move the calendar asks of ``exercise`` at ``now``, if any."""
    status = exercise.status
    if status == ExerciseStatus.DRAFT:
        return "activate" if exercise.starts_at <= now < exercise.ends_at else None
    if status == ExerciseStatus.ACTIVE:
        return "close" if exercise.ends_at <= now else None
    if status == ExerciseStatus.CLOSED:
        due = exercise.archive_due_at
        return "archive" if due is not None and due <= now else None
    if status == ExerciseStatus.ARCHIVED:
        due = exercise.retention_ends_at <= now and not retention.shred_blockers(exercise)
        return "shred" if due else None
    if status == ExerciseStatus.SHREDDED:
        return "delete_content" if exercise.content_deleted_at is None else None
    return None


def waiting_reason(exercise: Exercise, now: dt.datetime) -> str | None:
    """Why an exercise the calendar would move stays where it is, if it does."""
    if exercise.status == ExerciseStatus.DRAFT and exercise.ends_at <= now:
        return "ended while still a draft: an administrator must move its dates or activate it"
    if exercise.status == ExerciseStatus.ARCHIVED and exercise.retention_ends_at <= now:
        blockers = retention.shred_blockers(exercise)
        if blockers:
            return "retention has ended but " + "; ".join(blockers)
    return None


def _candidates(now: dt.datetime) -> list[Exercise]:
    """Exercises with a move due or a reason to wait (closed and archived ones are judged here
    in Python, by dates computed from settings and their own retention)."""
    rows = Exercise.objects.filter(
        Q(status=ExerciseStatus.DRAFT, starts_at__lte=now)
        | Q(status=ExerciseStatus.ACTIVE, ends_at__lte=now)
        | Q(status__in=[ExerciseStatus.CLOSED, ExerciseStatus.ARCHIVED])
        | Q(status=ExerciseStatus.SHREDDED, content_deleted_at__isnull=True)
    ).order_by("pk")
    return [e for e in rows if due_action(e, now) is not None or waiting_reason(e, now)]


def _perform(exercise: Exercise, action: str) -> None:
    if action == "shred":
        key_service.shred_exercise(actor=None, exercise=exercise, actor_label=ACTOR_LABEL)
    elif action == "delete_content":
        retention.delete_content(exercise_id=exercise.pk, actor_label=ACTOR_LABEL)
    else:
        exercise_service.scheduled_transition(
            exercise=exercise, action=action, actor_label=ACTOR_LABEL
        )


def step(exercise_id: int, *, now: dt.datetime) -> tuple[str, str | None] | None:
    """Make the one move due for this exercise now, under its row lock; returns ``(code,
    action)`` or ``(code, None)`` when nothing is due, or ``None`` when another pass holds it."""
    with transaction.atomic():
        exercise = (
            Exercise.objects.select_for_update(skip_locked=True).filter(pk=exercise_id).first()
        )
        if exercise is None:
            return None
        action = due_action(exercise, now)
        if action is not None:
            _perform(exercise, action)
        return exercise.code, action


def run_pass(*, now: dt.datetime | None = None) -> PassReport:
    """Move every due exercise as far as its dates allow. Safe to run twice at once."""
    now = now or timezone.now()
    report = PassReport()
    for candidate in _candidates(now):
        for _ in range(MAX_STEPS):
            try:
                outcome = step(candidate.pk, now=now)
            except LiaisonError as error:
                report.failed.append((candidate.code, str(error.detail)))
                logger.warning("lifecycle: %s: %s", candidate.code, error.detail)
                break
            except Exception as error:  # one exercise's failure must not stop the others
                report.failed.append((candidate.code, type(error).__name__))
                logger.exception("lifecycle: %s failed", candidate.code)
                break
            if outcome is None or outcome[1] is None:
                break
            report.moved.append((outcome[0], outcome[1]))
        exercise = Exercise.objects.filter(pk=candidate.pk).first()
        reason = waiting_reason(exercise, now) if exercise is not None else None
        if reason:
            report.waiting.append((exercise.code, reason))
    return report
