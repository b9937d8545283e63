"""Attention on the server: activity to the exercise, notices to the people a message reaches,
exact counts after a read, and content-free, throttled e-mail to those with no open socket."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client

from liaison import events
from liaison.models import AuditEvent, Presence, Room, RoomPreference, User
from liaison.services import attention
from liaison.services.messaging import mark_read, send_message
from tests.conftest import CapturedEvents, sign_in

pytestmark = pytest.mark.django_db

SECRET = "Hold MSKU4417702: suspected mislabelled e-waste."


@pytest.fixture(autouse=True)
def _jobs_run_at_once(settings: Any) -> None:
    """E-mail goes out from a background job; here the job runs as it is queued."""
    settings.TASKS = {
        "default": {
            "BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
            "QUEUES": ["default", "exports"],
        }
    }


def send(user: User, room: Room, body: str = SECRET, **kw: Any):
    kw.setdefault("client_id", f"c-{uuid.uuid4().hex[:12]}")
    return send_message(sender=user, room_id=room.pk, body=body, **kw)


def frames(captured: CapturedEvents, group: str, kind: str) -> list[dict[str, Any]]:
    return [events.frame_of(e) for e in captured.to_group(group) if e["type"] == kind]


def online(user: User, room: Room) -> None:
    Presence.objects.create(channel_name=f"c-{uuid.uuid4().hex}", user=user, room=room)


def test_every_message_is_announced_to_the_exercise_without_its_text(
    uk_officer: User,
    room: Room,
    captured_events: CapturedEvents,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        send(uk_officer, room)
    (activity,) = frames(
        captured_events, events.exercise_group(room.exercise_id), events.ATTENTION_ACTIVITY
    )
    assert activity | {"at": None} == {
        "type": "activity",
        "exercise": room.exercise_id,
        "room": room.pk,
        "seq": 1,
        "sender": uk_officer.pk,
        "kind": "text",
        "at": None,
    }
    assert "MSKU" not in str(captured_events.to_group(events.exercise_group(room.exercise_id)))


def test_the_people_a_message_reaches_are_told_personally_why(
    uk_officer: User,
    gz_officer: User,
    uk_coordinator: User,
    gz_observer: User,
    room: Room,
    captured_events: CapturedEvents,
    django_capture_on_commit_callbacks: Any,
) -> None:
    send(gz_officer, room, body="Which container?")
    with django_capture_on_commit_callbacks(execute=True):
        send(
            uk_officer,
            room,
            reply_to=1,
            mentions={"users": [gz_observer.pk]},
            ack={"users": [uk_coordinator.pk]},
        )
    reasons = {
        user.pk: [
            f["reason"]
            for f in frames(captured_events, events.user_group(user.pk), events.ATTENTION_NOTICE)
        ]
        for user in (uk_officer, gz_officer, uk_coordinator, gz_observer)
    }
    assert reasons == {
        uk_officer.pk: [],
        gz_officer.pk: ["reply"],
        uk_coordinator.pk: ["ack"],
        gz_observer.pk: ["mention"],
    }
    (notice,) = frames(captured_events, events.user_group(gz_officer.pk), events.ATTENTION_NOTICE)
    assert notice["room_title"] == "General"
    assert notice["exercise_code"] == "CFE-TEST-WASTE"
    assert notice["sender"]["display_name"] == "Olivia Hughes"
    assert "MSKU" not in str(notice)


def test_a_read_sends_the_readers_sockets_their_exact_counts(
    uk_officer: User,
    gz_officer: User,
    room: Room,
    captured_events: CapturedEvents,
    django_capture_on_commit_callbacks: Any,
) -> None:
    send(uk_officer, room, mentions={"users": [gz_officer.pk]})
    send(uk_officer, room)
    with django_capture_on_commit_callbacks(execute=True):
        mark_read(user=gz_officer, room_id=room.pk, seq=1)
    (counts,) = frames(captured_events, events.user_group(gz_officer.pk), events.ATTENTION_COUNTS)
    row = counts["rooms"][str(room.pk)]
    assert counts["full"] is False
    assert (row["unread"], row["mentions"], row["read_seq"], row["last_seq"]) == (1, 0, 1, 2)


# --- e-mail ---------------------------------------------------------------------------------------


def test_a_mentioned_officer_with_no_open_socket_gets_an_email_without_message_text(
    uk_officer: User, gz_officer: User, room: Room, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        send(uk_officer, room, mentions={"users": [gz_officer.pk]})
    (letter,) = mail.outbox
    assert letter.to == ["li.wei@gz.example"]
    assert letter.subject == "You were mentioned in CFE-TEST-WASTE #General"
    assert f"/rooms/{room.pk}/" in letter.body
    for secret in ("MSKU", "mislabelled", "Olivia"):
        assert secret not in letter.subject + letter.body
    (row,) = AuditEvent.objects.filter(action="notification.emailed")
    assert row.details["recipients"] == [gz_officer.pk]
    assert row.details["reasons"] == {str(gz_officer.pk): "mention"}


def test_the_email_is_queued_as_a_job_not_sent_by_the_thread_that_stores_the_message(
    uk_officer: User, gz_officer: User, room: Room, settings: Any
) -> None:
    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "exports"]}
    }
    send(uk_officer, room, mentions={"users": [gz_officer.pk]})
    assert mail.outbox == []
    (job,) = DBTaskResult.objects.all()
    assert job.task_path.endswith("notification_email_job")
    assert "MSKU" not in str(job.args_kwargs)
    assert "li.wei@gz.example" in str(job.args_kwargs)


def test_an_officer_with_an_open_socket_is_not_emailed(
    uk_officer: User,
    gz_officer: User,
    lane_room: Room,
    room: Room,
    django_capture_on_commit_callbacks: Any,
) -> None:
    online(gz_officer, lane_room)  # any room of theirs counts: they are at their desk
    with django_capture_on_commit_callbacks(execute=True):
        send(uk_officer, room, mentions={"users": [gz_officer.pk]})
    assert mail.outbox == []


def test_emails_are_throttled_to_one_per_room_every_fifteen_minutes(
    uk_officer: User,
    gz_officer: User,
    room: Room,
    lane_room: Room,
    django_capture_on_commit_callbacks: Any,
) -> None:
    start = dt.datetime.now(dt.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        send(uk_officer, room, mentions={"users": [gz_officer.pk]})
        send(uk_officer, room, ack={"users": [gz_officer.pk]})
        send(uk_officer, lane_room, mentions={"users": [gz_officer.pk]})
    assert [m.subject for m in mail.outbox] == [
        "You were mentioned in CFE-TEST-WASTE #General",
        "You were mentioned in CFE-TEST-WASTE #Felixstowe–Nansha",
    ]
    later = time_machine.travel(start + dt.timedelta(minutes=16))
    with later, django_capture_on_commit_callbacks(execute=True):
        send(uk_officer, room, ack={"users": [gz_officer.pk]})
    assert mail.outbox[-1].subject == "Acknowledgement requested in CFE-TEST-WASTE #General"
    assert len(mail.outbox) == 3


def test_no_email_when_switched_off_or_the_room_is_muted(
    uk_officer: User,
    gz_officer: User,
    uk_coordinator: User,
    room: Room,
    django_capture_on_commit_callbacks: Any,
) -> None:
    gz_officer.email_notifications = False
    gz_officer.save(update_fields=["email_notifications"])
    attention.set_room_preferences(user=uk_coordinator, room_id=room.pk, muted=True)
    with django_capture_on_commit_callbacks(execute=True):
        send(uk_officer, room, mentions={"users": [gz_officer.pk, uk_coordinator.pk]})
    assert mail.outbox == []


def test_an_alert_emails_every_member_not_connected_and_nobody_outside(
    uk_officer: User,
    gz_officer: User,
    gz_observer: User,
    outsider: User,
    room: Room,
    django_capture_on_commit_callbacks: Any,
) -> None:
    online(gz_observer, room)
    with django_capture_on_commit_callbacks(execute=True):
        send(uk_officer, room, kind="alert")
    assert [m.to for m in mail.outbox] == [["li.wei@gz.example"]]
    assert mail.outbox[0].subject == "Alert in CFE-TEST-WASTE #General"


def test_the_email_is_in_the_recipients_language(
    uk_officer: User, gz_officer: User, room: Room, django_capture_on_commit_callbacks: Any
) -> None:
    gz_officer.language = "zh-hans"
    gz_officer.save(update_fields=["language"])
    with django_capture_on_commit_callbacks(execute=True):
        send(uk_officer, room, mentions={"users": [gz_officer.pk]})
    assert "CFE-TEST-WASTE" in mail.outbox[0].subject
    assert "You were mentioned" not in mail.outbox[0].subject


# --- room settings --------------------------------------------------------------------------------


def test_members_mute_a_room_over_http_and_auditors_have_no_settings(
    gz_officer: User, auditor: User, room: Room
) -> None:
    client = sign_in(Client(), gz_officer)
    response = client.post(
        f"/api/v1/rooms/{room.pk}/preferences", {"muted": True}, content_type="application/json"
    )
    assert response.json() == {"room": room.pk, "muted": True, "notify_all": False}
    assert RoomPreference.objects.get(user=gz_officer, room=room).muted is True
    counts = client.get("/api/v1/attention").json()
    assert counts["rooms"][str(room.pk)]["muted"] is True
    client = sign_in(Client(), auditor)
    response = client.post(
        f"/api/v1/rooms/{room.pk}/preferences", {"muted": True}, content_type="application/json"
    )
    assert response.status_code == 403
