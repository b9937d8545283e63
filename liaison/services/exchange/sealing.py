"""Where the exchange's data is sealed, and the limits and bulk-work switch every part shares."""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from liaison import storage
from liaison.crypto import ContentShredded, CryptoError, roomkeys
from liaison.crypto.records import (
    stream_context,
)
from liaison.crypto.streaming import StreamEncryptor, decrypt_stream
from liaison.errors import (
    Conflict,
    LiaisonError,
)
from liaison.exchange import parsing
from liaison.models import (
    Exercise,
    Room,
)

logger = logging.getLogger(__name__)


RESULT_FORMAT = 1


class ExchangeContentGone(LiaisonError):
    """Content destroyed by retention policy."""

    code = "shredded"
    http_status = 410
    default_detail = gettext_lazy("Content destroyed by retention policy.")


class ExchangeContentDamaged(LiaisonError):
    """Stored data failed its integrity check and will not be used."""

    code = "damaged"
    http_status = 500
    default_detail = gettext_lazy("Stored data failed its integrity check and will not be used.")


# --- bulk work -----------------------------------------------------------------------------------

_pause_lock = threading.Lock()
_pauses = 0
_resume_collector = False


@contextmanager
def bulk_work() -> Iterator[None]:
    """Around building or reading a hundred thousand rows at once: the cyclic garbage collector
    would otherwise walk the growing heap again and again (several times the work itself).
    Reference counting still frees everything; the collector resumes when the last caller is
    done."""
    global _pauses, _resume_collector
    with _pause_lock:
        _pauses += 1
        if _pauses == 1:
            _resume_collector = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume_collector:
                gc.enable()


# --- settings ------------------------------------------------------------------------------------


def max_upload_bytes() -> int:
    return int(getattr(settings, "LIAISON_EXCHANGE_MAX_BYTES", 64 * 1024 * 1024))


def limits() -> parsing.Limits:
    return parsing.Limits(max_rows=int(getattr(settings, "LIAISON_EXCHANGE_MAX_ROWS", 200_000)))


def background_rows() -> int:
    """A mirror comparison over more rows than this (exports and imports together) runs as a
    background job; fewer are compared within the request."""
    return int(getattr(settings, "LIAISON_EXCHANGE_BACKGROUND_ROWS", 20_000))


# --- where the exchange's data is sealed -----------------------------------------------------------


def key_room(exercise: Exercise) -> Room:
    """The exercise's first room: its data key seals the exercise's data, and it hears of every
    comparison."""
    room = Room.objects.filter(exercise=exercise).order_by("created_at", "pk").first()
    if room is None:
        raise Conflict(_("This exercise has no room yet: an administrator creates one first."))
    return room


class SealedBlob:
    """One blob written piece by piece, sealed as it goes; ``abort()`` leaves nothing."""

    def __init__(self, *, room_id: int, key_version: int, key: bytes, kind: str) -> None:
        self.name = storage.new_blob_name()
        context = stream_context(
            kind, room_id=room_id, key_version=key_version, storage_name=self.name
        )
        self._encryptor = StreamEncryptor(key, context=context)
        self._writer = storage.BlobWriter(self.name)
        self._digest = hashlib.sha256()
        self.size = 0
        self.sha256 = ""
        self.done = False

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self._digest.update(data)
        self._writer.write(self._encryptor.update(data))

    def commit(self) -> None:
        self._writer.write(self._encryptor.finalize())
        self._writer.commit()
        self.sha256 = self._digest.hexdigest()
        self.done = True

    def abort(self) -> None:
        self._writer.abort()
        storage.delete_blob(self.name)


def seal_bytes(room_id: int, key_version: int, kind: str, data: bytes) -> SealedBlob:
    blob = SealedBlob(
        room_id=room_id,
        key_version=key_version,
        key=roomkeys.data_key(room_id, key_version),
        kind=kind,
    )
    try:
        view = memoryview(data)
        for start in range(0, len(data), 1024 * 1024):
            blob.write(bytes(view[start : start + 1024 * 1024]))
        blob.commit()
    except BaseException:
        blob.abort()
        raise
    return blob


def read_blob(room_id: int, key_version: int, name: str, kind: str) -> bytes:
    """A sealed blob's plaintext, authenticated to its end."""
    try:
        key = roomkeys.data_key(room_id, key_version)
        context = stream_context(kind, room_id=room_id, key_version=key_version, storage_name=name)
        with storage.open_blob(name) as handle:
            return b"".join(decrypt_stream(key, handle, context=context))
    except ContentShredded:
        raise ExchangeContentGone() from None
    except (CryptoError, OSError):
        logger.error("exchange blob %s (room %s) failed its integrity check", name, room_id)
        raise ExchangeContentDamaged() from None


# --- data sets -------------------------------------------------------------------------------------
