"""What an attachment may be: the type allow-list decided by sniffing, the limits, clean names.

Kept free of side effects (no database, store or keys; settings are only read) so the rules
that decide what is accepted can be read, and tested, on their own. The upload stream applies
them; the download path only asks how a checked type is served.
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING

import filetype
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from liaison.errors import Invalid

if TYPE_CHECKING:
    from liaison.models import Attachment

PNG, JPEG, GIF, WEBP = "image/png", "image/jpeg", "image/gif", "image/webp"
PDF, CSV, TXT, ZIP = "application/pdf", "text/csv", "text/plain", "application/zip"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

IMAGE_TYPES = frozenset({PNG, JPEG, GIF, WEBP})
TEXT_TYPES = frozenset({CSV, TXT})
ALLOWED_TYPES = frozenset({*IMAGE_TYPES, PDF, CSV, XLSX, DOCX, TXT, ZIP})
# Served under their own type (still as a download); everything else as octet-stream.
SERVED_AS_IS = frozenset({*IMAGE_TYPES, PDF})
ALLOWED_DESCRIPTION = gettext_lazy(
    "images (PNG, JPEG, GIF, WebP), PDF, CSV, XLSX, DOCX, plain text and ZIP"
)

# How much of the start of a file the sniffer sees (filetype reads 8 KiB; image headers and
# the first ZIP entries of an Office document fit comfortably).
SNIFF_BYTES = 64 * 1024
NAME_MAX_CHARS = 200
EXTENSION_MAX_CHARS = 16


# --- limits -------------------------------------------------------------------------------------


def max_upload_bytes() -> int:
    return int(settings.LIAISON_ATTACHMENT_MAX_BYTES)


def room_quota_bytes() -> int:
    return int(settings.LIAISON_ROOM_QUOTA_BYTES)


def mib(size: int) -> str:
    """A size as people read it in a refusal."""
    return f"{size / (1024 * 1024):,.0f} MiB" if size >= 1024 * 1024 else f"{size:,} bytes"


# --- names --------------------------------------------------------------------------------------

_WINDOWS_RESERVED = set('<>:"|?*')


def clean_filename(raw: str) -> str:
    """A file name safe to show and to offer for saving.

    Drops any path (``../../etc/passwd`` becomes ``passwd``), control and format characters
    (NUL, bidi overrides such as U+202E that disguise ``exe.pdf`` as ``fdp.exe``, zero-width
    characters), characters Windows refuses, and leading dots; keeps the extension when
    shortening to ``NAME_MAX_CHARS``.
    """
    name = unicodedata.normalize("NFC", str(raw or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if ch in _WINDOWS_RESERVED else ch
        for ch in name
        if not unicodedata.category(ch).startswith("C")
    )
    name = " ".join(name.split())  # collapse runs of white space, trim the ends
    name = name.lstrip(". ").rstrip(". ")
    if not name:
        return "file"
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or len(extension) > EXTENSION_MAX_CHARS:
        stem, extension = name, ""
    if len(name) > NAME_MAX_CHARS:
        suffix = f".{extension}" if extension else ""
        name = stem[: NAME_MAX_CHARS - len(suffix)].rstrip(". ") + suffix
    return name


# --- sniffing -----------------------------------------------------------------------------------

_EXECUTABLE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"MZ", gettext_lazy("a Windows program")),
    (b"\x7fELF", gettext_lazy("a Linux program")),
    (b"\xfe\xed\xfa\xce", gettext_lazy("a macOS program")),
    (b"\xfe\xed\xfa\xcf", gettext_lazy("a macOS program")),
    (b"\xce\xfa\xed\xfe", gettext_lazy("a macOS program")),
    (b"\xcf\xfa\xed\xfe", gettext_lazy("a macOS program")),
    (b"\xca\xfe\xba\xbe", gettext_lazy("a macOS or Java program")),
    (b"\x00asm", gettext_lazy("a WebAssembly module")),
    (b"dex\n", gettext_lazy("an Android program")),
    (b"#!", gettext_lazy("a script")),
)


def _type_refused(what: str) -> Invalid:
    return Invalid(
        _("This type of file (%(what)s) is not accepted. Allowed: %(allowed_description)s.")
        % {"what": what, "allowed_description": ALLOWED_DESCRIPTION},
        field="file",
    )


def _ooxml_type(head: bytes) -> str | None:
    """DOCX or XLSX from the names of the first ZIP entries (``[Content_Types].xml`` plus a
    ``word/`` or ``xl/`` part), for writers whose entry order ``filetype`` does not expect."""
    if b"[Content_Types].xml" not in head:
        return None
    names: list[bytes] = []
    offset = head.find(b"PK\x03\x04")
    while offset != -1 and len(names) < 64 and offset + 30 <= len(head):
        name_length = int.from_bytes(head[offset + 26 : offset + 28], "little")
        names.append(bytes(head[offset + 30 : offset + 30 + name_length]))
        offset = head.find(b"PK\x03\x04", offset + 30 + name_length)
    if b"[Content_Types].xml" not in names:
        return None
    if any(name.startswith(b"word/") for name in names):
        return DOCX
    if any(name.startswith(b"xl/") for name in names):
        return XLSX
    return None


def sniff_type(head: bytes, *, name: str) -> str:
    """The content type of a file from its first bytes, or ``Invalid`` if it is not allowed.

    The verdict comes from the bytes alone (``filetype``'s signatures, plus our own list of
    executable signatures); text, which has no signature, is recognised as UTF-8 without NUL
    (the rest of the file is checked as it streams). The name only chooses between CSV and
    plain text, which are accepted and served alike.
    """
    for signature, what in _EXECUTABLE_SIGNATURES:
        if head.startswith(signature):
            raise Invalid(
                _(
                    "Executable files are not accepted: this file is %(what)s, whatever its name "
                    "says."
                )
                % {"what": what},
                field="file",
            )
    kind = filetype.guess(bytes(head)) if head else None
    if kind is not None:
        mime = PNG if kind.mime == "image/apng" else kind.mime
        if mime == ZIP:
            mime = _ooxml_type(head) or ZIP
        if mime in ALLOWED_TYPES:
            return mime
        raise _type_refused(kind.extension.upper())
    if b"\x00" in head:
        raise _type_refused(_("unrecognised binary data"))
    return CSV if name.lower().endswith(".csv") else TXT


def text_refused() -> Invalid:
    """The refusal for a file sniffed as text whose bytes turn out not to be UTF-8 text."""
    return Invalid(
        _(
            "This file is neither a recognised document nor UTF-8 text. Allowed: "
            "%(allowed_description)s (save text and CSV as UTF-8)."
        )
        % {"allowed_description": ALLOWED_DESCRIPTION},
        field="file",
    )


# --- serving ------------------------------------------------------------------------------------


def served_content_type(attachment: Attachment) -> str:
    """Images and PDF keep their checked type (always sent as a download); anything else is
    ``application/octet-stream`` so no browser ever renders it."""
    if attachment.content_type in SERVED_AS_IS:
        return attachment.content_type
    return "application/octet-stream"
