"""Images (``attachments/images.py``): previews carry no metadata, decompression bombs and damaged
images are refused, an image too large to decode is accepted without a preview, and decoding
is bounded: never above the thumbnail pixel limit (JPEG at reduced scale), one at a time."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from PIL import Image

from liaison.models import Attachment, Room, User
from liaison.services.attachments import images
from tests import attachments_support as support
from tests import server_support
from tests.attachments_support import png_bytes, png_declaring, stored_files, upload
from tests.server_support import WatchedServer

# The attachment fixtures (``store`` keeps each test's files in a store of its own), and a real
# daphne whose memory can be measured.
store = support.store
olivia = support.olivia
watched_server = server_support.watched_server


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


# --- bounded decoding -----------------------------------------------------------------------------


def png_of(width: int, height: int) -> bytes:
    """A black RGB PNG of ``width`` × ``height`` pixels, built row by row: a 7000 × 7000 one is
    about 150 KB, and making it costs no more memory than one row (Pillow would hold it all)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    compressor = zlib.compressobj()
    row = bytes(1 + 3 * width)  # filter byte, then the pixels
    pixels = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def record_decodes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[int, int], bool]]:
    """Every decode of pixel data by Pillow: (format, decoded size, whether the process's
    decoding slot was held)."""
    from PIL import ImageFile

    decodes: list[tuple[str, tuple[int, int], bool]] = []
    original = ImageFile.ImageFile.load

    def load(self: Any) -> Any:
        if self.tile:  # pixels still to decode (later calls only return the loaded ones)
            decodes.append((self.format, self.size, getattr(images._holder, "depth", 0) > 0))
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return decodes


def test_a_7000_by_7000_png_is_accepted_without_being_decoded(
    olivia: Client, room: Room, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three of these at once took a worker from 127 MB to 1.8 GB: each was decoded whole
    (196 MB of pixels) just to read its orientation and make a preview."""
    decodes = record_decodes(monkeypatch)
    image = png_of(7000, 7000)
    assert len(image) < 300_000

    response = upload(olivia, room, "hold-scan.png", image, "image/png")

    assert response.status_code == 201, response.content
    payload = response.json()["attachment"]
    assert (payload["has_thumbnail"], payload["width"], payload["height"]) == (False, 7000, 7000)
    assert decodes == []
    assert len(stored_files(store)) == 1


def test_an_image_over_the_thumbnail_pixel_limit_gets_no_preview_but_a_jpeg_decodes_small(
    olivia: Client, room: Room, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.LIAISON_THUMBNAIL_MAX_PIXELS = 500_000
    decodes = record_decodes(monkeypatch)
    jpeg = io.BytesIO()
    Image.new("RGB", (1600, 1200), "olive").save(jpeg, "JPEG")

    png_answer = upload(olivia, room, "bale.png", png_bytes(1600, 1200), "image/png")
    jpeg_answer = upload(olivia, room, "bale.jpg", jpeg.getvalue(), "image/jpeg")

    png, photo = png_answer.json()["attachment"], jpeg_answer.json()["attachment"]
    assert (png["has_thumbnail"], png["width"], png["height"]) == (False, 1600, 1200)
    assert (photo["has_thumbnail"], photo["width"], photo["height"]) == (True, 1600, 1200)
    # The PNG was never decoded; the JPEG only at half its width and height, in the decoding slot.
    assert decodes == [("JPEG", (800, 600), True)]


def test_images_are_decoded_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    lock = threading.Lock()
    active, peak = 0, 0
    original = ImageFile.ImageFile.load

    def slow_load(self: Any) -> Any:
        nonlocal active, peak
        if not self.tile:
            return original(self)
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)
        try:
            return original(self)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", slow_load)
    image = png_bytes(800, 600)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(images.make_thumbnail, [image] * 6))

    assert all(thumbnail is not None for thumbnail, _, _ in results)
    assert peak == 1


def test_an_image_whose_turn_does_not_come_is_accepted_without_a_preview(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(images, "DECODE_WAIT_SECONDS", 0.1)
    held, release = threading.Event(), threading.Event()

    def hold_the_slot() -> None:
        with images.decode_slot():
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold_the_slot)
    holder.start()
    try:
        assert held.wait(5)
        thumbnail, width, height = images.make_thumbnail(png_bytes(64, 48))
    finally:
        release.set()
        holder.join()

    assert (thumbnail, width, height) == (None, 64, 48)
    assert images.make_thumbnail(png_bytes(64, 48))[0] is not None  # the slot is free again


@pytest.mark.live_server
def test_parallel_7000_by_7000_pngs_leave_the_real_server_small(
    watched_server: WatchedServer, uk_officer: User, room: Room
) -> None:
    """The attack as it was made: three at once through daphne (growth was 1.7 GB). The full
    figure, twenty at once, is ``python -m bench images``."""
    import http.client

    from tests.attachments_support import BOUNDARY, multipart
    from tests.conftest import session_cookie_header

    body = multipart("hold-scan.png", png_of(7000, 7000), "image/png")
    cookie = session_cookie_header(uk_officer)[1].decode()
    csrf = "c" * 32
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Cookie": f"{cookie}; csrftoken={csrf}",
        "X-CSRFToken": csrf,
    }

    def post() -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection(
            watched_server.host, watched_server.port, timeout=60
        )
        try:
            connection.request("POST", f"/api/v1/rooms/{room.pk}/attachments", body, headers)
            answer = connection.getresponse()
            return answer.status, json.loads(answer.read())
        finally:
            connection.close()

    assert post()[0] == 201  # warm: imports, URL resolver, keys
    baseline = watched_server.reset_peak_memory()
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda _: post(), range(3)))

    assert [status for status, _ in answers] == [201, 201, 201]
    assert all(not payload["attachment"]["has_thumbnail"] for _, payload in answers)
    assert watched_server.peak_growth_mib(baseline) < 100
