"""Background jobs: the periodic ones, the worker that runs every job, and the recovery of jobs
whose worker died (docs/architecture.md, "Background jobs").

Jobs are django-tasks ``@task`` functions (the API Django 6 ships as ``django.tasks``), queued
in the application's own database by django-tasks-db, so the embedded SQLite default and
PostgreSQL hold the queue alike and no broker has to run. A job takes ids, never objects, and is
idempotent: it reads the state it is about to change under a lock and does nothing a second
time, so a retry or a second scheduler pass at once changes nothing twice.

What the library leaves to us is done here:

- periodic jobs: each has a ``PeriodicJob`` row saying when it is next due; a worker (or
  ``manage.py tick``) claims the due ones under their row lock (SKIP LOCKED), moves them a
  period ahead and queues (or runs) them in the same transaction, so each run starts once;
- surviving a killed worker: every worker keeps a heartbeat row (``JobWorker``), refreshed by
  a thread while it works; a job still marked running whose worker has been silent for
  ``LIAISON_JOBS_STALE_SECONDS`` is queued again (at most ``LIAISON_JOBS_MAX_ATTEMPTS`` runs
  in all, then it is marked failed).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.utils import OperationalError
from django.utils import timezone
from django.utils.crypto import get_random_string
from django_tasks import task
from django_tasks.base import Task, TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker as LibraryWorker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from liaison import audit
from liaison.audit import checkpoints
from liaison.models import JobWorker, PeriodicJob
from liaison.services import exports, lifecycle, sessions
from liaison.services.attachments import retention as upload_retention

logger = logging.getLogger(__name__)

ALL_QUEUES = ("default", "exports")


class WorkerLost(Exception):
    """The job's worker stopped (killed, its machine lost) before the job finished, too often."""


# --- the periodic jobs ----------------------------------------------------------------------------


@task()
def lifecycle_job() -> dict[str, Any]:
    """Move exercises by their dates (``services.lifecycle``)."""
    return lifecycle.run_pass().as_dict()


@task()
def audit_checkpoint_job() -> dict[str, Any]:
    """Sign the chains' heads when they moved (``audit.checkpoints``)."""
    written = checkpoints.write_checkpoint(if_changed=True)
    return {"checkpoint": written.name if written else None}


@task()
def purge_uploads_job() -> dict[str, Any]:
    """Remove uploads never sent within a day (``attachments.retention``)."""
    result = upload_retention.purge_unsent()
    return {
        "purged": len(result.purged),
        "bytes_freed": result.bytes_freed,
        "orphans_removed": len(result.orphans_removed),
    }


@task()
def prune_bookkeeping_job() -> dict[str, Any]:
    """Delete old bookkeeping rows (``prune_bookkeeping``)."""
    return prune_bookkeeping()


PERIODIC: dict[str, Task] = {
    "lifecycle": lifecycle_job,
    "audit_checkpoint": audit_checkpoint_job,
    "purge_uploads": purge_uploads_job,
    "prune_bookkeeping": prune_bookkeeping_job,
}


def every(name: str) -> dt.timedelta:
    return dt.timedelta(seconds=settings.LIAISON_JOBS_EVERY[name])


