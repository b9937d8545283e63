from __future__ import annotations

from django.db import models
from django.utils import timezone


class JobWorker(models.Model):
    """A running job worker (``manage.py jobs``) and its heartbeat.

    The queue itself is django-tasks-db's table; this tells a job whose worker is alive from one
    whose worker was killed, so the second can be queued again (``services.jobs``).
    """

    worker_id = models.CharField(max_length=64, unique=True)
    host = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["started_at"]

    def __str__(self) -> str:
        return self.worker_id


class PeriodicJob(models.Model):
    """When a periodic job is next due. Claimed under its row lock, so however many workers and
    ``manage.py tick`` runs there are, one of them starts each run."""

    name = models.CharField(max_length=64, unique=True)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
