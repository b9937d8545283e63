"""The exercise's life by the calendar (services/lifecycle.py, ``manage.py tick``): it opens on
its start date, closes on its end date, is archived and then shredded, each move audited and
announced in its rooms, and two passes at once never move an exercise twice."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
import time_machine
from channels.db import database_sync_to_async
from django.core.management import call_command
from django.db import connection, connections

from liaison import events
from liaison.crypto import records
from liaison.models import AuditEvent, Exercise, ExerciseStatus, Message, MessageKind, Room, User
from liaison.services import exercises as exercise_service
from liaison.services import lifecycle, messaging
from liaison.services.messaging import SYSTEM_SENDER_EMAIL
from tests.factories import ExerciseFactory, MembershipFactory, RoomFactory
from tests.test_realtime_consumer import joined

START = dt.datetime(2030, 7, 1, 8, 0, tzinfo=dt.UTC)
END = dt.datetime(2030, 7, 31, 18, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def planned(admin: User, hmrc: Any, gacc: Any, settings: Any) -> Exercise:
    """A draft planned for July 2030 with 60 days' retention, archived 30 days after closing."""
    settings.LIAISON_ARCHIVE_AFTER_DAYS = 30
    with time_machine.travel(START - 10 * DAY, tick=False):
        return exercise_service.create_exercise(
            actor=admin,
            code="CFE-2030-07",
            title="Plastic waste, summer",
            agencies=[hmrc, gacc],
            starts_at=START,
            ends_at=END,
            retention_days=60,
        )


def notices(exercise: Exercise) -> list[str]:
    rows = Message.objects.filter(room__exercise=exercise, kind=MessageKind.SYSTEM).order_by("pk")
    return [records.open_message_body(row) for row in rows]


def lifecycle_events(exercise: Exercise) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(exercise=exercise, actor_label=lifecycle.ACTOR_LABEL).order_by(
            "seq"
        )
    )


def pass_at(moment: dt.datetime) -> lifecycle.PassReport:
    with time_machine.travel(moment, tick=False):
        return lifecycle.run_pass()


@pytest.mark.django_db
def test_an_exercise_opens_closes_and_archives_on_schedule(
    planned: Exercise, django_capture_on_commit_callbacks: Any, captured_events: Any
) -> None:
    assert pass_at(START - MINUTE).moved == []
    planned.refresh_from_db()
    assert planned.status == ExerciseStatus.DRAFT

    assert pass_at(START + MINUTE).moved == [("CFE-2030-07", "activate")]
    planned.refresh_from_db()
    assert planned.status == ExerciseStatus.ACTIVE

    with django_capture_on_commit_callbacks(execute=True):
        assert pass_at(END + MINUTE).moved == [("CFE-2030-07", "close")]
    planned.refresh_from_db()
    assert (planned.status, planned.closed_at) == (ExerciseStatus.CLOSED, END + MINUTE)
    general = planned.rooms.get()
    closed = list(captured_events.to_group(events.room_group(general.pk)))
    assert [e["type"] for e in closed] == [events.ROOM_MESSAGE_NEW, events.ROOM_CLOSED]
    assert closed[1]["code"] == 4409

    assert pass_at(END + 29 * DAY).moved == []
    assert pass_at(END + 30 * DAY + MINUTE).moved == [("CFE-2030-07", "archive")]
    planned.refresh_from_db()
    assert planned.status == ExerciseStatus.ARCHIVED

    audited = lifecycle_events(planned)
    assert [e.action for e in audited] == [
        "exercise.activated",
        "exercise.closed",
        "exercise.archived",
    ]
    assert all(e.actor_id is None and e.details["scheduled"] is True for e in audited)
    assert all(e.details["announced_in"] == [general.pk] for e in audited)
    assert notices(planned) == [
        "Exercise CFE-2030-07 is now active: its rooms are open for posting.\n"
        "专项行动 CFE-2030-07 现已启动：其聊天室已开放发言。",
        "Exercise CFE-2030-07 has closed: its rooms are read-only from now on.\n"
        "专项行动 CFE-2030-07 已结束：其聊天室从现在起为只读。",
        "Exercise CFE-2030-07 has been archived: from now on only auditors can read it.\n"
        "专项行动 CFE-2030-07 已归档：从现在起只有审计员可以查阅。",
    ]
    sender = Message.objects.filter(kind=MessageKind.SYSTEM).first().sender
    assert (sender.email, sender.is_active, sender.has_usable_password()) == (
        SYSTEM_SENDER_EMAIL,
        False,
        False,
    )


@pytest.mark.django_db
def test_a_second_pass_at_the_same_moment_changes_nothing(planned: Exercise) -> None:
    pass_at(START + MINUTE)
    before = AuditEvent.objects.count(), Message.objects.count()

    assert pass_at(START + MINUTE).moved == []
    assert (AuditEvent.objects.count(), Message.objects.count()) == before


@pytest.mark.django_db
def test_a_pass_after_a_long_pause_catches_up_one_audited_move_at_a_time(
    planned: Exercise, settings: Any
) -> None:
    settings.LIAISON_ARCHIVE_AFTER_DAYS = 0
    pass_at(START + MINUTE)

    report = pass_at(END + 45 * DAY)

    assert report.moved == [("CFE-2030-07", "close"), ("CFE-2030-07", "archive")]
    # Closed at this pass, not at its planned end: its retention runs from the closing.
    planned.refresh_from_db()
    assert planned.status == ExerciseStatus.ARCHIVED
    assert planned.retention_ends_at == END + 105 * DAY
    assert [e.action for e in lifecycle_events(planned)] == [
        "exercise.activated",
        "exercise.closed",
        "exercise.archived",
    ]


