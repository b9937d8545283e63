"""Attachments end to end: a file goes up, is stored sealed, and comes back intact to exactly
the people who may have it, through any store and the real server. Each concern of
``liaison/services/attachments/`` has its own file beside this one (policy, images, uploads,
downloads, retention); the actors are introduced in ``tests/attachments_support.py``."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from liaison import storage
from liaison.crypto.streaming import DEFAULT_CHUNK_SIZE
from liaison.models import Attachment, AuditEvent, Membership, Room, User
from liaison.services import attachments as service
from tests import attachments_support as support
from tests.attachments_support import (
    BOUNDARY,
    MIB,
    body_of,
    download,
    multipart,
    pdf_of_size,
    png_bytes,
    send,
    stored_files,
    upload,
)
from tests.factories import UserFactory

# The attachment fixtures (``store`` keeps each test's files in a store of its own).
store = support.store
olivia = support.olivia
li_wei = support.li_wei
sent_attachment = support.sent_attachment


# --- round trips ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE + 1, 20 * MIB],
    ids=["empty", "one-byte", "one-chunk", "chunk-plus-one", "20-MiB"],
)
def test_a_file_comes_back_byte_for_byte_with_its_sha256(
    olivia: Client, li_wei: Client, uk_officer: User, room: Room, store: Path, size: int
) -> None:
    data = b"A" * size if size < 16 else pdf_of_size(size)
    response = upload(olivia, room, "evidence.bin", data)

    assert response.status_code == 201, response.content
    payload = response.json()["attachment"]
    digest = hashlib.sha256(data).hexdigest()
    assert payload["sha256"] == digest
    assert payload["size"] == size
    row = Attachment.objects.get(pk=payload["id"])
    assert (row.sha256, row.size, row.uploader, row.room, row.message) == (
        digest,
        size,
        uk_officer,
        room,
        None,
    )
    assert [path.name for path in stored_files(store)] == [row.storage_name.split("/")[1]]
    event = AuditEvent.objects.get(action="attachment.uploaded")
    assert (event.actor, event.target_id, event.details["size"], event.details["sha256"]) == (
        uk_officer,
        str(row.pk),
        size,
        digest,
    )

    send(uk_officer, room, [row.pk])
    received = download(li_wei, row.pk)
    assert received.status_code == 200
    assert received["Content-Length"] == str(size)
    assert hashlib.sha256(body_of(received)).hexdigest() == digest


# --- encryption at rest ---------------------------------------------------------------------------


def test_the_store_holds_no_plaintext_and_the_database_no_file_name(
    olivia: Client, room: Room, store: Path
) -> None:
    marker = f"SEIZED-BALE-{uuid.uuid4().hex}"
    text = ("container MSKU1234565; " + marker + "\n") * 5000
    response = upload(olivia, room, f"{marker}.txt", text.encode(), "text/plain")
    assert response.status_code == 201
    image = upload(olivia, room, f"{marker}.png", png_bytes(400, 300), "image/png")
    assert image.json()["attachment"]["has_thumbnail"] is True

    files = stored_files(store)
    assert len(files) == 3  # the text, the image and its thumbnail
    for path in files:
        content = path.read_bytes()
        assert marker.encode() not in content
        assert b"MSKU1234565" not in content
        assert not content.startswith((b"\x89PNG", b"\xff\xd8\xff"))
        assert marker not in str(path)
    for row in Attachment.objects.all():
        assert marker.encode() not in bytes(row.name_ciphertext)
        assert marker not in row.storage_name
    assert all(marker not in json.dumps(event.details) for event in AuditEvent.objects.all())
    assert response.json()["attachment"]["name"] == f"{marker}.txt"


# --- who may do what ------------------------------------------------------------------------------


def test_strangers_removed_members_and_other_exercises_get_404(
    client: Client,
    login_as: Any,
    sent_attachment: dict[str, Any],
    gz_officer: User,
    outsider: User,
    room: Room,
    store: Path,
) -> None:
    stranger = UserFactory(email="nobody@example.org", display_name="No Body")
    Membership.objects.filter(user=gz_officer).update(removed_at=timezone.now())
    attachment_id = sent_attachment["id"]

    for user in (stranger, gz_officer, outsider):
        visitor = login_as(Client(), user)
        response = download(visitor, attachment_id)
        assert response.status_code == 404, user
        assert response.json()["error"]["code"] == "not_found"
        assert download(visitor, attachment_id + 999).json() == response.json()
        assert upload(visitor, room, "x.txt", b"text").status_code == 404
        thumbnail = visitor.get(f"/api/v1/attachments/{attachment_id}/thumbnail")
        assert thumbnail.status_code == 404

    denied = AuditEvent.objects.filter(action="access.denied")
    assert {event.actor for event in denied} == {stranger, gz_officer, outsider}
    assert not AuditEvent.objects.filter(action="attachment.downloaded").exists()
    assert len(stored_files(store)) == 1


def test_an_unsent_upload_is_visible_to_its_uploader_only(
    olivia: Client, li_wei: Client, room: Room
) -> None:
    attachment_id = upload(olivia, room, "draft.txt", b"draft\n").json()["attachment"]["id"]

    assert download(olivia, attachment_id).status_code == 200
    assert download(li_wei, attachment_id).status_code == 404


def test_a_removed_member_loses_access_at_once(
    li_wei: Client, gz_officer: User, sent_attachment: dict[str, Any]
) -> None:
    assert download(li_wei, sent_attachment["id"]).status_code == 200

    Membership.objects.filter(user=gz_officer).update(removed_at=timezone.now())

    assert download(li_wei, sent_attachment["id"]).status_code == 404


def test_an_observer_cannot_upload(
    login_as: Any, gz_observer: User, room: Room, store: Path, sent_attachment: dict[str, Any]
) -> None:
    observer = login_as(Client(), gz_observer)

    response = upload(observer, room, "photo.txt", b"observer notes\n")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert Attachment.objects.count() == 1
    assert len(stored_files(store)) == 1
    assert download(observer, sent_attachment["id"]).status_code == 200


def test_an_auditor_can_download_and_every_download_is_audited(
    login_as: Any, auditor: User, uk_officer: User, room: Room, sent_attachment: dict[str, Any]
) -> None:
    inspector = login_as(Client(), auditor)

    first = download(inspector, sent_attachment["id"])
    second = download(inspector, sent_attachment["id"])

    assert first.status_code == second.status_code == 200
    assert hashlib.sha256(body_of(first)).hexdigest() == sent_attachment["sha256"]
    events = list(AuditEvent.objects.filter(action="attachment.downloaded").order_by("seq"))
    assert len(events) == 2
    assert {(event.actor, event.target_id) for event in events} == {
        (auditor, str(sent_attachment["id"]))
    }
    assert events[0].details["as_auditor"] is True
    assert events[0].exercise == room.exercise
    assert upload(inspector, room, "audit.txt", b"notes\n").status_code == 403


# --- any store ------------------------------------------------------------------------------------


def test_any_django_storage_backend_holds_attachments(
    uk_officer: User, room: Room, settings: Any
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    data = pdf_of_size(3 * MIB)

    attachment = service.upload_attachment(
        uploader=uk_officer,
        room_id=room.pk,
        filename="manifest.pdf",
        declared_type="application/pdf",
        chunks=(data[start : start + 50_000] for start in range(0, len(data), 50_000)),
    )
    _, pieces, name = service.open_download(user=uk_officer, attachment_id=attachment.pk)

    assert name == "manifest.pdf"
    assert b"".join(pieces) == data
    with storage.open_blob(attachment.storage_name) as handle:
        assert b"%PDF" not in handle.read()


# --- through the real server ----------------------------------------------------------------------


@pytest.mark.live_server
def test_a_file_travels_through_the_real_server_intact(
    asgi_server: Any, uk_officer: User, gz_officer: User, room: Room, settings: Any
) -> None:
    import http.client

    from tests.conftest import session_cookie_header

    data = pdf_of_size(3 * MIB + 12345)
    body = multipart("manifest.pdf", data, "application/pdf")
    csrf = "c" * 32
    cookie = session_cookie_header(uk_officer)[1].decode()
    connection = http.client.HTTPConnection(asgi_server.host, asgi_server.port, timeout=60)
    connection.request(
        "POST",
        f"/api/v1/rooms/{room.pk}/attachments",
        body=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Cookie": f"{cookie}; {settings.CSRF_COOKIE_NAME}={csrf}",
            "X-CSRFToken": csrf,
        },
    )
    answer = connection.getresponse()
    payload = json.loads(answer.read())
    connection.close()
    assert answer.status == 201, payload
    send(uk_officer, room, [payload["attachment"]["id"]])

    reader = session_cookie_header(gz_officer)[1].decode()
    connection = http.client.HTTPConnection(asgi_server.host, asgi_server.port, timeout=60)
    connection.request("GET", payload["attachment"]["download_url"], headers={"Cookie": reader})
    response = connection.getresponse()
    received = bytearray()
    while piece := response.read(256 * 1024):
        received += piece
    connection.close()

    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(data))
    assert response.getheader("Content-Disposition").startswith("attachment;")
    assert hashlib.sha256(received).hexdigest() == payload["attachment"]["sha256"]
    assert bytes(received) == data
    assert AuditEvent.objects.filter(action="attachment.downloaded", actor=gz_officer).count() == 1
