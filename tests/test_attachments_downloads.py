"""Downloads (``attachments/downloads.py``): files are offered to save, never rendered; nothing
is handed out before it authenticated in full; shredded content is gone, not garbled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from liaison.crypto import destroy_room_keys
from liaison.models import Attachment, AuditEvent, Room, User
from liaison.payloads import attachment_payloads_for_messages
from tests import attachments_support as support
from tests.attachments_support import MIB, body_of, download, pdf_of_size, png_bytes, send, upload

# The attachment fixtures (``store`` keeps each test's files in a store of its own).
store = support.store
olivia = support.olivia
sent_attachment = support.sent_attachment


# --- headers --------------------------------------------------------------------------------------


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


def test_shredded_room_keys_make_files_unrecoverable_not_garbled(
    olivia: Client, room: Room, sent_attachment: dict[str, Any]
) -> None:
    destroy_room_keys([room.pk])

    response = download(olivia, sent_attachment["id"])

    assert response.status_code == 410
    assert response.json()["error"]["code"] == "shredded"
    message_id = Attachment.objects.get(pk=sent_attachment["id"]).message_id
    (payload,) = attachment_payloads_for_messages([message_id])[message_id]
    assert payload["name"] == "Content destroyed by retention policy."