@pytest.mark.django_db
def test_a_draft_whose_end_passed_waits_for_an_administrator(planned: Exercise) -> None:
    Exercise.objects.filter(pk=planned.pk).update(starts_at=START - 60 * DAY, ends_at=START)

    report = pass_at(START + MINUTE)

    assert report.moved == []
    ((code, reason),) = report.waiting
    assert code == "CFE-2030-07"
    assert reason.startswith("ended while still a draft")
    planned.refresh_from_db()
    assert planned.status == ExerciseStatus.DRAFT


@pytest.mark.django_db
def test_an_administrator_s_move_is_announced_in_every_room_too(
    admin: User, exercise: Exercise, room: Room, lane_room: Room
) -> None:
    exercise_service.close_exercise(actor=admin, exercise=exercise)

    rows = Message.objects.filter(kind=MessageKind.SYSTEM).order_by("room_id")
    assert [row.room_id for row in rows] == sorted([room.pk, lane_room.pk])
    event = AuditEvent.objects.get(action="exercise.closed")
    assert event.actor_id == admin.pk
    assert "scheduled" not in event.details
    # Each notice is on its room's chain like any message; the move's own event covers them
    # and no audit event is written per notice.
    for row in rows:
        assert Room.objects.filter(
            pk=row.room_id, last_seq=row.seq, chain_head=row.chain_hash
        ).exists()
    assert not AuditEvent.objects.filter(target_type="message").exists()


@pytest.mark.django_db
def test_a_notice_is_posted_once_per_room_and_move(room: Room) -> None:
    first = messaging.post_notice(room_id=room.pk, client_id="exercise-close", body="Closed.")
    again = messaging.post_notice(room_id=room.pk, client_id="exercise-close", body="Closed.")

    assert first is not None
    assert again is not None
    assert first.pk == again.pk
    assert Message.objects.filter(room=room).count() == 1


@pytest.mark.django_db
def test_tick_runs_the_lifecycle_and_the_other_periodic_jobs_once_when_due(
    planned: Exercise, capsys: Any
) -> None:
    with time_machine.travel(START + MINUTE, tick=False):
        call_command("tick")
        first = capsys.readouterr().out
        call_command("tick")
        second = capsys.readouterr().out

    assert '"moved": [{"action": "activate", "exercise": "CFE-2030-07"}]' in first
    for name in ("audit_checkpoint", "purge_uploads", "prune_bookkeeping"):
        assert f"{name}: " in first
    assert second.strip() == "Nothing was due."
    planned.refresh_from_db()
    assert planned.status == ExerciseStatus.ACTIVE


# --- open sockets -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_an_open_socket_sees_the_notice_then_closes_4409_when_its_room_turns_read_only(
    ws_headers: Any, admin: User, hmrc: Any, uk_officer: User
) -> None:
    exercise = await database_sync_to_async(ExerciseFactory)(
        code="CFE-ENDING", created_by=admin, agencies=[hmrc]
    )
    room = await database_sync_to_async(RoomFactory)(exercise=exercise)
    await database_sync_to_async(MembershipFactory)(exercise=exercise, user=uk_officer)
    olivia = await joined(ws_headers, uk_officer, room)

    await database_sync_to_async(Exercise.objects.filter(pk=exercise.pk).update)(
        ends_at=exercise.starts_at + MINUTE
    )
    report = await database_sync_to_async(lifecycle.run_pass)()

    assert report.moved == [("CFE-ENDING", "close")]
    notice = await olivia.expect("message.new")
    assert notice["message"]["kind"] == "system"
    assert notice["message"]["sender"]["display_name"] == "Liaison"
    assert "read-only" in notice["message"]["body"]
    assert await olivia.closed_with(timeout=1) == 4409
    await olivia.close()

    again = await joined(ws_headers, uk_officer, room)
    await again.send({"type": "message.send", "client_id": "late-1", "body": "anyone there?"})
    error = await again.expect("error")
    assert (error["code"], error["client_id"]) == ("room_closed", "late-1")
    await again.close()


# --- two passes at once (PostgreSQL) ---------------------------------------------------------------


def _needs_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL=postgres://...): row locks with SKIP LOCKED")


def _at_once(count: int, work: Any) -> list[Any]:
    """Run ``work`` in ``count`` threads released together; each thread has its own connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = work()
        except Exception as error:  # surfaced by the assertion below
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not [r for r in results if isinstance(r, Exception)], results
    return results


@pytest.mark.django_db(transaction=True)
def test_two_passes_at_once_move_each_exercise_once(admin: User, hmrc: Any) -> None:
    _needs_postgresql()
    ending = []
    for number in range(6):
        exercise = ExerciseFactory(code=f"CFE-RACE-{number}", created_by=admin, agencies=[hmrc])
        RoomFactory(exercise=exercise)
        ending.append(exercise.pk)
    Exercise.objects.filter(pk__in=ending).update(
        ends_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        starts_at=dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
    )

    reports = _at_once(4, lifecycle.run_pass)

    moved = [move for report in reports for move in report.moved]
    assert sorted(moved) == sorted((f"CFE-RACE-{n}", "close") for n in range(6))
    assert AuditEvent.objects.filter(action="exercise.closed").count() == 6
    assert Message.objects.filter(kind=MessageKind.SYSTEM).count() == 6
    assert set(Exercise.objects.values_list("status", flat=True)) == {ExerciseStatus.CLOSED}


@pytest.mark.django_db(transaction=True)
def test_two_ticks_at_once_run_each_periodic_job_once(admin: User) -> None:
    _needs_postgresql()
    from liaison.services import jobs

    reports = _at_once(3, jobs.tick)

    ran = sorted(name for report in reports for name in report.ran)
    assert ran == sorted(jobs.PERIODIC)
