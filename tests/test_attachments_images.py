"""Images (``attachments/images.py``): previews carry no metadata, decompression bombs and damaged
images are refused, and an image too large to decode is accepted without a preview."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from liaison.models import Attachment, Room, User
from tests import attachments_support as support
from tests.attachments_support import png_bytes, png_declaring, stored_files, upload

# The attachment fixtures (``store`` keeps each test's files in a store of its own).
store = support.store
olivia = support.olivia


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
