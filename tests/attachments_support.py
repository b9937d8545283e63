"""Helpers and fixtures shared by the attachment tests. Olivia (uk_officer) shares evidence
files in the exercise's general room; Li Wei (gz_officer) receives them; Chen (gz_observer)
only reads; Avery (auditor) inspects; Sam (outsider) belongs to another exercise and must
learn nothing."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from PIL import Image

from liaison.models import Attachment, Message, Room, User
from liaison.services import attachments as service
from tests.conftest import point_storage

MIB = 1024 * 1024
BOUNDARY = "liaison-test-boundary-7d1f"


@pytest.fixture(autouse=True)
def store(settings: Any, tmp_path: Path) -> Path:
    """Each test gets an empty attachment store of its own."""
    return point_storage(settings, "attachments", tmp_path / "attachments")


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
