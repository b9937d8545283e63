"""Streaming a multipart body's ``file`` part into an upload that seals as the bytes arrive:
the one handler behind attachment uploads and exercise data sets."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import HttpRequest
from django.utils.translation import gettext as _

from liaison.errors import Invalid, LiaisonError

FILE_FIELD = "file"
# Room for the multipart framing around the file (boundaries, part headers, the odd small
# field): a body longer than the file limit plus this is refused before it is read.
MULTIPART_FRAMING_BYTES = 64 * 1024


class SealingUploadHandler(FileUploadHandler):
    """Feeds the ``file`` part of a multipart body, piece by piece, to the upload ``start``
    returns (it must offer ``write``, ``complete`` and ``abort``).

    Errors are kept in ``error`` and stop the parser at once (``StopUpload``), so an oversized
    or refused file is not read further; the view raises the kept error. Whatever was written
    is deleted unless the view records the upload (``discard()`` in every other case).
    """

    def __init__(self, request: HttpRequest, *, at_least: int = 0) -> None:
        super().__init__(request)
        self.at_least = at_least
        self.upload: Any = None
        self.error: LiaisonError | None = None

    def start(self, file_name: str) -> Any:
        """Begin the sealed upload of ``file_name`` (raises ``LiaisonError`` to refuse it)."""
        raise NotImplementedError

    def _stop(self, error: LiaisonError) -> None:
        self.error = error
        self.discard()
        raise StopUpload(connection_reset=True)

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != FILE_FIELD:
            raise SkipFile()
        if self.upload is not None:
            self._stop(Invalid(_("Send one file per request."), field=FILE_FIELD))
        try:
            self.upload = self.start(file_name)
        except LiaisonError as error:
            self._stop(error)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.upload is not None
        try:
            self.upload.write(raw_data)
        except LiaisonError as error:
            self._stop(error)
        return None

    def file_complete(self, file_size: int) -> None:
        assert self.upload is not None
        try:
            self.upload.complete()
        except LiaisonError as error:
            self._stop(error)
        return None  # nothing goes into request.FILES; the view reads ``self.upload``

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        """Delete the upload's blobs unless it was recorded."""
        if self.upload is not None:
            self.upload.abort()
