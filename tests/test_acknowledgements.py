"""Acknowledgement requests: whom they address, who may acknowledge (members addressed, once,
audited, the room told live), overdue marks, and the auditors' export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Any

import pytest
import time_machine
from django.test import Client

from liaison import events, selectors
from liaison.errors import AccessDenied, Invalid, PermissionDenied, RoomClosed
from liaison.models import Acknowledgement, AuditEvent, ExerciseStatus, Room, User
from liaison.services import acknowledgements
from liaison.services.messaging import send_message
from tests.conftest import CapturedEvents, sign_in

pytestmark = pytest.mark.django_db


def send(user: User, room: Room, body: str = "Please hold MSKU4417702.", **kw: Any):
    kw.setdefault("client_id", f"c-{uuid.uuid4().hex[:12]}")
    return send_message(sender=user, room_id=room.pk, body=body, **kw)


def ack_of(user: User, room: Room, seq: int = 1) -> dict[str, Any]:
    (message,) = [
        m for m in selectors.messages_before(user=user, room_id=room.pk).messages if m["seq"] == seq
    ]
    return message["ack"]


def test_a_request_from_an_agency_addresses_its_members_who_may_post(
    uk_officer: User, gz_officer: User, gz_observer: User, uk_coordinator: User, room: Room
) -> None:
    send(uk_officer, room, ack={"agencies": ["gacc-gz"], "due_minutes": 30})
    ack = ack_of(uk_officer, room)
    assert ack["requested"] == {"agencies": ["gacc-gz"], "users": []}
    assert [row["user"]["id"] for row in ack["by"]] == [gz_officer.pk]
    assert ack["by"][0]["at"] is None
    due = dt.datetime.fromisoformat(ack["due_at"]) - dt.datetime.fromisoformat(ack["created_at"])
    assert due == dt.timedelta(minutes=30)


def test_a_request_from_nobody_in_particular_addresses_everyone_who_may_post_but_the_sender(
    uk_officer: User, gz_officer: User, gz_observer: User, uk_coordinator: User, room: Room
) -> None:
    send(uk_officer, room, ack={})
    ids = {row["user"]["id"] for row in ack_of(gz_officer, room)["by"]}
    assert ids == {gz_officer.pk, uk_coordinator.pk}


def test_a_request_naming_someone_outside_the_exercise_is_refused(
    uk_officer: User, outsider: User, room: Room
) -> None:
    with pytest.raises(Invalid) as refused:
        send(uk_officer, room, ack={"users": [outsider.pk]})
    assert refused.value.field == "ack"
    assert not Acknowledgement.objects.exists()


def test_an_addressee_acknowledges_once_audited_and_the_room_is_told(
    uk_officer: User,
    gz_officer: User,
    room: Room,
    captured_events: CapturedEvents,
    django_capture_on_commit_callbacks: Any,
) -> None:
    send(uk_officer, room, ack={"users": [gz_officer.pk]})
    with django_capture_on_commit_callbacks(execute=True):
        ack = acknowledgements.acknowledge(user=gz_officer, room_id=room.pk, seq=1, ip="10.0.0.5")
    assert ack["by"][0]["user"]["display_name"] == "Li Wei"
    assert ack["by"][0]["at"] is not None
    (row,) = AuditEvent.objects.filter(action="message.acknowledged")
    assert row.actor_id == gz_officer.pk
    assert row.details == {"room": room.pk, "seq": 1, "overdue": False}
    (event,) = [
        e
        for e in captured_events.to_group(events.room_group(room.pk))
        if e["type"] == events.ROOM_ACK_UPDATED
    ]
    assert events.frame_of(event) == {"type": "ack.updated", "room": room.pk, "seq": 1, "ack": ack}
    # A second time changes nothing and writes no second row.
    again = acknowledgements.acknowledge(user=gz_officer, room_id=room.pk, seq=1)
    assert again == ack
    assert AuditEvent.objects.filter(action="message.acknowledged").count() == 1


def test_someone_not_addressed_cannot_acknowledge(
    uk_officer: User, gz_officer: User, uk_coordinator: User, room: Room
) -> None:
    send(uk_officer, room, ack={"users": [gz_officer.pk]})
    with pytest.raises(PermissionDenied):
        acknowledgements.acknowledge(user=uk_coordinator, room_id=room.pk, seq=1)
    send(uk_officer, room, body="no request")
    with pytest.raises(PermissionDenied):
        acknowledgements.acknowledge(user=gz_officer, room_id=room.pk, seq=2)


def test_outsiders_and_auditors_cannot_acknowledge(
    uk_officer: User, gz_officer: User, outsider: User, auditor: User, room: Room
) -> None:
    send(uk_officer, room, ack={})
    with pytest.raises(AccessDenied):
        acknowledgements.acknowledge(user=outsider, room_id=room.pk, seq=1)
    with pytest.raises(PermissionDenied):
        acknowledgements.acknowledge(user=auditor, room_id=room.pk, seq=1)


def test_a_removed_member_cannot_acknowledge(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, ack={"users": [gz_officer.pk]})
    gz_officer.memberships.update(removed_at=dt.datetime.now(dt.UTC))
    with pytest.raises(AccessDenied):
        acknowledgements.acknowledge(user=gz_officer, room_id=room.pk, seq=1)


def test_nothing_is_acknowledged_in_a_closed_exercise(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, ack={})
    room.exercise.status = ExerciseStatus.CLOSED
    room.exercise.save(update_fields=["status"])
    with pytest.raises(RoomClosed):
        acknowledgements.acknowledge(user=gz_officer, room_id=room.pk, seq=1)


def test_a_late_acknowledgement_is_recorded_as_overdue_and_pending_ones_count(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room, ack={"users": [gz_officer.pk], "due_minutes": 5})
    assert selectors.attention_counts(user=gz_officer)[room.pk]["acks"] == 1
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)):
        acknowledgements.acknowledge(user=gz_officer, room_id=room.pk, seq=1)
    assert AuditEvent.objects.get(action="message.acknowledged").details["overdue"] is True
    assert selectors.attention_counts(user=gz_officer)[room.pk]["acks"] == 0


def test_auditors_export_acknowledgements_with_their_times_and_the_export_is_audited(
    uk_officer: User, gz_officer: User, uk_coordinator: User, auditor: User, room: Room
) -> None:
    send(uk_officer, room, ack={})
    acknowledgements.acknowledge(user=gz_officer, room_id=room.pk, seq=1)
    client = Client()
    sign_in(client, auditor)
    response = client.get(f"/audit/exercises/{room.exercise_id}/acknowledgements.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["addressee"], r["acknowledged_at"] != "") for r in rows] == [
        ("James Carter", False),
        ("Li Wei", True),
    ]
    assert rows[0]["sender"] == "Olivia Hughes"
    exported = AuditEvent.objects.filter(action="audit.exported", actor=auditor).last()
    assert exported.details["what"] == "acknowledgements"


def test_officers_cannot_export_acknowledgements(uk_officer: User, room: Room) -> None:
    client = Client()
    sign_in(client, uk_officer)
    response = client.get(f"/audit/exercises/{room.exercise_id}/acknowledgements.csv")
    assert response.status_code == 404


def test_acknowledging_over_http(uk_officer: User, gz_officer: User, room: Room) -> None:
    send(uk_officer, room, ack={"users": [gz_officer.pk]})
    client = Client()
    sign_in(client, gz_officer)
    response = client.post(f"/api/v1/rooms/{room.pk}/messages/1/ack")
    assert response.status_code == 200
    assert response.json()["ack"]["by"][0]["at"] is not None
    response = client.post(f"/api/v1/rooms/{room.pk}/messages/9/ack")
    assert response.status_code == 404


def test_the_auditors_transcript_shows_acknowledgements_markings_and_file_names(
    uk_officer: User, gz_officer: User, auditor: User, room: Room, settings: Any, tmp_path: Any
) -> None:
    from liaison.services import attachments

    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "attachments")},
        },
    }
    upload = attachments.upload_attachment(
        uploader=uk_officer,
        room_id=room.pk,
        filename="bill-of-lading-FXT889.pdf",
        declared_type="application/pdf",
        chunks=[b"%PDF-1.7\n" + b"0" * 500],
    )
    send(
        uk_officer,
        room,
        attachment_ids=[upload.pk],
        marking="OFFICIAL-SENSITIVE",
        ack={"users": [gz_officer.pk]},
    )
    acknowledgements.acknowledge(user=gz_officer, room_id=room.pk, seq=1)
    page = sign_in(Client(), auditor).get(f"/audit/rooms/{room.pk}/")
    text = page.content.decode()
    assert "bill-of-lading-FXT889.pdf" in text
    assert f'href="/api/v1/attachments/{upload.pk}"' in text
    assert "OFFICIAL-SENSITIVE" in text
    assert "Acknowledgement requested" in text
    assert "Li Wei (GACC Guangzhou Customs)" in text
