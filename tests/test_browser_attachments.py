"""Files in the chat, through a real daphne server in real headless Chromium: an officer drops
a photo into the room, the other sees its thumbnail appear live and downloads the same bytes."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from liaison.models import Attachment, Message, Room, User
from tests.conftest import LiveServer
from tests.test_browser_chat import message, open_room, send

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live_server,
    pytest.mark.django_db(transaction=True),
]


def photo_of_a_bale() -> bytes:
    """A small PNG with some structure (a thumbnail of a flat colour would prove little)."""
    image = Image.new("RGB", (96, 64), (120, 98, 60))
    for x in range(0, 96, 8):
        for y in range(0, 64, 8):
            if (x + y) % 16 == 0:
                image.putpixel((x, y), (250, 240, 220))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def drop_files(page: Any, files: list[tuple[str, str, bytes]]) -> None:
    """Drag files from the desktop onto the room, as the browser would deliver them."""
    page.evaluate(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, type, data] of files) {
                const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type }));
            }
            const target = document.querySelector(".chat-log");
            for (const kind of ["dragenter", "dragover", "drop"]) {
                target.dispatchEvent(new DragEvent(kind, {
                    bubbles: true, cancelable: true, dataTransfer: transfer,
                }));
            }
        }""",
        [[name, kind, base64.b64encode(data).decode()] for name, kind, data in files],
    )


def test_a_dropped_photo_reaches_the_other_officer_with_a_thumbnail_and_identical_bytes(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    photo = photo_of_a_bale()
    digest = hashlib.sha256(photo).hexdigest()
    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    guangzhou, li_wei = open_room(browser, asgi_server, gz_officer, room)

    drop_files(olivia, [("bale-07.png", "image/png", photo)])
    upload = olivia.locator("#chat-uploads > li.upload")
    expect(upload).to_have_count(1)
    expect(upload).to_have_attribute("data-state", "done")
    expect(upload.locator(".upload-name")).to_have_text("bale-07.png")
    # Uploaded but not yet sent: nobody else sees it.
    expect(li_wei.locator("img.attachment-thumb")).to_have_count(0)

    send(olivia, "Bale 07 as found in the container.")
    expect(upload).to_have_count(0)

    received = message(li_wei, "Bale 07 as found in the container.")
    expect(received).to_have_count(1)
    thumb = received.locator("img.attachment-thumb")
    expect(thumb).to_have_count(1)
    expect(thumb).to_have_attribute("alt", "bale-07.png")
    li_wei.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    details = received.locator(".attachment-details")
    expect(details).to_contain_text("image/png")
    expect(received.locator(".attachment-sha")).to_have_attribute("title", f"SHA-256 {digest}")

    with li_wei.expect_download() as download_info:
        received.locator("a.attachment-download").click()
    download = download_info.value
    saved = tmp_path / "downloaded.png"
    download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest
    assert download.suggested_filename == "bale-07.png"

    # The sender's own screen shows the same attachment once the message is acknowledged.
    own = message(olivia, "Bale 07 as found in the container.")
    expect(own).to_have_attribute("data-state", "sent")
    expect(own.locator("img.attachment-thumb")).to_have_count(1)

    stored = Attachment.objects.get()
    assert stored.sha256 == digest
    assert stored.message == Message.objects.get(room=room, seq=1)
    london.close()
    guangzhou.close()


def test_a_file_chosen_with_the_picker_can_be_sent_without_a_caption(
    browser: Any,
    asgi_server: LiveServer,
    uk_officer: User,
    gz_officer: User,
    room: Room,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    manifest = b"container,bill_of_lading,hs\nMSKU1234567,BL-7781,391510\n"
    london, olivia = open_room(browser, asgi_server, uk_officer, room)
    guangzhou, li_wei = open_room(browser, asgi_server, gz_officer, room)

    with olivia.expect_file_chooser() as chooser_info:
        olivia.locator("label[for='chat-file']").click()
    chooser_info.value.set_files(
        files=[{"name": "manifest.csv", "mimeType": "text/csv", "buffer": manifest}]
    )
    expect(olivia.locator("#chat-uploads > li.upload")).to_have_attribute("data-state", "done")
    olivia.locator("#chat-send").click()

    item = li_wei.locator("#chat-messages li.msg .attachment")
    expect(item).to_have_count(1)
    expect(item.locator("a.attachment-download")).to_have_text("manifest.csv")
    expect(item.locator("img")).to_have_count(0)  # no thumbnail for a spreadsheet
    with li_wei.expect_download() as download_info:
        item.locator("a.attachment-download").click()
    saved = tmp_path / "manifest.csv"
    download_info.value.save_as(saved)
    assert saved.read_bytes() == manifest
    london.close()
    guangzhou.close()


def test_a_refused_file_is_named_with_the_servers_reason_and_nothing_is_sent(
    browser: Any, asgi_server: LiveServer, uk_officer: User, room: Room
) -> None:
    from playwright.sync_api import expect

    london, olivia = open_room(browser, asgi_server, uk_officer, room)

    program = b"MZ\x90\x00" + b"\x00" * 200  # a Windows program wearing a PDF's name
    drop_files(olivia, [("invoice.pdf", "application/pdf", program)])
    upload = olivia.locator("#chat-uploads > li.upload")
    expect(upload).to_have_attribute("data-state", "failed")
    expect(upload.locator(".upload-error")).to_have_text(re.compile(r"Windows program", re.I))
    expect(olivia.locator("#chat-notice")).to_contain_text("invoice.pdf")
    upload.locator("button").click()
    expect(upload).to_have_count(0)
    assert not Attachment.objects.exists()
    assert not Message.objects.exists()
    london.close()