def prune_bookkeeping(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """Old session rows (``sessions.prune_sessions``), finished jobs' rows older than
    ``LIAISON_JOB_RESULT_KEEP_DAYS``, workers long gone and expired auditor exports' files
    (``exports.expire_exports``). Audited when anything went."""
    now = now or timezone.now()
    pruned_sessions = sessions.prune_sessions(now=now)
    job_cutoff = now - dt.timedelta(days=settings.LIAISON_JOB_RESULT_KEEP_DAYS)
    pruned_jobs, _ = DBTaskResult.objects.finished().filter(finished_at__lt=job_cutoff).delete()
    pruned_workers, _ = JobWorker.objects.filter(last_seen_at__lt=job_cutoff).delete()
    counts = {
        "sessions": pruned_sessions,
        "jobs": pruned_jobs,
        "workers": pruned_workers,
        "exports": exports.expire_exports(now=now),
    }
    if any(counts.values()):
        with transaction.atomic():
            audit.record(
                actor=None, actor_label="system:jobs", action="bookkeeping.pruned", **counts
            )
    return counts


def ensure_schedule(now: dt.datetime) -> None:
    """A ``PeriodicJob`` row for every periodic job, first due at once."""
    known = set(PeriodicJob.objects.values_list("name", flat=True))
    missing = [PeriodicJob(name=name, next_run_at=now) for name in PERIODIC if name not in known]
    if missing:
        PeriodicJob.objects.bulk_create(missing, ignore_conflicts=True)


def _claim_due(
    now: dt.datetime, *, force: bool, on_claim: Callable[[PeriodicJob], str]
) -> list[str]:
    """Claim the due periodic jobs (all of them with ``force``) under their row locks, move each
    a period ahead and call ``on_claim`` in the same transaction; returns the names claimed."""
    ensure_schedule(now)
    claimed: list[str] = []
    with transaction.atomic():
        rows = PeriodicJob.objects.select_for_update(skip_locked=True).filter(
            name__in=list(PERIODIC)
        )
        if not force:
            rows = rows.filter(next_run_at__lte=now)
        for row in rows.order_by("name"):
            row.last_run_at = now
            row.next_run_at = now + every(row.name)
            row.last_task_id = on_claim(row)
            row.save(update_fields=["last_run_at", "next_run_at", "last_task_id"])
            claimed.append(row.name)
    return claimed


def enqueue_due(*, now: dt.datetime | None = None) -> list[str]:
    """Queue the periodic jobs that are due (what a worker does between jobs)."""
    return _claim_due(
        now or timezone.now(),
        force=False,
        on_claim=lambda row: str(PERIODIC[row.name].enqueue().id),
    )


@dataclass
class TickReport:
    recovered: list[str] = field(default_factory=list)
    ran: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"recovered": self.recovered, "ran": self.ran}


def tick(*, now: dt.datetime | None = None, force: bool = False) -> TickReport:
    """One scheduler pass for cron (``manage.py tick``): requeue jobs of dead workers, then run
    the due periodic jobs here and now (every one with ``force``). Runs that a worker or another
    tick already claimed are not repeated."""
    now = now or timezone.now()
    report = TickReport(recovered=recover_stalled(now=now))
    for name in _claim_due(now, force=force, on_claim=lambda row: "tick"):
        try:
            report.ran[name] = PERIODIC[name].call()
        except Exception as error:  # one job's failure must not stop the others
            logger.exception("periodic job %s failed", name)
            report.ran[name] = {"error": type(error).__name__}
    return report


# --- surviving a killed worker --------------------------------------------------------------------


def alive_workers(*, now: dt.datetime) -> set[str]:
    cutoff = now - dt.timedelta(seconds=settings.LIAISON_JOBS_STALE_SECONDS)
    return set(
        JobWorker.objects.filter(last_seen_at__gte=cutoff).values_list("worker_id", flat=True)
    )


def recover_stalled(*, now: dt.datetime | None = None) -> list[str]:
    """Queue again the jobs still marked running whose worker has gone silent; a job that has
    lost its worker ``LIAISON_JOBS_MAX_ATTEMPTS`` times is marked failed instead. Returns the
    ids of the jobs queued again."""
    now = now or timezone.now()
    stale = dt.timedelta(seconds=settings.LIAISON_JOBS_STALE_SECONDS)
    requeued: list[str] = []
    running = DBTaskResult.objects.running().filter(started_at__lt=now - stale)
    if not running.exists():
        return requeued
    with exclusive_transaction(running.db):
        alive = alive_workers(now=now)
        for row in running.select_for_update(skip_locked=True):
            owner = row.worker_ids[-1] if row.worker_ids else None
            if owner in alive:
                continue
            if len(row.worker_ids) >= settings.LIAISON_JOBS_MAX_ATTEMPTS:
                row.set_failed(
                    WorkerLost(f"the worker stopped {len(row.worker_ids)} times running this job")
                )
                logger.error("job %s (%s) failed: its workers kept stopping", row.pk, row.task_path)
                continue
            row.status = TaskResultStatus.READY
            row.started_at = None
            row.save(update_fields=["status", "started_at"])
            requeued.append(str(row.pk))
            logger.warning(
                "job %s (%s) lost its worker %s: queued again", row.pk, row.task_path, owner
            )
        JobWorker.objects.filter(last_seen_at__lt=now - stale).exclude(worker_id__in=alive).delete()
    return requeued


# --- the worker -----------------------------------------------------------------------------------


