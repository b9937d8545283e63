"""Attachments: encrypted, streamed, type-checked files shared in rooms.

A file arrives as a stream of plaintext pieces (``start_upload`` → ``write`` → ``complete`` →
``record``, or ``upload_attachment`` for an iterable) and is encrypted into the blob store as
it arrives (``uploads``); what is accepted — type by sniffing, size, clean name — is decided in
``policy``, images are measured and previewed in ``images``. A message later claims its
sender's uploads (``claim_for_message``); unsent uploads are purged after a day
(``retention``). Downloads are verified in full before the first byte is delivered and every
one is on record (``downloads``).

Callers use this package, never its modules: ``from liaison.services import attachments``.
"""

from liaison.services.attachments.downloads import (
    AttachmentDamaged,
    AttachmentShredded,
    display_name,
    open_download,
    open_thumbnail,
)
from liaison.services.attachments.images import make_thumbnail
from liaison.services.attachments.policy import (
    ALLOWED_TYPES,
    CSV,
    DOCX,
    GIF,
    IMAGE_TYPES,
    JPEG,
    PDF,
    PNG,
    SNIFF_BYTES,
    TXT,
    WEBP,
    XLSX,
    ZIP,
    clean_filename,
    max_upload_bytes,
    served_content_type,
    sniff_type,
)
from liaison.services.attachments.retention import UNSENT_MAX_AGE, PurgeResult, purge_unsent
from liaison.services.attachments.uploads import (
    AttachmentUpload,
    claim_for_message,
    room_usage,
    start_upload,
    upload_attachment,
)

__all__ = [
    "ALLOWED_TYPES",
    "CSV",
    "DOCX",
    "GIF",
    "IMAGE_TYPES",
    "JPEG",
    "PDF",
    "PNG",
    "SNIFF_BYTES",
    "TXT",
    "UNSENT_MAX_AGE",
    "WEBP",
    "XLSX",
    "ZIP",
    "AttachmentDamaged",
    "AttachmentShredded",
    "AttachmentUpload",
    "PurgeResult",
    "claim_for_message",
    "clean_filename",
    "display_name",
    "make_thumbnail",
    "max_upload_bytes",
    "open_download",
    "open_thumbnail",
    "purge_unsent",
    "room_usage",
    "served_content_type",
    "sniff_type",
    "start_upload",
    "upload_attachment",
]
