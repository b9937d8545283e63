"""The audit chain itself: appends, append-only enforcement, concurrency."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

from liaison import audit
from liaison.audit import verify as audit_verify
from liaison.errors import AccessDenied
from liaison.models import AuditEvent, User
from tests.audit_helpers import record_events


@pytest.mark.django_db
def test_each_event_is_chained_to_the_one_before(uk_officer: User) -> None:
    first = audit.record(actor=uk_officer, action="test.first", target=uk_officer, ip="10.0.0.1")
    second = audit.record(actor=None, actor_label="cli", action="test.second", note="x")

    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == audit.GENESIS_HASH
    assert second.prev_hash == first.hash
    stored = AuditEvent.objects.get(seq=1)
    assert audit.compute_hash(stored) == stored.hash
    assert (stored.actor_label, stored.target_type, stored.target_id) == (
        "olivia@hmrc.example",
        "user",
        str(uk_officer.pk),
    )


@pytest.mark.django_db
def test_an_event_still_hashes_the_same_after_the_database_round_trip() -> None:
    audit.record(
        actor=None,
        action="test.round_trip",
        ip="::ffff:192.0.2.7",
        nested={"b": [1, 2.5, "三"], "a": None},
        when=__import__("datetime").date(2026, 7, 1),
    )
    stored = AuditEvent.objects.get(seq=1)
    assert stored.ip == "192.0.2.7"
    assert stored.details["when"] == "2026-07-01"
    assert audit.compute_hash(stored) == stored.hash
    assert audit_verify.verify(checkpoints=False).ok


@pytest.mark.django_db
def test_an_unparseable_address_is_not_stored() -> None:
    event = audit.record(actor=None, action="test.ip", ip="not-an-address")
    assert event.ip is None
    assert audit.normalise_ip("2001:DB8::1") == "2001:db8::1"


@pytest.mark.django_db
def test_a_denied_attempt_is_recorded_with_where_it_came_from(uk_officer: User) -> None:
    error = AccessDenied(target_type="room", target_id="999")
    audit.record_denied(
        actor=uk_officer, error=error, ip="10.0.0.9", via="ws", path="/ws/rooms/999/"
    )
    event = AuditEvent.objects.get(action="access.denied")
    assert (event.actor_id, event.target_type, event.target_id) == (uk_officer.pk, "room", "999")
    assert event.details == {"via": "ws", "path": "/ws/rooms/999/", "reason": "not_found"}


# --- append-only in the database ------------------------------------------------------------------


@pytest.mark.django_db
def test_updating_an_audit_row_is_refused_by_the_database() -> None:
    record_events(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).update(action="covered.up")
    assert AuditEvent.objects.get(seq=2).action == "test.event"


@pytest.mark.django_db
def test_saving_a_changed_audit_row_is_refused_by_the_database() -> None:
    record_events(1)
    event = AuditEvent.objects.get(seq=1)
    event.actor_label = "someone-else"
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.save()


@pytest.mark.django_db
def test_deleting_an_audit_row_is_refused_by_the_database() -> None:
    record_events(3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=3).delete()
    assert AuditEvent.objects.count() == 3


@pytest.mark.django_db
def test_raw_sql_cannot_update_or_delete_audit_rows_either() -> None:
    record_events(2)
    for statement in (
        "UPDATE liaison_auditevent SET action = 'x'",
        "DELETE FROM liaison_auditevent",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db
def test_the_triggers_exist_on_this_database() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'liaison_auditevent'::regclass "
                "AND NOT tgisinternal ORDER BY tgname"
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'liaison_auditevent' ORDER BY name"
            )
        names = [row[0] for row in cursor.fetchall()]
    expected = ["liaison_auditevent_no_delete", "liaison_auditevent_no_update"]
    if connection.vendor == "postgresql":  # SQLite has no TRUNCATE (migration 0005)
        expected = sorted([*expected, "liaison_auditevent_no_truncate"])
    assert names == expected


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_eight_threads_keep_the_chain_valid() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite has one writer at a time by construction (IMMEDIATE transactions); the "
            "concurrent appenders test PostgreSQL's advisory lock"
        )
    per_thread, threads = 25, 8
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            start.wait()
            for number in range(per_thread):
                with transaction.atomic():
                    audit.record(actor=None, action="test.concurrent", worker=worker, n=number)
        except BaseException as exc:  # reported below, in the main thread
            failures.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=append, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)

    assert not failures, failures
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, threads * per_thread + 1))
    report = audit_verify.verify(checkpoints=False)
    assert report.ok, report.summary()
    assert report.events_checked == threads * per_thread


@pytest.mark.django_db
def test_an_event_stamped_on_a_whole_second_still_verifies() -> None:
    import datetime as dt

    import time_machine

    with time_machine.travel(dt.datetime(2026, 7, 1, 12, 0, 0, tzinfo=dt.UTC), tick=False):
        event = audit.record(actor=None, action="test.whole_second")
    assert event.created_at.microsecond == 0
    assert audit_verify.verify(checkpoints=False).ok
