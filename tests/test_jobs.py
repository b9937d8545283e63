"""The job runner (services/jobs.py, ``manage.py jobs``): queued jobs run once, periodic jobs are
queued when due, and a job whose worker is killed mid-way (SIGKILL) is run again by another
worker and completes once."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connections
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from liaison.models import AuditEvent, JobWorker, PeriodicJob, User, UserSession
from liaison.services import jobs
from tests.job_support import held_job

NOW = dt.datetime(2030, 3, 1, 12, 0, tzinfo=dt.UTC)


def finished(task_id: Any) -> DBTaskResult:
    return DBTaskResult.objects.get(pk=task_id)


# --- running queued and periodic jobs -------------------------------------------------------------


@pytest.mark.django_db
def test_a_worker_runs_a_queued_job_once_and_records_its_result() -> None:
    queued = jobs.lifecycle_job.enqueue()

    ran = jobs.Worker(batch=True, schedule=False).run()

    assert ran == 1
    row = finished(queued.id)
    assert row.status == TaskResultStatus.SUCCESSFUL
    assert row.return_value == {"moved": [], "waiting": [], "failed": []}
    assert len(row.worker_ids) == 1
    assert jobs.Worker(batch=True, schedule=False).run() == 0
    assert not JobWorker.objects.exists()  # a worker that stops takes its heartbeat row along


@pytest.mark.django_db
def test_a_worker_queues_each_periodic_job_when_it_is_due_and_not_again_before() -> None:
    with time_machine.travel(NOW, tick=False):
        assert jobs.Worker(batch=True).run() == len(jobs.PERIODIC)
        assert jobs.Worker(batch=True).run() == 0
    runs = DBTaskResult.objects.order_by("task_path")
    assert sorted(row.task_path.rsplit(".", 1)[1] for row in runs) == sorted(
        f"{name}_job" for name in jobs.PERIODIC
    )
    assert {row.status for row in runs} == {TaskResultStatus.SUCCESSFUL}
    schedule = {row.name: row.next_run_at for row in PeriodicJob.objects.all()}
    assert schedule == {name: NOW + jobs.every(name) for name in jobs.PERIODIC}

    with time_machine.travel(NOW + jobs.every("lifecycle"), tick=False):
        assert jobs.Worker(batch=True).run() == 1
    assert PeriodicJob.objects.get(name="lifecycle").last_run_at == NOW + jobs.every("lifecycle")


@pytest.mark.django_db
def test_the_jobs_command_runs_the_queue_in_batch_mode(capsys: Any) -> None:
    queued = jobs.lifecycle_job.enqueue()

    call_command("jobs", "--batch", "--no-schedule", "--queue", "default")

    assert finished(queued.id).status == TaskResultStatus.SUCCESSFUL
    assert "stopped after 1 job(s)" in capsys.readouterr().out


# --- a worker that dies ---------------------------------------------------------------------------


def _running(worker_id: str, *, started: dt.datetime, attempts: int = 1) -> DBTaskResult:
    """A job marked running under ``worker_id``, as a worker leaves it when it is killed."""
    queued = jobs.lifecycle_job.enqueue()
    row = finished(queued.id)
    row.status = TaskResultStatus.RUNNING
    row.started_at = started
    row.worker_ids = [f"earlier-{n}" for n in range(attempts - 1)] + [worker_id]
    row.save()
    return row


@pytest.mark.django_db
def test_a_running_job_of_a_silent_worker_is_queued_again(settings: Any) -> None:
    settings.LIAISON_JOBS_STALE_SECONDS = 60
    JobWorker.objects.create(worker_id="dead", last_seen_at=NOW - dt.timedelta(minutes=5))
    JobWorker.objects.create(worker_id="alive", last_seen_at=NOW - dt.timedelta(seconds=5))
    orphan = _running("dead", started=NOW - dt.timedelta(minutes=6))
    busy = _running("alive", started=NOW - dt.timedelta(minutes=6))
    fresh = _running("unknown", started=NOW - dt.timedelta(seconds=10))

    with time_machine.travel(NOW, tick=False):
        assert jobs.recover_stalled() == [str(orphan.pk)]

    assert finished(orphan.pk).status == TaskResultStatus.READY
    assert finished(busy.pk).status == TaskResultStatus.RUNNING
    assert finished(fresh.pk).status == TaskResultStatus.RUNNING  # claimed too recently to judge
    assert list(JobWorker.objects.values_list("worker_id", flat=True)) == ["alive"]


@pytest.mark.django_db
def test_a_job_that_keeps_losing_its_worker_is_marked_failed(settings: Any) -> None:
    settings.LIAISON_JOBS_MAX_ATTEMPTS = 3
    row = _running("gone", started=NOW - dt.timedelta(hours=1), attempts=3)

    with time_machine.travel(NOW, tick=False):
        assert jobs.recover_stalled() == []

    row = finished(row.pk)
    assert row.status == TaskResultStatus.FAILED
    assert row.exception_class_path == "liaison.services.jobs.WorkerLost"


def _work(journal: str) -> None:
    """A worker process of its own (forked from the test, so on the test database)."""
    for conn in connections.all(initialized_only=True):
        conn.inc_thread_sharing()
        conn.close()
    try:
        worker = jobs.Worker(interval=0.05, schedule=False)
        worker.install_signals()
        worker.run()
    finally:
        os._exit(0)


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_worker_is_killed_mid_way_is_run_again_and_completes_once(
    settings: Any, tmp_path: Path
) -> None:
    settings.LIAISON_JOBS_HEARTBEAT_SECONDS = 1
    settings.LIAISON_JOBS_STALE_SECONDS = 2
    journal = tmp_path / "journal"
    Path(f"{journal}.hold").touch()
    queued = held_job.enqueue(str(journal))
    connections.close_all()  # a forked child must not share the parent's connection
    fork = multiprocessing.get_context("fork")

    first = fork.Process(target=_work, args=(str(journal),))
    first.start()
    _wait_for(lambda: journal.exists() and journal.read_text() == "start\n")
    os.kill(first.pid, signal.SIGKILL)
    first.join(5)
    killed = finished(queued.id)
    assert killed.status == TaskResultStatus.RUNNING  # what a killed worker leaves behind
    Path(f"{journal}.hold").unlink()

    connections.close_all()  # a forked child must not share the parent's connection
    second = fork.Process(target=_work, args=(str(journal),))
    second.start()
    try:
        _wait_for(lambda: finished(queued.id).status == TaskResultStatus.SUCCESSFUL, seconds=30)
    finally:
        os.kill(second.pid, signal.SIGTERM)
        second.join(10)
        connections.close_all()

    assert journal.read_text() == "start\nstart\ndone\n"
    row = finished(queued.id)
    assert row.return_value == "done"
    assert len(row.worker_ids) == 2
    assert row.worker_ids[0] == killed.worker_ids[0] != row.worker_ids[1]
    assert DBTaskResult.objects.count() == 1


def _wait_for(condition: Any, *, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


# --- bookkeeping ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_old_session_rows_and_finished_jobs_are_pruned_and_the_pruning_audited(
    uk_officer: User, settings: Any
) -> None:
    settings.LIAISON_SESSION_KEEP_DAYS = 90
    settings.LIAISON_JOB_RESULT_KEEP_DAYS = 14
    old = NOW - dt.timedelta(days=91)
    ended_long_ago = UserSession.objects.create(
        user=uk_officer, session_key="a" * 32, created_at=old, last_seen_at=old, ended_at=old
    )
    lapsed_long_ago = UserSession.objects.create(
        user=uk_officer, session_key="b" * 32, created_at=old, last_seen_at=old
    )
    recent = UserSession.objects.create(
        user=uk_officer,
        session_key="c" * 32,
        created_at=NOW - dt.timedelta(days=10),
        last_seen_at=NOW - dt.timedelta(days=10),
        ended_at=NOW - dt.timedelta(days=10),
    )
    done = jobs.lifecycle_job.enqueue()
    DBTaskResult.objects.filter(pk=done.id).update(
        status=TaskResultStatus.SUCCESSFUL, finished_at=NOW - dt.timedelta(days=15)
    )
    queued = jobs.lifecycle_job.enqueue()

    with time_machine.travel(NOW, tick=False):
        counts = jobs.prune_bookkeeping()

    assert counts == {"sessions": 2, "jobs": 1, "workers": 0, "exports": 0}
    assert list(UserSession.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not UserSession.objects.filter(pk__in=[ended_long_ago.pk, lapsed_long_ago.pk]).exists()
    assert list(DBTaskResult.objects.values_list("pk", flat=True)) == [queued.db_result.pk]
    event = AuditEvent.objects.get(action="bookkeeping.pruned")
    assert (event.actor_label, event.details) == (
        "system:jobs",
        {"sessions": 2, "jobs": 1, "workers": 0, "exports": 0},
    )
    with time_machine.travel(NOW, tick=False):
        assert jobs.prune_bookkeeping() == {"sessions": 0, "jobs": 0, "workers": 0, "exports": 0}
    assert AuditEvent.objects.filter(action="bookkeeping.pruned").count() == 1


def test_settings_give_every_periodic_job_a_period() -> None:
    assert set(jobs.PERIODIC) <= set(jobs.settings.LIAISON_JOBS_EVERY)
    assert all(jobs.every(name) > dt.timedelta(0) for name in jobs.PERIODIC)
    assert timezone.is_aware(timezone.now())