class Worker:
    """Runs queued jobs one at a time (``manage.py jobs``), queues the periodic ones when due,
    and requeues the jobs of dead workers. Start as many as the load needs, on any machines.

    SIGTERM or SIGINT: finish the current job, then stop. A second signal stops at once; the
    unfinished job then stays marked running under this worker and another worker runs it
    again once this one's heartbeat is stale.
    """

    def __init__(
        self,
        *,
        queues: tuple[str, ...] = ALL_QUEUES,
        interval: float = 1.0,
        batch: bool = False,
        max_tasks: int | None = None,
        schedule: bool = True,
        worker_id: str | None = None,
        backend_name: str = "default",
    ) -> None:
        self.queues = queues
        self.interval = interval
        self.batch = batch
        self.max_tasks = max_tasks
        self.schedule = schedule
        self.worker_id = worker_id or f"{socket.gethostname()[:40]}-{get_random_string(12)}"
        self.backend_name = backend_name
        self.running = True
        self.busy = False
        self.done = 0
        self._stop = threading.Event()
        self._housekept_at = 0.0
        self._runner = LibraryWorker(
            queue_names=list(queues),
            interval=interval,
            batch=batch,
            backend_name=backend_name,
            startup_delay=False,
            max_tasks=max_tasks,
            worker_id=self.worker_id,
            excluded_queue_names=[],
        )

    # --- signals and heartbeat ---

    def install_signals(self) -> None:
        """Stop on SIGTERM and SIGINT (until ``restore_signals``)."""
        self._previous_handlers = {
            number: signal.signal(number, self._on_signal)
            for number in (signal.SIGTERM, signal.SIGINT)
        }

    def restore_signals(self) -> None:
        for number, handler in getattr(self, "_previous_handlers", {}).items():
            signal.signal(number, handler)
        self._previous_handlers = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.running:
            logger.warning("second %s: stopping now", signal.strsignal(signum))
            os._exit(1)
        logger.info("%s: stopping after the current job", signal.strsignal(signum))
        self.running = False
        self._stop.set()

    def register(self) -> None:
        now = timezone.now()
        JobWorker.objects.update_or_create(
            worker_id=self.worker_id,
            defaults={
                "host": socket.gethostname()[:200],
                "pid": os.getpid(),
                "started_at": now,
                "last_seen_at": now,
            },
        )

    def beat(self) -> None:
        """Say this worker is alive (re-registering if a recovery pruned it meanwhile)."""
        if not JobWorker.objects.filter(worker_id=self.worker_id).update(
            last_seen_at=timezone.now()
        ):
            self.register()

    def _heartbeat(self) -> None:
        try:
            while not self._stop.wait(settings.LIAISON_JOBS_HEARTBEAT_SECONDS):
                try:
                    self.beat()
                except Exception:
                    logger.exception("job worker heartbeat failed")
        finally:
            connection.close()

    # --- the loop ---

    def housekeeping(self) -> None:
        """Requeue dead workers' jobs and queue the due periodic jobs, at most once per
        heartbeat interval."""
        if time.monotonic() - self._housekept_at < settings.LIAISON_JOBS_HEARTBEAT_SECONDS:
            return
        self._housekept_at = time.monotonic()
        try:
            recover_stalled()
            if self.schedule:
                enqueue_due()
        except OperationalError as error:
            if not is_locked_database_exception(error):
                raise

    def claim(self) -> DBTaskResult | None:
        ready = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if "*" not in self.queues:
            ready = ready.filter(queue_name__in=self.queues)
        try:
            with exclusive_transaction(ready.db):
                job = ready.get_locked()
                if job is not None:
                    job.claim(self.worker_id)
                return job
        except OperationalError as error:
            if is_locked_database_exception(error):
                return None
            raise

    def run(self) -> int:
        """Work until stopped (or, with ``batch``, until the queue is empty). Returns how many
        jobs ran."""
        self.register()
        beating = threading.Thread(target=self._heartbeat, name="job-heartbeat", daemon=True)
        beating.start()
        try:
            while self.running:
                self._fresh_connections()
                self.housekeeping()
                job = self.claim()
                if job is not None:
                    self.busy = True
                    try:
                        self._runner.run_task(job)
                    finally:
                        self.busy = False
                    self.done += 1
                    if self.max_tasks is not None and self.done >= self.max_tasks:
                        break
                    continue
                if self.batch:
                    break
                self._stop.wait(self.interval)
        finally:
            self._stop.set()
            beating.join(timeout=5)
            JobWorker.objects.filter(worker_id=self.worker_id).delete()
            self._fresh_connections()
        return self.done

    @staticmethod
    def _fresh_connections() -> None:
        """Drop broken or expired connections between jobs, as a request would; a worker run
        inside a caller's transaction (a test) keeps its own."""
        if not connection.in_atomic_block:
            close_old_connections()
