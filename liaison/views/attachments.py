"""Attachment endpoints: streamed encrypted upload, verified streamed download, thumbnails.

The upload never exists in plaintext on disk or whole in memory inside the application: an
upload handler hands each piece of the multipart body to the attachments service, which
encrypts it into the blob store as it arrives. The body reaches the parser as a stream
(``takes_large_body``: no spool in Django's handler), and the server holds it until then only
sealed under a key kept in memory (``liaison/realtime/server.py``); docs/security.md.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpRequest,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
    UnreadablePostError,
)
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from liaison.errors import Invalid, TooLarge
from liaison.payloads import attachment_payload
from liaison.request_bodies import takes_large_body
from liaison.services import attachments
from liaison.views.base import api_endpoint, client_ip
from liaison.views.limits import declared_length, limit_requests
from liaison.views.uploads import FILE_FIELD, MULTIPART_FRAMING_BYTES, SealingUploadHandler


class EncryptingUploadHandler(SealingUploadHandler):
    """The ``file`` part of an attachment upload, encrypted as it arrives."""

    def __init__(self, request: HttpRequest, *, room_id: int, at_least: int = 0) -> None:
        super().__init__(request, at_least=at_least)
        self.room_id = room_id

    def start(self, file_name: str) -> attachments.AttachmentUpload:
        return attachments.start_upload(
            uploader=self.request.user,
            room_id=self.room_id,
            filename=file_name,
            declared_type=self.content_type or "",
            ip=client_ip(self.request),
            at_least=self.at_least,
        )


@takes_large_body(lambda: attachments.max_upload_bytes() + MULTIPART_FRAMING_BYTES)
@csrf_exempt
@api_endpoint("POST")
@limit_requests("upload")
@limit_requests("upload.bytes", cost=declared_length)
def upload(request: HttpRequest, room_id: int) -> HttpResponse:
    """POST /api/v1/rooms/<id>/attachments — multipart, the file in the field ``file``.

    Upload handlers must be installed before anything reads the body, and the CSRF check reads
    it, so this view is exempt and checks CSRF itself around the parsing (Django's documented
    pattern). The handler may write ciphertext before that check completes; it is recorded only
    once the check passed and deleted otherwise.
    """
    if not request.content_type.startswith("multipart/form-data"):
        raise Invalid(_("Send the file as multipart/form-data in the field 'file'."))
    try:
        declared_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared_length = 0
    at_least = max(0, declared_length - MULTIPART_FRAMING_BYTES)
    handler = EncryptingUploadHandler(request, room_id=room_id, at_least=at_least)
    request.upload_handlers = [handler]
    try:
        # The body is parsed by whichever comes first: the CSRF check or the view itself.
        return _upload_checked(request, handler)
    except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent):
        raise TooLarge(_("The request carries too many or too large form fields.")) from None
    except (MultiPartParserError, UnreadablePostError):  # malformed, or cut off mid-stream
        raise Invalid(_("The multipart body is malformed.")) from None
    finally:
        handler.discard()


@csrf_protect
def _upload_checked(request: HttpRequest, handler: EncryptingUploadHandler) -> HttpResponse:
    request.FILES  # noqa: B018 - parsing the body runs the upload handler
    if handler.error is not None:
        raise handler.error
    if handler.upload is None or handler.upload.state != "complete":
        raise Invalid(_("Attach the file in the multipart field 'file'."), field=FILE_FIELD)
    attachment = handler.upload.record()
    return JsonResponse({"attachment": attachment_payload(attachment)}, status=201)


def _ascii_fallback(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    text = "".join(
        ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\' else "_"
        for ch in decomposed
        if not unicodedata.combining(ch)
    )
    return text.strip() or "download"


def content_disposition(name: str, *, inline: bool = False) -> str:
    """RFC 6266: an ASCII ``filename`` for old clients and the exact UTF-8 ``filename*``."""
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe='')}"


def _harden(response: HttpResponse) -> HttpResponse:
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    # Should the file ever be opened in a tab, it runs no script and loads nothing.
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


async def _async_pieces(pieces: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Pull each piece in a worker thread so the event loop never waits on disk or crypto,
    and the response streams in constant memory under ASGI."""
    end = object()
    while True:
        piece = await sync_to_async(next, thread_sensitive=False)(pieces, end)
        if piece is end:
            return
        yield piece


@api_endpoint("GET")
def download(request: HttpRequest, attachment_id: int) -> HttpResponse:
    """GET /api/v1/attachments/<id> — the decrypted file, verified, as a download."""
    attachment, pieces, name = attachments.open_download(
        user=request.user, attachment_id=attachment_id, ip=client_ip(request)
    )
    content: Any = _async_pieces(pieces) if isinstance(request, ASGIRequest) else pieces
    response = StreamingHttpResponse(
        content, content_type=attachments.served_content_type(attachment)
    )
    if hasattr(pieces, "close"):
        response._resource_closers.append(pieces.close)
    response["Content-Length"] = str(attachment.size)
    response["Content-Disposition"] = content_disposition(name)
    return _harden(response)


@api_endpoint("GET")
def thumbnail(request: HttpRequest, attachment_id: int) -> HttpResponse:
    """GET /api/v1/attachments/<id>/thumbnail — a metadata-free preview of an image."""
    data, content_type = attachments.open_thumbnail(user=request.user, attachment_id=attachment_id)
    response = HttpResponse(data, content_type=content_type)
    extension = "png" if content_type.endswith("png") else "jpg"
    response["Content-Disposition"] = content_disposition(
        f"thumbnail-{attachment_id}.{extension}", inline=True
    )
    return _harden(response)
