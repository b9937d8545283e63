"""Handling markings and alerts: every message and attachment carries the exercise's marking,
unknown markings are refused, and observers are kept from downloading files above the
exercise's limit on the server."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from liaison import selectors
from liaison.errors import Invalid, PermissionDenied
from liaison.models import Attachment, AuditEvent, Exercise, Message, Room, User
from liaison.services import attachments, markings
from liaison.services.messaging import send_message
from tests.conftest import sign_in

pytestmark = pytest.mark.django_db


def send(user: User, room: Room, body: str = "Seal intact.", **kw: Any):
    kw.setdefault("client_id", f"c-{uuid.uuid4().hex[:12]}")
    return send_message(sender=user, room_id=room.pk, body=body, **kw)


def upload(user: User, room: Room) -> Attachment:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buffer, "PNG")
    return attachments.upload_attachment(
        uploader=user,
        room_id=room.pk,
        filename="xray.png",
        declared_type="image/png",
        chunks=[buffer.getvalue()],
    )


def limit_observers(exercise: Exercise, admin: User) -> None:
    markings.set_markings(
        actor=admin,
        exercise=exercise,
        markings=["OFFICIAL", "OFFICIAL-SENSITIVE"],
        default="OFFICIAL",
        observer_download_limit="OFFICIAL",
    )


def test_a_message_carries_the_default_marking_unless_another_is_named(
    uk_officer: User, gz_officer: User, room: Room
) -> None:
    send(uk_officer, room)
    send(uk_officer, room, marking="OFFICIAL-SENSITIVE")
    assert list(Message.objects.order_by("seq").values_list("marking", flat=True)) == [
        "OFFICIAL",
        "OFFICIAL-SENSITIVE",
    ]
    page = selectors.messages_before(user=gz_officer, room_id=room.pk).messages
    assert [m["marking"] for m in page] == ["OFFICIAL", "OFFICIAL-SENSITIVE"]


def test_a_marking_the_exercise_does_not_define_is_refused(uk_officer: User, room: Room) -> None:
    with pytest.raises(Invalid) as refused:
        send(uk_officer, room, marking="TOP SECRET")
    assert refused.value.field == "marking"
    assert not Message.objects.exists()


def test_attachments_carry_the_marking_of_their_message(uk_officer: User, room: Room) -> None:
    file = upload(uk_officer, room)
    send(uk_officer, room, body="", attachment_ids=[file.pk], marking="OFFICIAL-SENSITIVE")
    file.refresh_from_db()
    assert file.marking == "OFFICIAL-SENSITIVE"
    (message,) = selectors.messages_before(user=uk_officer, room_id=room.pk).messages
    assert message["attachments"][0]["marking"] == "OFFICIAL-SENSITIVE"


def test_an_alert_is_sent_as_such(uk_officer: User, room: Room) -> None:
    send(uk_officer, room, body="Vessel diverted!", kind="alert")
    assert Message.objects.get().kind == "alert"


def test_observers_cannot_download_files_above_the_limit_members_can(
    admin: User, uk_officer: User, gz_officer: User, gz_observer: User, room: Room
) -> None:
    limit_observers(room.exercise, admin)
    plain = upload(uk_officer, room)
    send(uk_officer, room, body="", attachment_ids=[plain.pk])
    sensitive = upload(uk_officer, room)
    send(uk_officer, room, body="", attachment_ids=[sensitive.pk], marking="OFFICIAL-SENSITIVE")

    attachments.open_download(user=gz_observer, attachment_id=plain.pk)
    with pytest.raises(PermissionDenied):
        attachments.open_download(user=gz_observer, attachment_id=sensitive.pk)
    with pytest.raises(PermissionDenied):
        attachments.open_thumbnail(user=gz_observer, attachment_id=sensitive.pk)
    attachments.open_download(user=gz_officer, attachment_id=sensitive.pk)

    client = sign_in(Client(), gz_observer)
    assert client.get(f"/api/v1/attachments/{sensitive.pk}").status_code == 403
    denied = AuditEvent.objects.filter(action="access.denied", actor=gz_observer).last()
    assert denied is not None


def test_only_administrators_set_markings_and_it_is_audited(
    admin: User, uk_coordinator: User, room: Room
) -> None:
    client = sign_in(Client(), uk_coordinator)
    body = {"markings": ["OFFICIAL", "SENSITIVE"], "default": "OFFICIAL"}
    response = client.put(
        f"/api/v1/exercises/{room.exercise_id}/markings", body, content_type="application/json"
    )
    assert response.status_code == 403
    client = sign_in(Client(), admin)
    response = client.put(
        f"/api/v1/exercises/{room.exercise_id}/markings",
        body | {"observer_download_limit": "OFFICIAL"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["markings"] == ["OFFICIAL", "SENSITIVE"]
    row = AuditEvent.objects.get(action="exercise.markings_changed")
    assert row.details["observer_download_limit"] == "OFFICIAL"
    with pytest.raises(Invalid):
        markings.set_markings(actor=admin, exercise=room.exercise, markings=["A"], default="B")


def test_administrators_set_markings_on_the_provisioning_page(
    admin: User, uk_coordinator: User, room: Room
) -> None:
    page = sign_in(Client(), admin).get(f"/manage/exercises/{room.exercise_id}/")
    assert b'action="/manage/exercises/' in page.content
    assert b"Save markings" in page.content
    client = sign_in(Client(), admin)
    response = client.post(
        f"/manage/exercises/{room.exercise_id}/markings/",
        {
            "markings": "official, official-sensitive, secret",
            "default": "official",
            "observer_download_limit": "",
        },
    )
    assert response.status_code == 302
    room.exercise.refresh_from_db()
    assert room.exercise.markings == ["OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET"]
    coordinator = sign_in(Client(), uk_coordinator)
    response = coordinator.post(
        f"/manage/exercises/{room.exercise_id}/markings/",
        {"markings": "A", "default": "A"},
    )
    room.exercise.refresh_from_db()
    assert room.exercise.markings == ["OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET"]
    assert AuditEvent.objects.filter(action="exercise.markings_changed").count() == 1
