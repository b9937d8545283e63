"""PDF previews (``attachments/previews.py``): the first page rendered on the server, sealed like
a thumbnail, carrying nothing but pixels; a PDF that will not open is accepted without one."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from liaison.models import Attachment, Room, User
from liaison.services.attachments import previews
from tests import attachments_support as support
from tests.attachments_support import stored_files, upload

pytestmark = pytest.mark.django_db
# The attachment fixtures: each test's own store, Olivia and Li Wei signed in.
store = support.store
olivia = support.olivia
li_wei = support.li_wei


def pdf_bytes(width: int = 595, height: int = 842) -> bytes:
    """A one-page PDF (A4 at 72 dpi) with a red band across the top, made by Pillow."""
    page = Image.new("RGB", (width, height), "white")
    for y in range(60):
        for x in range(width):
            page.putpixel((x, y), (200, 0, 0))
    out = io.BytesIO()
    page.save(out, "PDF", resolution=72.0, title="Manifest MSKU4417702", author="Olivia")
    return out.getvalue()


def test_the_first_page_renders_within_the_preview_size() -> None:
    rendered = previews.pdf_first_page(pdf_bytes())
    assert rendered is not None
    data, width, height = rendered
    assert max(width, height) == previews.PREVIEW_PIXELS
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.getpixel((width // 2, 5))[:3] == (200, 0, 0)
    assert b"MSKU4417702" not in data
    assert b"Olivia" not in data


def test_a_pdf_that_does_not_open_has_no_preview() -> None:
    assert previews.pdf_first_page(b"%PDF-1.7\n" + os.urandom(2000)) is None
    assert previews.pdf_first_page(b"") is None


def test_an_uploaded_pdf_gets_a_sealed_preview_its_readers_can_fetch(
    olivia: Client, li_wei: Client, room: Room, store: Path
) -> None:
    response = upload(olivia, room, "manifest.pdf", pdf_bytes(), "application/pdf")
    assert response.status_code == 201, response.content
    body = response.json()["attachment"]
    assert body["has_thumbnail"] is True
    attachment = Attachment.objects.get(pk=body["id"])
    assert attachment.thumbnail_storage_name
    for path in stored_files(store):
        assert not path.read_bytes().startswith(b"\x89PNG")  # sealed at rest
    preview = olivia.get(f"/api/v1/attachments/{attachment.pk}/thumbnail")
    assert preview.status_code == 200
    assert Image.open(io.BytesIO(preview.content)).format == "PNG"


def test_a_damaged_pdf_is_accepted_without_a_preview(olivia: Client, room: Room) -> None:
    response = upload(
        olivia, room, "broken.pdf", b"%PDF-1.7\n" + os.urandom(4000), "application/pdf"
    )
    assert response.status_code == 201
    assert response.json()["attachment"]["has_thumbnail"] is False


def test_observers_above_the_marking_limit_get_no_preview_either(
    admin: User, uk_officer: User, gz_observer: User, room: Room, login_as: Any
) -> None:
    from liaison.services import markings, messaging

    markings.set_markings(
        actor=admin,
        exercise=room.exercise,
        markings=["OFFICIAL", "OFFICIAL-SENSITIVE"],
        default="OFFICIAL",
        observer_download_limit="OFFICIAL",
    )
    client = login_as(Client(), uk_officer)
    attachment_id = upload(client, room, "m.pdf", pdf_bytes(), "application/pdf").json()[
        "attachment"
    ]["id"]
    messaging.send_message(
        sender=uk_officer,
        room_id=room.pk,
        client_id="c",
        body="",
        attachment_ids=[attachment_id],
        marking="OFFICIAL-SENSITIVE",
    )
    observer = login_as(Client(), gz_observer)
    assert observer.get(f"/api/v1/attachments/{attachment_id}/thumbnail").status_code == 403
