"""Uploads (``attachments/uploads.py``): limits and the room quota hold while the body streams,
the upload request is checked (sign-in, CSRF, multipart), a message claims only its sender's
uploads, and a change of membership or exercise mid-upload is honoured."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.db import connection, transaction
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from liaison.crypto.streaming import DEFAULT_CHUNK_SIZE
from liaison.errors import AccessDenied, Invalid
from liaison.models import Attachment, AuditEvent, Exercise, ExerciseStatus, Membership, Room, User
from liaison.payloads import attachment_payloads_for_messages
from liaison.services import attachments as service
from liaison.views import attachments as views
from tests import attachments_support as support
from tests.attachments_support import (
    BOUNDARY,
    MIB,
    download,
    make_message,
    multipart,
    pdf_of_size,
    send,
    stored_files,
    upload,
)

# The attachment fixtures (``store`` keeps each test's files in a store of its own).
store = support.store
olivia = support.olivia
li_wei = support.li_wei
sent_attachment = support.sent_attachment


# --- limits ---------------------------------------------------------------------------------------


def test_a_file_over_the_limit_is_refused_with_413_and_leaves_nothing(
    olivia: Client, room: Room, store: Path, settings: Any
) -> None:
    settings.LIAISON_ATTACHMENT_MAX_BYTES = MIB
    response = upload(olivia, room, "scan.pdf", pdf_of_size(MIB + 1), "application/pdf")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "1 MiB" in response.json()["error"]["detail"]
    assert stored_files(store) == []
    assert not Attachment.objects.exists()
    refused = AuditEvent.objects.get(action="attachment.refused")
    assert refused.details["reason"] == "too_large"

    exactly = upload(olivia, room, "scan.pdf", pdf_of_size(MIB), "application/pdf")
    assert exactly.status_code == 201


class MultipartStream:
    """A multipart body produced on the fly, so a 101 MiB request never sits in memory."""

    def __init__(self, size: int) -> None:
        self.head = multipart("huge.pdf", b"")[: -len(f"\r\n--{BOUNDARY}--\r\n")] + b"%PDF-1.7\n"
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.body_size = size - len(b"%PDF-1.7\n")
        self.length = len(self.head) + self.body_size + len(self.tail)
        self.block = os.urandom(DEFAULT_CHUNK_SIZE)
        self.position = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = self.length - self.position
        out = bytearray()
        while len(out) < size and self.position < self.length:
            at = self.position
            if at < len(self.head):
                piece = self.head[at : at + size - len(out)]
            elif at < len(self.head) + self.body_size:
                offset = (at - len(self.head)) % len(self.block)
                remaining = len(self.head) + self.body_size - at
                piece = self.block[offset : offset + min(size - len(out), remaining)]
            else:
                start = at - len(self.head) - self.body_size
                piece = self.tail[start : start + size - len(out)]
            out += piece
            self.position += len(piece)
        return bytes(out)

    def readline(self, size: int = -1) -> bytes:  # part of the WSGI input interface
        raise NotImplementedError


def streamed_upload(user: User, room: Room, file_size: int) -> tuple[Any, MultipartStream]:
    """Call the upload view on a request whose body is generated as the parser reads it."""
    stream = MultipartStream(file_size)
    template = RequestFactory().post(f"/api/v1/rooms/{room.pk}/attachments")
    request = WSGIRequest(
        {
            **template.environ,
            "wsgi.input": stream,
            "CONTENT_LENGTH": str(stream.length),
            "CONTENT_TYPE": f"multipart/form-data; boundary={BOUNDARY}",
        }
    )
    request.user = user
    request._dont_enforce_csrf_checks = True
    return views.upload(request, room_id=room.pk), stream


def test_a_101_mib_upload_is_refused_with_413_before_its_body_is_read(
    uk_officer: User, room: Room, store: Path
) -> None:
    response, stream = streamed_upload(uk_officer, room, 101 * MIB)

    assert response.status_code == 413
    assert json.loads(response.content)["error"]["code"] == "too_large"
    assert stream.position <= 2 * DEFAULT_CHUNK_SIZE  # the part's headers, no more
    assert stored_files(store) == []
    assert not Attachment.objects.exists()
    assert AuditEvent.objects.get(action="attachment.refused").details["reason"] == "too_large"


def test_the_100_mib_limit_is_enforced_while_streaming(
    uk_officer: User, room: Room, store: Path
) -> None:
    """A body that declares an acceptable length but carries one byte too many is cut off at
    the limit, and what was already encrypted is deleted."""
    response, stream = streamed_upload(uk_officer, room, 100 * MIB + 1)

    assert response.status_code == 413
    assert "100 MiB" in json.loads(response.content)["error"]["detail"]
    assert stream.position <= 100 * MIB + 4 * DEFAULT_CHUNK_SIZE
    assert stored_files(store) == []
    assert not Attachment.objects.exists()


def test_the_room_quota_refuses_what_does_not_fit(
    olivia: Client, room: Room, lane_room: Room, store: Path, settings: Any
) -> None:
    settings.LIAISON_ROOM_QUOTA_BYTES = 10_000
    assert upload(olivia, room, "a.pdf", pdf_of_size(6000)).status_code == 201

    refused = upload(olivia, room, "b.pdf", pdf_of_size(6000))
    assert refused.status_code == 413
    assert "quota" in refused.json()["error"]["detail"]
    assert len(stored_files(store)) == 1
    assert upload(olivia, lane_room, "b.pdf", pdf_of_size(6000)).status_code == 201


# --- the upload request ---------------------------------------------------------------------------


def test_uploading_needs_a_signed_in_user(client: Client, room: Room, store: Path) -> None:
    response = upload(client, room, "x.txt", b"text\n")

    assert response.status_code == 401
    assert stored_files(store) == []


def test_an_upload_without_the_csrf_token_is_refused_and_leaves_nothing(
    login_as: Any, uk_officer: User, room: Room, store: Path
) -> None:
    browser = login_as(Client(enforce_csrf_checks=True), uk_officer)

    response = upload(browser, room, "x.txt", b"forged upload\n")

    assert response.status_code == 403
    assert stored_files(store) == []
    assert not Attachment.objects.exists()


def test_an_upload_with_the_csrf_token_is_accepted(
    login_as: Any, uk_officer: User, room: Room, settings: Any
) -> None:
    browser = login_as(Client(enforce_csrf_checks=True), uk_officer)
    secret = "k" * 32
    browser.cookies[settings.CSRF_COOKIE_NAME] = secret

    response = browser.post(
        f"/api/v1/rooms/{room.pk}/attachments",
        data=multipart("x.txt", b"real upload\n"),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        headers={"X-CSRFToken": secret},
    )

    assert response.status_code == 201, response.content


@pytest.mark.parametrize("enforce_csrf", [False, True], ids=["csrf-exempt-client", "csrf-checked"])
def test_a_malformed_multipart_body_is_refused_clearly(
    login_as: Any, uk_officer: User, room: Room, settings: Any, store: Path, enforce_csrf: bool
) -> None:
    browser = login_as(Client(enforce_csrf_checks=enforce_csrf), uk_officer)
    secret = "k" * 32
    browser.cookies[settings.CSRF_COOKIE_NAME] = secret
    broken_base64 = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="x.txt"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"dGV4dA=Q\r\n--{BOUNDARY}--\r\n"
    ).encode()

    no_boundary = browser.post(
        f"/api/v1/rooms/{room.pk}/attachments",
        data=b"whatever",
        content_type="multipart/form-data",
        headers={"X-CSRFToken": secret},
    )
    base64_garbage = browser.post(
        f"/api/v1/rooms/{room.pk}/attachments",
        data=broken_base64,
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        headers={"X-CSRFToken": secret},
    )

    for response in (no_boundary, base64_garbage):
        assert response.status_code == 400, response.content
        assert response.json()["error"]["detail"] == "The multipart body is malformed."
    assert stored_files(store) == []


def test_a_request_without_a_file_is_refused_clearly(olivia: Client, room: Room) -> None:
    empty_form = olivia.post(f"/api/v1/rooms/{room.pk}/attachments", data={"note": "hi"})
    as_json = olivia.post(
        f"/api/v1/rooms/{room.pk}/attachments", data={}, content_type="application/json"
    )

    assert empty_form.status_code == 400
    assert "'file'" in empty_form.json()["error"]["detail"]
    assert as_json.status_code == 400
    assert "multipart/form-data" in as_json.json()["error"]["detail"]


# --- messages -------------------------------------------------------------------------------------


def test_a_message_claims_its_senders_uploads_and_shows_them(
    olivia: Client,
    uk_officer: User,
    room: Room,
) -> None:
    ids = [
        upload(olivia, room, f"p{i}.txt", b"page\n").json()["attachment"]["id"] for i in range(3)
    ]
    with transaction.atomic():
        message = make_message(room, uk_officer)
        claimed = service.claim_for_message(
            user=uk_officer, room=room, attachment_ids=ids, message=message
        )

    assert [attachment.pk for attachment in claimed] == ids
    assert set(Attachment.objects.values_list("message_id", flat=True)) == {message.pk}
    with CaptureQueriesContext(connection) as queries:
        payloads = attachment_payloads_for_messages([message.pk, 9999])
    # One query for every attachment of every message (data keys come from the key cache).
    assert [q["sql"] for q in queries if "liaison_attachment" in q["sql"]] == [queries[0]["sql"]]
    assert list(payloads) == [message.pk]
    assert [payload["id"] for payload in payloads[message.pk]] == ids
    assert payloads[message.pk][0]["name"] == "p0.txt"
    assert attachment_payloads_for_messages([]) == {}


def test_claiming_refuses_others_uploads_other_rooms_and_sent_files(
    olivia: Client,
    li_wei: Client,
    uk_officer: User,
    gz_officer: User,
    room: Room,
    lane_room: Room,
) -> None:
    mine = upload(olivia, room, "mine.txt", b"mine\n").json()["attachment"]["id"]
    theirs = upload(li_wei, room, "theirs.txt", b"theirs\n").json()["attachment"]["id"]
    elsewhere = upload(olivia, lane_room, "lane.txt", b"lane\n").json()["attachment"]["id"]
    send(uk_officer, room, [mine], seq=1)

    cases = [
        ([theirs], f"Attachment {theirs} is not one of your uploads in this room."),
        ([elsewhere], f"Attachment {elsewhere} is not one of your uploads in this room."),
        ([mine], f"Attachment {mine} is already attached to a message."),
        ([987654], "Attachment 987654 is not one of your uploads in this room."),
        (["1"], "attachments must be a list of attachment ids."),
    ]
    for seq, (ids, detail) in enumerate(cases, start=2):
        with pytest.raises(Invalid) as refused, transaction.atomic():
            send(uk_officer, room, ids, seq=seq)
        assert refused.value.detail == detail
    assert Attachment.objects.get(pk=theirs).message is None
    assert Attachment.objects.get(pk=elsewhere).message is None


# --- lifecycle edges ------------------------------------------------------------------------------


def test_a_member_removed_during_an_upload_cannot_record_it(
    uk_officer: User, room: Room, store: Path
) -> None:
    in_flight = service.start_upload(
        uploader=uk_officer, room_id=room.pk, filename="late.txt", declared_type="text/plain"
    )
    in_flight.write(b"written while still a member\n")
    in_flight.complete()
    Membership.objects.filter(user=uk_officer).update(removed_at=timezone.now())

    with pytest.raises(AccessDenied):
        in_flight.record()

    assert stored_files(store) == []
    assert not Attachment.objects.exists()


def test_a_closed_exercise_takes_no_uploads_but_its_files_stay_readable(
    olivia: Client, room: Room, sent_attachment: dict[str, Any], store: Path
) -> None:
    Exercise.objects.filter(pk=room.exercise_id).update(status=ExerciseStatus.CLOSED)

    refused = upload(olivia, room, "late.txt", b"too late\n")

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "room_closed"
    assert len(stored_files(store)) == 1
    assert download(olivia, sent_attachment["id"]).status_code == 200
